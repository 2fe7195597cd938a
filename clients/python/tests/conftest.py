"""The live server the tests talk to and the reference they check against.

integration/python_test.go starts `fletch demo` and sets FLETCH_URL (its
address), FLETCH_NOW (the demo data's "now") and FLETCH_REFERENCE_DB (a
DuckDB file holding the same generated data, for reference SQL).
"""

import datetime as dt
import os

import duckdb
import pytest

import fletch


def _require(name):
    value = os.environ.get(name)
    if not value:
        msg = f"{name} is not set: run these tests through `go test ./integration -run Python`"
        if os.environ.get("CI") == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    return value


@pytest.fixture(scope="session")
def url():
    return _require("FLETCH_URL")


@pytest.fixture(scope="session")
def now():
    return dt.datetime.fromisoformat(_require("FLETCH_NOW").replace("Z", "+00:00"))


@pytest.fixture(scope="session")
def client(url):
    with fletch.FletchClient(url) as c:
        yield c


@pytest.fixture(scope="session")
def ref():
    con = duckdb.connect(_require("FLETCH_REFERENCE_DB"), read_only=True)
    con.execute("SET TimeZone = 'UTC'")
    yield con
    con.close()
