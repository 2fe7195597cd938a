// JavaScript client of the fletch feature engine: Flight SQL statements
// (`sql`) and fletch's native feature query (`query`, `queryBulk`,
// `offlineQuery`: one DoExchange, docs/NATIVE.md), answered as Apache Arrow
// Tables.
//
// It knows the wire only. The gRPC service definitions are not kept here:
// they are generated from arrow-go's compiled descriptors (`npm run gen`,
// clients/js/gen) into .gen/flight.pb and loaded at run time.

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';
import protobuf from 'protobufjs';
import descriptor from 'protobufjs/ext/descriptor/index.js';
import { Int64, Message, tableFromIPC, tableToIPC, Table, TimestampMicrosecond, Utf8, vectorFromArray } from 'apache-arrow';

/** The input column giving each row its own evaluation time. */
export const AS_OF = '__as_of__';
/** Ends the name of an output's cache-hit column (`meta: true`). */
export const HIT_SUFFIX = '.__hit__';

const DEFAULT_DESCRIPTORS = fileURLToPath(new URL('../.gen/flight.pb', import.meta.url));
const DESCRIPTOR_CMD = 2; // FlightDescriptor.DescriptorType.CMD
const CONTINUATION = 0xffffffff;

/** A query fletch refused or could not answer; `code` is the gRPC status code. */
export class FletchError extends Error {
  constructor(err) {
    super(err.details || err.message);
    this.name = 'FletchError';
    this.code = err.code;
  }
}

function loadDescriptors(path) {
  const buf = readFileSync(path);
  const def = protoLoader.loadFileDescriptorSetFromBuffer(buf, { keepCase: true, longs: String, defaults: true });
  const root = protobuf.Root.fromDescriptor(descriptor.FileDescriptorSet.decode(buf));
  return { service: grpc.loadPackageDefinition(def).arrow.flight.protocol.FlightService, root };
}

// IPC framing: a FlightData carries one encapsulated IPC message, split into
// its flatbuffer header and its body.

/** The FlightData messages of an Arrow table (schema first). */
function toFlightData(table) {
  const bytes = tableToIPC(table, 'stream');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = [];
  let at = 0;
  while (at + 8 <= bytes.length) {
    let len = view.getInt32(at, true);
    at += 4;
    if (len === -1) { // continuation marker, then the length
      len = view.getInt32(at, true);
      at += 4;
    }
    if (len === 0) break; // end of stream
    const header = bytes.subarray(at, at + len);
    at += len;
    const bodyLength = Number(Message.decode(header).bodyLength);
    out.push({ data_header: Buffer.from(header), data_body: Buffer.from(bytes.subarray(at, at + bodyLength)) });
    at += bodyLength;
  }
  return out;
}

/** An Arrow IPC stream of FlightData messages, for tableFromIPC. */
function ipcStream(messages) {
  const parts = [];
  for (const m of messages) {
    if (!m.data_header || m.data_header.length === 0) continue; // metadata only
    const pad = (8 - (m.data_header.length % 8)) % 8;
    const prefix = Buffer.alloc(8);
    prefix.writeUInt32LE(CONTINUATION, 0);
    prefix.writeInt32LE(m.data_header.length + pad, 4);
    parts.push(prefix, m.data_header, Buffer.alloc(pad), m.data_body || Buffer.alloc(0));
  }
  const end = Buffer.alloc(8);
  end.writeUInt32LE(CONTINUATION, 0);
  parts.push(end);
  return Buffer.concat(parts);
}

function readAll(call) {
  return new Promise((resolve, reject) => {
    const messages = [];
    call.on('data', (m) => messages.push(m));
    call.on('error', (err) => reject(new FletchError(err)));
    call.on('end', () => resolve(messages));
  });
}

/** A column of plain values: strings as Utf8 (not dictionaries), integers
 * as Int64, other numbers as Float64, Dates as UTC timestamps. */
function toVector(values) {
  const v = Array.from(values);
  const some = v.find((x) => x !== null && x !== undefined);
  if (typeof some === 'string') return vectorFromArray(v, new Utf8());
  if (typeof some === 'bigint' || (typeof some === 'number' && v.every((x) => x == null || Number.isInteger(x)))) {
    return vectorFromArray(v.map((x) => (x == null ? null : BigInt(x))), new Int64());
  }
  // Arrow JS takes timestamps as epoch milliseconds, whatever the unit.
  if (some instanceof Date) return vectorFromArray(v.map((x) => (x == null ? null : x.getTime())), new TimestampMicrosecond('UTC'));
  return vectorFromArray(v);
}

/** Input rows as an Arrow Table: a Table, or an object of column arrays. */
function toTable(input) {
  if (input instanceof Table) return input;
  return new Table(Object.fromEntries(Object.entries(input).map(([k, v]) => [k, toVector(v)])));
}

export class FletchClient {
  /**
   * @param {string} url `host:port` or `grpc://host:port`
   * @param {{token?: string, descriptors?: string}} [options] `token` is sent
   *   as `authorization: Bearer <token>`; `descriptors` is the generated
   *   FileDescriptorSet (default .gen/flight.pb).
   */
  constructor(url, { token, descriptors = DEFAULT_DESCRIPTORS } = {}) {
    const { service, root } = loadDescriptors(descriptors);
    this.root = root;
    const target = url.replace(/^grpc(\+tcp)?:\/\//, '');
    this.client = new service(target, grpc.credentials.createInsecure(), {
      'grpc.max_receive_message_length': 64 << 20,
    });
    this.metadata = new grpc.Metadata();
    if (token) this.metadata.set('authorization', `Bearer ${token}`);
  }

  close() {
    this.client.close();
  }

  /** Features of one entity: `query({'user.id': 50}, ['user.full_name'])`. One row. */
  query(input, output, options = {}) {
    return this.queryBulk(Object.fromEntries(Object.entries(input).map(([k, v]) => [k, [v]])), output, options);
  }

  /** Features of many entities, one answer row per input row, in order. */
  queryBulk(input, output, options = {}) {
    return this.#native(toTable(input), output, options);
  }

  /** Point-in-time features: input row i as of inputTimes[i] (Date or ISO string). */
  offlineQuery(input, inputTimes, output, options = {}) {
    const table = toTable(input);
    const times = Array.from(inputTimes, (t) => new Date(t));
    if (times.length !== table.numRows) throw new Error(`${times.length} inputTimes for ${table.numRows} input rows`);
    return this.#native(table.assign(new Table({ [AS_OF]: toVector(times) })), output, options);
  }

  /** The plan fletch would run for the query, as text. */
  async explain(input, output, options = {}) {
    const { summary } = await this.#exchange(toTable(input), output, { ...options, explain: true });
    return summary.plan;
  }

  async #native(table, output, options) {
    const { result, summary } = await this.#exchange(table, output, options);
    result.summary = summary;
    return result;
  }

  // recomputeFeatures is Chalk's recompute_features: true (default), false
  // (the values served then, from the offline store) or the features still
  // recomputed (docs/STORES.md). plannerOptions are Chalk's planner_options
  // ({ use_materialized_offline_query: true }: aggregation tiles, docs/TILES.md).
  async #exchange(table, output, { cls, now, staleness, meta, partial, explain, recomputeFeatures, plannerOptions } = {}) {
    const query = {};
    if (cls) query.class = cls;
    if (output && output.length) query.outputs = output;
    if (now !== undefined) query.now = new Date(now).toISOString();
    if (staleness) query.staleness = staleness;
    if (meta) query.meta = true;
    if (partial) query.partial = true;
    if (explain) query.explain = true;
    if (recomputeFeatures !== undefined && recomputeFeatures !== true) query.recompute_features = recomputeFeatures;
    if (plannerOptions) query.planner_options = plannerOptions;
    const call = this.client.DoExchange(this.metadata);
    const answer = readAll(call);
    toFlightData(table).forEach((m, i) => {
      if (i === 0) m.flight_descriptor = { type: DESCRIPTOR_CMD, cmd: Buffer.from(JSON.stringify({ query })) };
      call.write(m);
    });
    call.end();
    const messages = await answer;
    let summary = {};
    for (const m of messages) {
      if (m.app_metadata && m.app_metadata.length) summary = JSON.parse(m.app_metadata.toString());
    }
    return { result: tableFromIPC(ipcStream(messages)), summary };
  }

  /** Runs a Flight SQL statement (CommandStatementQuery, then DoGet of each endpoint). */
  async sql(text) {
    const cmd = this.#pack('arrow.flight.protocol.sql.CommandStatementQuery', { query: text });
    const info = await new Promise((resolve, reject) => {
      this.client.GetFlightInfo({ type: DESCRIPTOR_CMD, cmd }, this.metadata, (err, res) => (err ? reject(new FletchError(err)) : resolve(res)));
    });
    const messages = [];
    for (const ep of info.endpoint) {
      messages.push(...(await readAll(this.client.DoGet(ep.ticket, this.metadata))));
    }
    // Each DoGet stream starts with its schema; keep the first one only.
    const firstSchema = messages.findIndex((m) => m.data_header && m.data_header.length);
    const data = messages.filter((m, i) => i === firstSchema || !(m.data_header && Message.decode(m.data_header).isSchema()));
    return tableFromIPC(ipcStream(data));
  }

  /** An Any-packed Flight SQL command. */
  #pack(typeName, fields) {
    const type = this.root.lookupType(typeName);
    const value = type.encode(type.create(fields)).finish();
    const any = this.root.lookupType('google.protobuf.Any');
    return Buffer.from(any.encode(any.create({ type_url: `type.googleapis.com/${typeName}`, value })).finish());
  }
}
