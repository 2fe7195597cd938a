"""Single-entity latency through Python, measured like cmd/fletchload does in
Go so the figures stand side by side: open loop at a fixed rate, request i
due at start + i/rate, latency from that due time (a late start counts).

    .venv/bin/python clients/python/bench_single.py grpc://127.0.0.1:PORT \
        [--rate 250] [--duration 10] [--entities 500] [--class item] \
        [--out genre_from_llm ...] [--sql "SELECT genre_from_llm FROM item WHERE id = '{id}'"] \
        [--workers 4] [--prewarm]

Two runs, one JSON line each (p50/p90/p99/max in µs, like fletchload's):
  adbc_statement  the SQL through ADBC (adbc_driver_flightsql: execute +
                  fetch_arrow_table)
  python_native   the native feature query (fletch.FletchClient.query: one
                  DoExchange through pyarrow.flight)
Several workers (threads with a connection each, --workers): ADBC's
statement takes longer than 4 ms here, more than one worker can do at
250 req/s; the drivers release the GIL while they wait on the network.
docs/BENCHMARKS.md has the figures.
"""

import argparse
import itertools
import json
import math
import random
import threading
import time

import adbc_driver_flightsql.dbapi as dbapi

import fletch


def percentile(sorted_values, p):
    """Nearest rank, as fletchload's: the smallest value with at least p*n at or below it."""
    if not sorted_values:
        return 0.0
    i = max(0, min(len(sorted_values) - 1, math.ceil(p * len(sorted_values)) - 1))
    return sorted_values[i]


def paced(make_fn, pick, rate, duration, workers, warmup=1.0):
    """Runs requests open loop at rate for duration seconds (after an
    unmeasured warm-up) on workers threads, each with its own make_fn()
    (a connection and the function that queries an id through it), the ids
    from pick(). A worker claims
    the next due time, waits for it, and runs its request."""
    interval = 1.0 / rate
    fns = [make_fn() for _ in range(workers)]
    for seconds in (warmup, duration):
        total = int(round(rate * seconds))
        lat, lag = [], []
        slots = itertools.count()  # next() is atomic under the GIL
        start = time.perf_counter()

        def work(fn):
            for i in slots:
                if i >= total:
                    return
                due = start + i * interval
                ahead = due - time.perf_counter()
                if ahead > 0.0005:  # time.sleep overshoots by tens of µs: spin the end
                    time.sleep(ahead - 0.0005)
                while time.perf_counter() < due:
                    pass
                began = time.perf_counter()
                fn(pick())
                end = time.perf_counter()
                lat.append((end - due) * 1e6)
                lag.append((began - due) * 1e6)

        threads = [threading.Thread(target=work, args=(fn,)) for fn in fns]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - start
    lat.sort()
    lag.sort()
    return {
        "rate": rate,
        "duration_s": duration,
        "workers": workers,
        "requests": len(lat),
        "achieved_rate": len(lat) / elapsed,
        "p50_us": percentile(lat, 0.5),
        "p90_us": percentile(lat, 0.9),
        "p99_us": percentile(lat, 0.99),
        "max_us": lat[-1],
        "sched_lag_p50_us": percentile(lag, 0.5),
        "sched_lag_p99_us": percentile(lag, 0.99),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("url")
    ap.add_argument("--rate", type=float, default=250)
    ap.add_argument("--duration", type=float, default=10)
    ap.add_argument("--entities", type=int, default=500)
    ap.add_argument("--class", dest="cls", default="item")
    ap.add_argument("--out", action="append", help="native outputs (default: genre_from_llm)")
    ap.add_argument("--sql", default="SELECT genre_from_llm FROM item WHERE id = '{id}'")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--workers", type=int, default=4, help="threads, each with its own connection")
    ap.add_argument("--prewarm", action="store_true", help="first ask every id once (fills the server's online store)")
    args = ap.parse_args()
    outputs = args.out or ["genre_from_llm"]
    rng = random.Random(args.seed)

    def pick():
        return str(rng.randint(1, args.entities))

    if args.prewarm:
        with fletch.FletchClient(args.url) as client:
            for i in range(1, args.entities + 1):
                client.query(input={args.cls + ".id": str(i)}, output=outputs)
    closers = []

    def adbc_statement():
        conn = dbapi.connect(args.url, autocommit=True)
        cur = conn.cursor()
        closers.extend([cur.close, conn.close])

        def statement(i):
            cur.execute(args.sql.replace("{id}", i))
            assert cur.fetch_arrow_table().num_rows == 1

        return statement

    def python_native():
        client = fletch.FletchClient(args.url)
        closers.append(client.close)
        key = args.cls + ".id"

        def native(i):
            assert client.query(input={key: i}, output=outputs).num_rows == 1

        return native

    for mode, query, make in (
        ("adbc_statement", args.sql, adbc_statement),
        ("python_native", f"class={args.cls} out={outputs}", python_native),
    ):
        r = paced(make, pick, args.rate, args.duration, args.workers)
        print(json.dumps({"mode": mode, "query": query, **r}), flush=True)
        while closers:
            closers.pop()()


if __name__ == "__main__":
    main()
