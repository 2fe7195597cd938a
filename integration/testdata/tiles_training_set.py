"""The acceptance of aggregation tiles (issue 13), as a user runs it: the
Python SDK builds a training set of SPINE_ROWS spine rows with three windows
of two aggregations, exact and from tiles, and each matches DuckDB SQL over
a copy of the same events (tiled: to its bucket semantics, docs/TILES.md).

Run by integration TestTilesTrainingSet and TestBigSpine, which set
FLETCH_URL and FLETCH_REFERENCE_DB. MODES picks the runs (default
"exact,tiled"): "exact-endpoints" is exact and requires the SDK to have
read several endpoints, "sql" is Flight SQL through ADBC, the spine bound
to a prepared statement."""

import math
import os
import time

import duckdb

import fletch

WINDOWS = {"7d": 7, "30d": 30, "90d": 90}
DAY_US = 86_400_000_000


class Feature:
    """A feature as the seeds name it in Python (User.total["7d"]): the SDK
    sends its str()."""

    def __init__(self, name):
        self.name = name

    def __getitem__(self, window):
        return Feature(f'{self.name}["{window}"]')

    def __str__(self):
        return self.name


class User:
    total = Feature("user.total")
    cnt = Feature("user.cnt")


def reference(con, materialized):
    cols = []
    for name, agg in (("total", "coalesce(sum(e.amount) FILTER (WHERE {c}), 0)"), ("cnt", "count(e.id) FILTER (WHERE {c})")):
        for w in WINDOWS.values():
            wu = w * DAY_US
            if materialized:
                b = lambda x: f"(({x}) - ((({x}) % {DAY_US}) + {DAY_US}) % {DAY_US})"
                c = f"epoch_us(e.ts) >= {b(f'epoch_us(s.t) - {wu}')}"
            else:
                c = f"epoch_us(e.ts) > epoch_us(s.t) - {wu}"
            cols.append(agg.format(c=c))
    if materialized:
        b = lambda x: f"(({x}) - ((({x}) % {DAY_US}) + {DAY_US}) % {DAY_US})"
        on = f"epoch_us(e.ts) >= {b(f'epoch_us(s.t) - {90 * DAY_US}')} AND epoch_us(e.ts) < {b('epoch_us(s.t)')}"
    else:
        on = f"e.ts <= s.t AND epoch_us(e.ts) > epoch_us(s.t) - {90 * DAY_US}"
    q = f"SELECT {', '.join(cols)} FROM spine s LEFT JOIN txns e ON e.user_id = s.id AND {on} GROUP BY s.i ORDER BY s.i"
    return con.execute(q).fetchall()


def compare(what, got, want):
    cols = [got.column(i).to_pylist() for i in range(got.num_columns)]
    assert got.num_rows == len(want), f"{what}: {got.num_rows} rows, want {len(want)}"
    bad = 0
    for r, row in enumerate(want):
        for c, w in enumerate(row):
            g = cols[c][r]
            ok = (g == w) if not isinstance(w, float) else (g is not None and math.isclose(g, w, rel_tol=1e-9, abs_tol=1e-6))
            if not ok:
                bad += 1
                if bad <= 5:
                    print(f"{what}: row {r} column {got.column_names[c]}: got {g}, DuckDB says {w}")
    assert bad == 0, f"{what}: {bad} cells differ"


def main():
    n = int(os.environ.get("SPINE_ROWS", "100000"))
    con = duckdb.connect(os.environ["FLETCH_REFERENCE_DB"], read_only=True)
    con.execute("SET TimeZone = 'UTC'")
    # Heavy hitters 0 and 1, keys with no event (>= 5002), rows before any
    # event (2025-06-01) and at exact midnights.
    con.execute(f"""CREATE TEMP TABLE spine AS SELECT i,
        CASE WHEN i % 50 = 0 THEN i % 2 ELSE 2 + (hash(i * 11) % 5100) END AS id,
        CASE WHEN i % 997 = 0 THEN TIMESTAMPTZ '2025-06-01'
             WHEN i % 101 = 0 THEN TIMESTAMPTZ '2026-02-01' + to_days(CAST(i % 50 AS INTEGER))
             ELSE TIMESTAMPTZ '2026-02-01' + to_microseconds(CAST(hash(i * 17) % (59 * {DAY_US}) AS BIGINT)) END AS t
        FROM range({n}) r(i)""")
    spine = con.sql("SELECT CAST(id AS BIGINT) AS id, t FROM spine ORDER BY i").to_arrow_table()
    outputs = [getattr(User, f)[w] for f in ("total", "cnt") for w in WINDOWS]
    modes = os.environ.get("MODES", "exact,tiled").split(",")
    wants = {}
    with fletch.FletchClient(os.environ["FLETCH_URL"]) as client:
        endpoint_reads = []
        read_endpoints = client._endpoints
        client._endpoints = lambda *a: (endpoint_reads.append(1), read_endpoints(*a))[1]
        timings = {}
        for mode in modes:
            tiled = mode == "tiled"
            options = {"use_materialized_offline_query": True} if tiled else None
            endpoint_reads[:] = []
            start = time.perf_counter()
            if mode == "sql":
                cols = ", ".join(f'"{f}[{w}]"' for f in ("total", "cnt") for w in WINDOWS)
                got = client.sql(f"SELECT {cols} FROM user WHERE id = ? AND __as_of__ = ?", params=spine)
            else:
                # Python datetimes for the seeds' spelling; an Arrow column is cast as is.
                times = spine.column("t") if mode.startswith("exact-") else spine.column("t").to_pylist()
                got = client.offline_query(inputs={"user.id": spine.column("id")}, input_times=times,
                                           output=outputs, planner_options=options)
            timings[mode] = time.perf_counter() - start
            if mode == "exact-endpoints":
                assert endpoint_reads, "the SDK did not read the answer from several endpoints"
            if tiled not in wants:
                t0 = time.perf_counter()
                wants[tiled] = reference(con, tiled)
                timings[mode + " duckdb"] = time.perf_counter() - t0
            compare(mode, got, wants[tiled])
    print("spine rows", n, "; seconds:", ", ".join(f"{k} {v:.2f}" for k, v in timings.items()))


if __name__ == "__main__":
    main()
