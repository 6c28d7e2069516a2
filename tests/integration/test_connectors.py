"""Connectors against the running sandbox over real HTTP, landing into a DuckDB file.

Full loads must land exactly the sandbox's row count per world table; reruns of a batch add nothing;
no credential reaches the warehouse; under the hostile fault profile the retries still land it all.
"""

from __future__ import annotations

import time

import duckdb
import pytest

from revsync.connectors import netsuite
from revsync.connectors.base import Connector, SuiteQLOffset
from revsync.connectors.http import RetryPolicy
from revsync.connectors.load import Window, load_source
from revsync.connectors.registry import CONNECTORS
from revsync.warehouse.landing import raw_table
from sandbox.world.streams import STREAM_TABLES

pytestmark = pytest.mark.integration

WORLD_TABLES = {key: table for key, table in STREAM_TABLES.items() if key[0] in CONNECTORS}


def _counts(con, source: str, batch_id: str) -> dict[str, tuple[int, int]]:
    """stream -> (rows, distinct primary keys) landed for `batch_id`."""
    out = {}
    for stream in CONNECTORS[source].streams:
        if (source, stream.name) not in WORLD_TABLES:  # aggregates (stripe usage): test_usage.py
            continue
        sql = (
            f"select count(*), count(distinct _pk) from {raw_table(source, stream.name)} where _batch_id = ?"
        )
        out[stream.name] = con.execute(sql, [batch_id]).fetchone()
    return out


def _expected(sandbox_counts: dict, source: str) -> dict[str, tuple[int, int]]:
    return {
        s: (sandbox_counts[t], sandbox_counts[t]) for (src, s), t in WORLD_TABLES.items() if src == source
    }


@pytest.fixture(scope="module")
def loaded(sandbox, tmp_path_factory):
    """A DuckDB file holding a full load of all four sources as batch `b1`."""
    con = duckdb.connect(str(tmp_path_factory.mktemp("warehouse") / "wh.duckdb"))
    for name, connector in CONNECTORS.items():
        load_source(con, connector, sandbox.base_url(name), sandbox.creds(name), "b1")
    yield con
    con.close()


@pytest.mark.parametrize("source", sorted(CONNECTORS))
def test_full_load_lands_every_sandbox_row(loaded, sandbox, source):
    assert _counts(loaded, source, "b1") == _expected(sandbox.admin("counts"), source)


def test_landing_metadata_is_filled(loaded):
    row = loaded.execute(
        "select count(*) filter (where _loaded_at is null or _source_url is null or _cursor_value is null),"
        " min(_source_url) from raw_stripe.customers"
    ).fetchone()
    assert row[0] == 0 and row[1].startswith("http://127.0.0.1:")
    cursors = loaded.execute("select count(*), count(cursor) from revsync_state.cursors").fetchone()
    streams = sum(len(c.streams) for c in CONNECTORS.values())
    assert cursors == (streams, streams)


def test_no_secret_reaches_the_warehouse(loaded, sandbox):
    secrets = [
        v for name in CONNECTORS for k, v in sandbox.creds(name).items() if k not in ("email", "account")
    ]
    assert all(len(s) >= 8 for s in secrets)
    tables = loaded.execute(
        "select table_schema, table_name from information_schema.tables where table_type = 'BASE TABLE'"
    ).fetchall()
    for schema, table in tables:
        text = loaded.execute(
            f'select string_agg(t::varchar, \'\n\') from "{schema}"."{table}" t'
        ).fetchone()[0]
        assert not any(secret in (text or "") for secret in secrets), f"{schema}.{table} holds a credential"


def test_rerunning_a_batch_lands_no_duplicates(sandbox, tmp_path):
    con = duckdb.connect(str(tmp_path / "wh.duckdb"))
    zendesk = CONNECTORS["zendesk"]
    args = (zendesk, sandbox.base_url("zendesk"), sandbox.creds("zendesk"))
    load_source(con, *args, "b1")
    first = _counts(con, "zendesk", "b1")
    results = load_source(con, *args, "b1", window=Window(full_refresh=True))
    assert _counts(con, "zendesk", "b1") == first
    assert con.execute("select count(*) from raw_zendesk.users").fetchone()[0] == first["users"][0]
    assert (results["users"].rows, results["users"].unchanged) == (0, first["users"][0])


def test_suiteql_restarts_past_the_result_cap(sandbox, tmp_path):
    """A cap of 2,000 results forces restarts at `id > last`; nothing is lost or repeated."""
    capped = Connector(
        "netsuite", netsuite.streams(SuiteQLOffset(limit=1000, max_results=2000)), netsuite.auth
    )
    con = duckdb.connect(str(tmp_path / "wh.duckdb"))
    results = load_source(
        con, capped, sandbox.base_url("netsuite"), sandbox.creds("netsuite"), "b1", ("customerPayment",)
    )
    expected = sandbox.admin("counts")["netsuite_customer_payments"]
    assert expected > 4000 and results["customerPayment"].rows == expected
    assert results["customerPayment"].duplicates == 0


def test_hostile_faults_land_the_same_counts(start_sandbox_factory, world_copy, tmp_path):
    """429s, 5xx, slow and truncated pages and repeated records: retries and dedup land exactly the world."""
    con = duckdb.connect(str(tmp_path / "wh.duckdb"))
    policy = RetryPolicy(max_attempts=10, max_total_s=60, base_delay_s=0.05, max_delay_s=1.0)
    started = time.monotonic()
    with start_sandbox_factory(world_copy, faults="zendesk=hostile") as hostile:
        zendesk = CONNECTORS["zendesk"]
        load_source(con, zendesk, hostile.base_url("zendesk"), hostile.creds("zendesk"), "b1", policy=policy)
        expected = _expected(hostile.admin("counts"), "zendesk")
        faults = hostile.admin("faults")
    assert _counts(con, "zendesk", "b1") == expected
    assert sum(faults["injected"]["zendesk"].values()) > 0, faults
    assert time.monotonic() - started < 90
