"""The issue's ADBC acceptance: what a notebook user does with
adbc_driver_flightsql, checked against DuckDB SQL over the same data."""

import adbc_driver_flightsql.dbapi as dbapi
import pyarrow as pa
import pytest


@pytest.fixture(scope="module")
def conn(url):
    c = dbapi.connect(url if "://" in url else "grpc://" + url, autocommit=True)
    yield c
    c.close()


def test_get_objects(conn):
    objs = conn.adbc_get_objects().read_all().to_pylist()
    catalogs = {o["catalog_name"] for o in objs}
    assert "fletch" in catalogs
    tables = {t["table_name"] for o in objs for s in (o["catalog_db_schemas"] or []) for t in (s["db_schema_tables"] or [])}
    assert {"user", "item", "review", "user_item"} <= tables


def test_get_table_schema(conn):
    schema = conn.adbc_get_table_schema("user")
    assert schema.field("id").type == pa.string()
    assert schema.field("full_name").type == pa.string()
    assert schema.field("review_count__604800__").type == pa.int64()


def test_execute_10000_parameter_rows(conn, ref, now):
    ids = [str(i % 1200 + 1) for i in range(10_000)]
    params = pa.table({"id": pa.array(ids), "t": pa.array([now] * len(ids), type=pa.timestamp("us", tz="UTC"))})
    cur = conn.cursor()
    cur.execute("SELECT id, full_name, review_count__604800__ FROM user WHERE id = ? AND __as_of__ = ?", params)
    got = cur.fetch_arrow_table()
    cur.close()
    assert got.num_rows == len(ids)
    assert got.column("id").to_pylist() == ids
    want = dict(ref.execute(f"""
        SELECT u.hid, u.first_name || ' ' || u.last_name FROM marketplace_users u""").fetchall())
    assert got.column("full_name").to_pylist() == [want.get(i) for i in ids]
    counts = dict(ref.execute("""
        SELECT user_hid, count(*) FROM marketplace_reviews
        WHERE created_at <= ? AND created_at > ?::TIMESTAMPTZ - INTERVAL 7 DAY GROUP BY user_hid""", [now, now]).fetchall())
    assert got.column("review_count__604800__").to_pylist() == [counts.get(i, 0) for i in ids]


def test_fetch_df(conn):
    cur = conn.cursor()
    cur.execute("SELECT id, full_name FROM user WHERE id IN ('1', '2', '50')")
    df = cur.fetch_df()
    cur.close()
    assert list(df["id"]) == ["1", "2", "50"]
    assert df["full_name"].notna().all()
