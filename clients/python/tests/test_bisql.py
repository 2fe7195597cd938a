"""SQL for BI tools (issue 15): browsing, aggregating and joining features
through ADBC into pandas and polars, each answer checked against DuckDB SQL
over the same source rows."""

import math

import adbc_driver_flightsql.dbapi as dbapi
import polars as pl
import pytest


@pytest.fixture(scope="module")
def conn(url):
    c = dbapi.connect(url if "://" in url else "grpc://" + url, autocommit=True)
    yield c
    c.close()


def _queries(now):
    as_of = "'" + now.isoformat() + "'"

    def reviews(agg, window=""):
        within = f" AND x.created_at > ? - INTERVAL {window}" if window else ""
        return f"(SELECT {agg} FROM marketplace_reviews x WHERE x.user_hid = u.hid AND x.created_at <= ?{within})"

    def purchases(agg, window=""):
        within = f" AND x.created_at > ? - INTERVAL {window}" if window else ""
        return f"(SELECT {agg} FROM marketplace_item_prices x WHERE x.buyer_hid = u.hid AND x.kind = 'purchase' AND x.created_at <= ?{within})"

    return [
        # DBeaver's Data tab: every column, the computed ones as
        # examples/marketplace/marketplace.py defines them.
        ("browse every column",
         f'SELECT * FROM "user" WHERE __as_of__ = {as_of} LIMIT 200',
         "SELECT u.hid, u.created_at, u.first_name, u.last_name, u.email, u.birthday, u.first_name || ' ' || u.last_name, "
         f"{reviews('avg(star_rating)')}, {reviews('count(*)', '7 DAY')}, {reviews('count(*)', '30 DAY')}, {reviews('count(*)', '60 DAY')}, "
         f"{purchases('avg(value)')}, coalesce({purchases('sum(value)', '30 DAY')}, 0), coalesce({purchases('sum(value)', '90 DAY')}, 0), "
         "jaccard(lower(u.first_name || ' ' || u.last_name), lower(u.email)) "
         "FROM marketplace_users u WHERE u.created_at <= ? ORDER BY u.hid LIMIT 200"),
        ("browse",
         f'SELECT id, full_name, email FROM "user" WHERE __as_of__ = {as_of} LIMIT 200',
         "SELECT hid, first_name || ' ' || last_name, email FROM marketplace_users WHERE created_at <= ? ORDER BY hid LIMIT 200"),
        ("group by",
         "SELECT genre_from_llm, COUNT(*) AS n, AVG(price) AS avg_price FROM item GROUP BY genre_from_llm ORDER BY 2 DESC, 1",
         "SELECT genre, count(*), avg(list_price) FROM marketplace_items WHERE ? IS NOT NULL GROUP BY genre ORDER BY 2 DESC, 1"),
        ("join",
         f"SELECT i.title, count(*) AS n FROM review r JOIN item i ON r.item_id = i.id WHERE r.__as_of__ = {as_of} GROUP BY i.title ORDER BY n DESC, i.title LIMIT 25",
         "SELECT i.title, count(*) AS n FROM marketplace_reviews r JOIN marketplace_items i ON r.item_id = i.id WHERE r.created_at <= ? GROUP BY i.title ORDER BY n DESC, i.title LIMIT 25"),
        ("superset wrapper",
         "SELECT * FROM (SELECT id, title, price FROM item WHERE price > 100) AS virtual_table ORDER BY id LIMIT 1000",
         "SELECT id, title, list_price FROM marketplace_items WHERE list_price > 100 AND ? IS NOT NULL ORDER BY id LIMIT 1000"),
    ]


def _same(got, want):
    assert len(got) == len(want)
    for g_row, w_row in zip(got, want):
        for g, w in zip(g_row, w_row):
            if isinstance(w, float) or isinstance(g, float):
                assert (g is None and w is None) or math.isclose(g, w, rel_tol=1e-9), (g_row, w_row)
            else:
                assert (None if g != g else g) == w, (g_row, w_row)  # NaN is pandas' null


@pytest.mark.parametrize("name", ["browse every column", "browse", "group by", "join", "superset wrapper"])
def test_pandas_and_polars(conn, ref, now, name):
    _, query, reference = next(q for q in _queries(now) if q[0] == name)
    want = [tuple(r) for r in ref.execute(reference, [now] * reference.count("?")).fetchall()]
    cur = conn.cursor()
    cur.execute(query)
    df = cur.fetch_df()
    cur.close()
    rows = [tuple(None if v is None or (isinstance(v, float) and math.isnan(v)) else v for v in r) for r in df.itertuples(index=False)]
    _same(rows, want)
    cur = conn.cursor()
    cur.execute(query)
    pdf = pl.from_arrow(cur.fetch_arrow_table())
    cur.close()
    _same(pdf.rows(), want)


def test_schema_probe(conn):
    """Tableau's WHERE 1=0: the columns, no rows."""
    cur = conn.cursor()
    cur.execute('SELECT * FROM "user" WHERE 1=0')
    table = cur.fetch_arrow_table()
    cur.close()
    assert table.num_rows == 0
    assert "full_name" in table.schema.names


def test_select_1(conn):
    cur = conn.cursor()
    cur.execute("SELECT 1")
    assert cur.fetchone()[0] == 1
    cur.close()
