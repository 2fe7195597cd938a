// The JavaScript client against a live fletch (integration/js_test.go
// starts it): FLETCH_URL is its address, FLETCH_REFERENCE_JSON the expected
// rows, computed by DuckDB SQL over the same data.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { FletchClient, HIT_SUFFIX } from '../src/index.js';

const url = process.env.FLETCH_URL;
const refPath = process.env.FLETCH_REFERENCE_JSON;
if (!url || !refPath) {
  const msg = 'FLETCH_URL / FLETCH_REFERENCE_JSON are not set: run through `go test ./integration -run JS`';
  if (process.env.CI === 'true') throw new Error(msg);
}
const skip = !url || !refPath;
const ref = skip ? null : JSON.parse(readFileSync(refPath, 'utf8'));

// The reference's columns, as native outputs.
const OUTPUTS = ['id', 'user.full_name', 'review_count__604800__', 'review_count[30d]', 'F.lower(_.full_name).alias("lower_name")', 'average_rating_given'];

/** Table rows as plain arrays, numbers as numbers. */
function rows(table) {
  return table.toArray().map((r) => Object.values(r.toJSON()).map((v) => (typeof v === 'bigint' ? Number(v) : v)));
}

function assertRows(got, want) {
  assert.equal(got.length, want.length);
  got.forEach((g, i) => g.forEach((cell, j) => {
    const w = want[i][j];
    if (typeof cell === 'number' && typeof w === 'number') {
      assert.ok(Math.abs(cell - w) <= 1e-9 * Math.max(1, Math.abs(w)), `row ${i} col ${j}: ${cell} != ${w}`);
    } else {
      assert.deepEqual(cell, w, `row ${i} col ${j}`);
    }
  }));
}

let client;
before(() => { if (!skip) client = new FletchClient(url); });
after(() => client && client.close());

test('queryBulk answers each row in order', { skip }, async () => {
  const c = ref.bulk;
  const got = await client.queryBulk({ 'user.id': c.ids }, OUTPUTS, { now: ref.now });
  assert.deepEqual(got.schema.fields.map((f) => f.name), ['id', 'user.full_name', 'review_count__604800__', 'review_count[30d]', 'lower_name', 'average_rating_given']);
  assertRows(rows(got), c.rows);
});

test('query answers one entity', { skip }, async () => {
  const got = await client.query({ 'user.id': ref.bulk.ids[0] }, OUTPUTS, { now: ref.now });
  assertRows(rows(got), [ref.bulk.rows[0]]);
});

test('offlineQuery evaluates each row at its own time', { skip }, async () => {
  const c = ref.offline;
  const got = await client.offlineQuery({ 'user.id': c.ids }, c.times, OUTPUTS);
  assertRows(rows(got), c.rows);
});

test('plannerOptions are the native query\'s planner_options', { skip }, async () => {
  // Aligned to review_count's 1-day tiles, each row sees what serving sees:
  // B(t - w) <= created_at <= t (docs/TILES.md), not the exact window.
  const c = ref.aligned;
  const plannerOptions = { use_materialized_offline_query: true, align_offline_chalk_window_with_materialization: true };
  const got = await client.offlineQuery({ 'user.id': c.ids }, c.times, OUTPUTS, { plannerOptions });
  assertRows(rows(got), c.rows);
  await assert.rejects(client.offlineQuery({ 'user.id': c.ids }, c.times, OUTPUTS, { plannerOptions: { use_materialised_offline_query: true } }),
    (e) => e.code === 3 && /did you mean "use_materialized_offline_query"/.test(e.message));
});

test('sql runs a Flight SQL statement', { skip }, async () => {
  // __as_of__ makes the rows point in time: exact windows (ref.sql), where
  // queryBulk's now serves review_count's materialized windows aligned.
  const c = ref.sql;
  const got = await client.sql(`SELECT id, full_name, review_count__604800__ FROM user WHERE id IN (${c.ids.map((i) => `'${i}'`).join(', ')}) AND __as_of__ = '${ref.now}'`);
  assertRows(rows(got), c.rows.map((r) => r.slice(0, 3)));
});

test('meta adds a hit column per output; explain returns the plan', { skip }, async () => {
  const got = await client.query({ 'user.id': '50' }, ['full_name'], { meta: true, now: ref.now });
  assert.deepEqual(got.schema.fields.map((f) => f.name), ['full_name', 'full_name' + HIT_SUFFIX]);
  assert.equal(got.summary.rows, 1);
  const plan = await client.explain({ 'user.id': ['50'] }, ['full_name']);
  assert.match(plan, /^query user -> full_name/);
});

test('errors carry the code and the suggestion', { skip }, async () => {
  await assert.rejects(client.query({ 'user.id': '50' }, ['full_nam']), (e) => e.code === 3 && /did you mean "full_name"/.test(e.message));
  await assert.rejects(client.sql('SELECT full_nam FROM user WHERE id = 1'), (e) => e.code === 3 && /full_name/.test(e.message));
});

test('recomputeFeatures: false reads the offline store, which the demo lacks', { skip }, async () => {
  // The values served are checked end to end in integration
  // TestOfflineStoreAsSource (a server with offline_store:).
  for (const recomputeFeatures of [false, ['user.email']]) {
    await assert.rejects(client.offlineQuery({ 'user.id': ['50'] }, [ref.now], ['full_name', 'email'], { recomputeFeatures }),
      (e) => e.code === 12 && /offline_store:/.test(e.message));
  }
  const got = await client.offlineQuery({ 'user.id': ['50'] }, [ref.now], ['full_name'], { recomputeFeatures: true });
  assert.equal(got.numRows, 1);
});
