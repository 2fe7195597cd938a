"""Single-entity latency through Python: the same query as a Flight SQL
statement over ADBC, and through the native feature query (FletchClient).

    .venv/bin/python clients/python/bench_single.py grpc://127.0.0.1:PORT [N]

Prints p50/p99 in microseconds; docs/BENCHMARKS.md has the figures.
"""

import statistics
import sys
import time

import adbc_driver_flightsql.dbapi as dbapi

import fletch

FEATURES = ["full_name", "email", "review_count__604800__", "review_count__2592000__", "average_rating_given"]


def measure(fn, n):
    for _ in range(min(50, n)):  # warm up: plans cached, connections open
        fn()
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1e6)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.99) - 1]


def main():
    url = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    sql = f"SELECT {', '.join(FEATURES)} FROM user WHERE id = '50'"
    with dbapi.connect(url, autocommit=True) as conn:
        cur = conn.cursor()

        def statement():
            cur.execute(sql)
            assert cur.fetch_arrow_table().num_rows == 1

        p50, p99 = measure(statement, n)
        print(f"adbc_statement   p50 {p50:8.0f} µs  p99 {p99:8.0f} µs")
        cur.close()
    with fletch.FletchClient(url) as client:
        def native():
            assert client.query(input={"user.id": "50"}, output=FEATURES).num_rows == 1

        p50, p99 = measure(native, n)
        print(f"python_native    p50 {p50:8.0f} µs  p99 {p99:8.0f} µs")


if __name__ == "__main__":
    main()
