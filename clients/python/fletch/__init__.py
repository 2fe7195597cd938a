"""Python client of the fletch feature engine.

``FletchClient.query`` / ``query_bulk`` / ``offline_query`` use fletch's
native feature query (one Arrow Flight DoExchange: the input rows go up, the
features come back, docs/NATIVE.md); ``sql`` uses Flight SQL through ADBC.
Results are pyarrow Tables, or pandas / polars frames on request.

This package knows the wire (the native command's JSON and Flight SQL); it
knows nothing of how fletch computes features.
"""

from __future__ import annotations

import datetime as _dt
import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterable, Mapping, Optional, Sequence, Union

import pyarrow as pa
import pyarrow.flight as flight

__all__ = ["FletchClient", "FletchError", "AS_OF", "HIT_SUFFIX", "SUMMARY_KEY"]

#: The input column giving each row its own evaluation time.
AS_OF = "__as_of__"
#: Ends the name of an output's cache-hit column (``meta=True``).
HIT_SUFFIX = ".__hit__"
#: Schema metadata key of the answer's summary (rows, errors, plan) as JSON.
SUMMARY_KEY = b"fletch.summary"

Inputs = Union[Mapping[str, Any], pa.Table, pa.RecordBatch, Any]

#: Input rows sent per record batch: the server plans and runs its input
#: chunk by chunk (server.spine.chunk_rows, 32,768 by default), so a batch
#: of that size is what it reads at once. An input of more rows goes up
#: once (DoPut) and comes back as a FlightInfo of endpoints read in
#: parallel (docs/CLIENTS.md).
CHUNK_ROWS = 32_768


class FletchError(Exception):
    """A query fletch refused or could not answer; the message says why and where."""


def _error(e: Exception) -> FletchError:
    # Keep the server's message, without the transport's debug context.
    msg = str(e)
    if "with message: " in msg:
        msg = msg.split("with message: ", 1)[1]
    msg = msg.split(". gRPC client debug context", 1)[0]
    return FletchError(msg)


def _location(url: str) -> str:
    if "://" not in url:
        url = "grpc://" + url
    return url


def _utc(t: Any) -> Any:
    if isinstance(t, str):
        t = _dt.datetime.fromisoformat(t.replace("Z", "+00:00"))
    if isinstance(t, _dt.datetime) and t.tzinfo is None:
        t = t.replace(tzinfo=_dt.timezone.utc)  # fletch reads naive times as UTC
    return t


def _iso(t: Any) -> str:
    t = _utc(t)
    if isinstance(t, _dt.datetime):
        return t.astimezone(_dt.timezone.utc).isoformat().replace("+00:00", "Z")
    if isinstance(t, _dt.date):
        return t.isoformat()
    raise TypeError(f"expected a datetime or an ISO 8601 string, got {t!r}")


def _given(input: Any, inputs: Any) -> Any:
    """The input rows, passed as ``input=`` or, as the seeds write it, ``inputs=``."""
    if input is not None and inputs is not None:
        raise TypeError("give the input rows once: input= or inputs=, not both")
    if input is None and inputs is None:
        raise TypeError("missing the input rows: input={...} (or inputs={...})")
    return input if input is not None else inputs


def _table(input: Inputs) -> pa.Table:
    if isinstance(input, pa.Table):
        return input
    if isinstance(input, pa.RecordBatch):
        return pa.Table.from_batches([input])
    if isinstance(input, Mapping):
        return pa.table({k: v if isinstance(v, (pa.Array, pa.ChunkedArray)) else list(v) for k, v in input.items()})
    if hasattr(input, "to_arrow"):  # polars
        return input.to_arrow()
    return pa.Table.from_pandas(input, preserve_index=False)


def _convert(table: pa.Table, format: str) -> Any:
    if format == "arrow":
        return table
    if format == "pandas":
        import pandas as pd

        # pandas' nullable dtypes: an int feature with a null stays an int
        # column (NumPy's int64 cannot hold a null: it became float64),
        # bools stay bools; dates stay datetime.date.
        nullable = {pa.int64(): pd.Int64Dtype(), pa.bool_(): pd.BooleanDtype(), pa.string(): pd.StringDtype()}
        return table.to_pandas(types_mapper=nullable.get)
    if format == "polars":
        import polars as pl

        return pl.from_arrow(table)
    raise ValueError(f'format must be "arrow", "pandas" or "polars", not {format!r}')


def _times(input_times: Iterable[Any]) -> pa.Array:
    """The evaluation times as UTC microseconds; an Arrow timestamp column
    (or a pandas / polars one) is cast, not walked in Python."""
    if isinstance(input_times, (pa.Array, pa.ChunkedArray)) and pa.types.is_timestamp(input_times.type):
        if input_times.type.tz is None:  # fletch reads naive times as UTC
            input_times = input_times.cast(pa.timestamp(input_times.type.unit, tz="UTC"))
        return input_times.cast(pa.timestamp("us", tz="UTC"))
    return pa.array([_utc(t) for t in input_times], type=pa.timestamp("us", tz="UTC"))


def _read(reader: Any) -> Any:
    """The batches of an answer stream and its summary (the app_metadata of
    its last batch)."""
    batches, summary = [], b"{}"
    while True:
        try:
            chunk = reader.read_chunk()
        except StopIteration:
            break
        if chunk.data is not None:
            batches.append(chunk.data)
        if chunk.app_metadata is not None:
            summary = chunk.app_metadata.to_pybytes()
    return batches, summary


def _merge_summaries(parts: Sequence[dict], rows: int) -> bytes:
    """One summary of the summaries of an answer's endpoints, whose rows the
    server counts from the input's first row. An output that failed in every
    row of one endpoint (no rows listed) but not in all of them is listed by
    row."""
    merged: dict = {"rows": sum(p.get("rows", 0) for p in parts)}
    starts, at = [], 0
    for p in parts:
        starts.append(at)
        at += p.get("rows", 0)
    errors: dict = {}
    for i, p in enumerate(parts):
        for e in p.get("errors", []):
            errors.setdefault(e["output"], []).append((i, e))
    out = []
    for name, fails in errors.items():
        e = dict(fails[0][1])
        if len(fails) == len(parts) and not any(f.get("rows") for _, f in fails):
            e.pop("rows", None)
        else:
            e["rows"] = [r for i, f in fails for r in (f.get("rows") or range(starts[i], starts[i] + parts[i].get("rows", 0)))]
        out.append(e)
    if out:
        merged["errors"] = out
    null_keys = [k for p in parts for k in p.get("null_keys", [])]
    if null_keys:
        merged["null_keys"] = null_keys
    return json.dumps(merged).encode()


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number: int, value: bytes) -> bytes:
    return bytes([number << 3 | 2]) + _varint(len(value)) + value


def _close_request(handle: str) -> bytes:
    """Flight SQL's ClosePreparedStatement body (an Any holding an
    ActionClosePreparedStatementRequest), encoded by hand: two length-
    delimited protobuf fields are not worth a protobuf dependency."""
    request = _field(1, handle.encode())
    return _field(1, b"type.googleapis.com/arrow.flight.protocol.sql.ActionClosePreparedStatementRequest") + _field(2, request)


class FletchClient:
    """A connection to a fletch server.

    ``url`` is ``host:port`` or ``grpc://host:port`` (``grpc+tls://`` for
    TLS). ``token``, when given, is sent as ``authorization: Bearer <token>``
    on every call. ``streams`` bounds the endpoints of a big answer (more
    than ``CHUNK_ROWS`` input rows) read in parallel: each one read is a
    chunk's work in the server's memory at once (docs/BENCHMARKS.md §23).
    """

    def __init__(self, url: str, token: Optional[str] = None, streams: int = 2):
        self.url = _location(url)
        self.token = token
        #: The endpoints of a big answer read at once.
        self.streams = max(1, streams)
        self._headers = [(b"authorization", b"Bearer " + token.encode())] if token else []
        self._flight = flight.FlightClient(self.url)
        self._adbc = None

    def close(self) -> None:
        if self._adbc is not None:
            self._adbc.close()
            self._adbc = None
        self._flight.close()

    def __enter__(self) -> "FletchClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # The native feature query.

    def query(self, input: Optional[Mapping[str, Any]] = None, output: Optional[Sequence[str]] = None, *,
              inputs: Optional[Mapping[str, Any]] = None, **options: Any) -> Any:
        """Features of one entity: ``input={"user.id": 50}``. One row."""
        one = _given(input, inputs)
        return self.query_bulk({k: [v] for k, v in one.items()}, output, **options)

    def query_bulk(self, input: Optional[Inputs] = None, output: Optional[Sequence[str]] = None, *,
                   inputs: Optional[Inputs] = None, **options: Any) -> Any:
        """Features of many entities: ``input={"user.id": [1, 2, 3]}`` (or a
        pyarrow Table, pandas or polars frame). One row per input row, in order."""
        return self._native(_table(_given(input, inputs)), output, **options)

    def offline_query(self, input: Optional[Inputs] = None, input_times: Optional[Iterable[Any]] = None,
                      output: Optional[Sequence[str]] = None, *, inputs: Optional[Inputs] = None, **options: Any) -> Any:
        """Point-in-time features: input row i as of ``input_times[i]``; nothing
        later than that time is visible to it. ``inputs=`` is the seeds'
        spelling of ``input=``. ``planner_options={"use_materialized_offline_query":
        True}`` answers materialized windowed features from aggregation tiles
        (docs/TILES.md). ``recompute_features=False`` answers the values served
        at each row's time, read from the offline store, instead of recomputing
        them; a list of features recomputes those and reads the others
        (docs/STORES.md)."""
        if input_times is None:
            raise TypeError("offline_query() needs input_times: one time per input row")
        table = _table(_given(input, inputs))
        times = _times(input_times)
        if len(times) != table.num_rows:
            raise ValueError(f"{len(times)} input_times for {table.num_rows} input rows")
        return self._native(table.append_column(AS_OF, times), output, **options)

    def explain(self, input: Inputs, output: Optional[Sequence[str]] = None, **options: Any) -> str:
        """The plan fletch would run for the query, as text."""
        options["explain"] = True
        options["format"] = "arrow"
        table = self._native(_table(input), output, **options)
        return json.loads(table.schema.metadata[SUMMARY_KEY])["plan"]

    def _native(
        self,
        table: pa.Table,
        output: Optional[Sequence[str]],
        *,
        now: Any = None,
        staleness: Optional[Mapping[str, str]] = None,
        meta: bool = False,
        partial: bool = False,
        explain: bool = False,
        cls: Optional[str] = None,
        format: str = "arrow",
        planner_options: Optional[Mapping[str, Any]] = None,
        recompute_features: Any = True,
    ) -> Any:
        query: dict = {}
        if cls:
            query["class"] = cls
        if output:
            # A feature object of the caller's own (the seeds' User.total["7d"])
            # is named by its str().
            query["outputs"] = [o if isinstance(o, str) else str(o) for o in output]
        if planner_options:
            query["planner_options"] = dict(planner_options)
        if recompute_features is not True:
            query["recompute_features"] = (recompute_features if isinstance(recompute_features, bool)
                                           else [f if isinstance(f, str) else str(f) for f in recompute_features])
        if now is not None:
            query["now"] = _iso(now)
        if staleness:
            query["staleness"] = dict(staleness)
        for key, on in (("meta", meta), ("partial", partial), ("explain", explain)):
            if on:
                query[key] = True
        desc = flight.FlightDescriptor.for_command(json.dumps({"query": query}).encode())
        opts = flight.FlightCallOptions(headers=self._headers)
        try:
            if table.num_rows > CHUNK_ROWS and not explain:
                result = self._endpoints(desc, table, opts)
            else:
                result = self._exchange(desc, table, opts)
        except (flight.FlightError, pa.ArrowException) as e:
            raise _error(e) from e
        return _convert(result, format)

    def _exchange(self, desc: Any, table: pa.Table, opts: Any) -> pa.Table:
        """One DoExchange: the rows go up, then the answer is read.

        Only an input of one chunk (or an explain, which the server answers
        after reading all of it) comes this way: the server answers each
        chunk as it reads it, so a bigger input written before any answer
        is read would stall once both flow-control windows were full. It is
        not written from a thread of its own while the answer is read
        either: when the server refuses the query, the writer and the reader
        both finish the gRPC call, and two threads doing so at once abort
        the process (GRPC_CALL_ERROR_TOO_MANY_OPERATIONS)."""
        writer, reader = self._flight.do_exchange(desc, options=opts)
        try:
            try:
                writer.begin(table.schema)
                # One batch, however many chunks the table has: the server
                # answers each batch as it reads it, and answers to many
                # small batches not read until the last one is written
                # fill the flow-control windows as surely as big ones.
                for batch in table.combine_chunks().to_batches(max_chunksize=CHUNK_ROWS):
                    writer.write_batch(batch)
                writer.done_writing()
            except (flight.FlightError, pa.ArrowException):
                pass  # the server stopped reading: its answer says why
            batches, summary = _read(reader)
            schema = reader.schema
        finally:
            try:
                writer.close()
            except (flight.FlightError, pa.ArrowException):
                pass  # the answer (or its error) is what the server said
        return pa.Table.from_batches(batches, schema=schema).replace_schema_metadata({SUMMARY_KEY: summary})

    def _endpoints(self, desc: Any, table: pa.Table, opts: Any) -> pa.Table:
        """A big input goes up once (DoPut, in batches of CHUNK_ROWS); the
        server answers the FlightInfo of its answer, one endpoint per range
        of rows, read ``streams`` at a time and concatenated in order. The
        server keeps the input until the handle is closed."""
        writer, meta = self._flight.do_put(desc, table.schema, options=opts)
        with writer:
            for batch in table.to_batches(max_chunksize=CHUNK_ROWS):
                writer.write_batch(batch)
            writer.done_writing()
            buf = meta.read()
        info = flight.FlightInfo.deserialize(buf.to_pybytes())
        handle = json.loads(info.app_metadata)["handle"]
        try:
            def fetch(endpoint):
                return _read(self._flight.do_get(endpoint.ticket, options=opts))

            with ThreadPoolExecutor(max_workers=min(self.streams, len(info.endpoints))) as pool:
                parts = list(pool.map(fetch, info.endpoints))
        finally:
            self._flight.do_action(flight.Action("ClosePreparedStatement", _close_request(handle)), options=opts)
        batches = [b for part, _ in parts for b in part]
        summary = _merge_summaries([json.loads(s) for _, s in parts], table.num_rows)
        return pa.Table.from_batches(batches, schema=info.schema).replace_schema_metadata({SUMMARY_KEY: summary})

    # Flight SQL.

    def connection(self) -> Any:
        """The ADBC Flight SQL DB-API connection this client's ``sql`` uses."""
        if self._adbc is None:
            import adbc_driver_flightsql.dbapi as dbapi

            kwargs = {}
            if self.token:
                kwargs["adbc.flight.sql.authorization_header"] = "Bearer " + self.token
            self._adbc = dbapi.connect(self.url, db_kwargs=kwargs, autocommit=True)
        return self._adbc

    def sql(self, text: str, params: Any = None, format: str = "arrow") -> Any:
        """Runs a Flight SQL query; ``params`` binds its ``?`` parameters: a
        tuple for one row, or a pyarrow Table / RecordBatch of many rows (one
        result row per parameter row, in order)."""
        cur = self.connection().cursor()
        try:
            cur.execute(text, params)
            return _convert(cur.fetch_arrow_table(), format)
        except Exception as e:
            if type(e).__module__.startswith("adbc_driver"):
                raise _error(e) from e
            raise
        finally:
            cur.close()
