"""Incremental extraction against a private sandbox over real HTTP: a full load, then `advance`, then
a run that lands exactly the records the step changed, then a run that lands nothing."""

from __future__ import annotations

import time

import duckdb
import pytest

from revsync.connectors.load import Window, load_source
from revsync.connectors.registry import CONNECTORS, get
from sandbox.world.streams import STREAM_TABLES

pytestmark = pytest.mark.integration

# (source, stream) -> world table whose rows written since a time are that stream's changes
CHANGE_TABLES = {key: table for key, table in STREAM_TABLES.items() if key[0] in CONNECTORS}


def _extract(con, server, batch_id: str) -> dict[tuple[str, str], tuple[str, int]]:
    """Run every source once as `batch_id`; (source, stream) -> (mode, rows landed)."""
    out = {}
    for name, connector in CONNECTORS.items():
        results = load_source(con, connector, server.base_url(name), server.creds(name), batch_id)
        for stream, result in results.items():
            assert result.quarantined == 0, (name, stream, result)
            if (name, stream) in CHANGE_TABLES:  # aggregates (stripe usage): test_usage.py
                out[(name, stream)] = result.rows
    return out


def _modes(con) -> dict[tuple[str, str], int]:
    rows = con.execute("select source, stream, cursor from revsync_state.cursors").fetchall()
    return {(s, t): int(c) for s, t, c in rows}


def test_second_run_lands_exactly_the_changes_and_third_run_nothing(
    start_sandbox_factory, world_copy, tmp_path
):
    con = duckdb.connect(str(tmp_path / "wh.duckdb"))
    with start_sandbox_factory(world_copy) as server:
        full = _extract(con, server, "b1")
        counts = server.admin("counts")
        assert full == {key: counts[table] for key, table in CHANGE_TABLES.items()}
        cursors_after_full = _modes(con)

        step_started = int(time.time())
        step = server.admin("advance", method="POST", minutes=60, events=60)
        changed = server.admin("counts", changed_since=step_started)
        expected = {key: changed[table] for key, table in CHANGE_TABLES.items()}
        assert sum(expected.values()) > 100, step  # the step changed records in every system
        assert all(expected[(s, t)] > 0 for s, t in (("stripe", "invoices"), ("hubspot", "deals")))

        second = _extract(con, server, "b2")
        assert second == expected
        cursors_after_second = _modes(con)
        assert all(cursors_after_second[k] >= cursors_after_full[k] for k in cursors_after_full)

        third = _extract(con, server, "b3")
        assert third == dict.fromkeys(CHANGE_TABLES, 0)

    # the incremental runs used the change feeds, and every changed record's latest version is landed
    (batches,) = con.execute(
        "select count(distinct _batch_id) from raw_stripe.invoices where _batch_id = 'b2'"
    ).fetchone()
    assert batches == 1
    urls = con.execute(
        "select distinct regexp_extract(_source_url, '/(v1/events|search|incremental|suiteql)') from ("
        " select _source_url from raw_stripe.invoices where _batch_id = 'b2' union all"
        " select _source_url from raw_hubspot.deals where _batch_id = 'b2' union all"
        " select _source_url from raw_zendesk.organizations where _batch_id = 'b2' union all"
        " select _source_url from raw_zendesk.users where _batch_id = 'b2' union all"
        " select _source_url from raw_zendesk.tickets where _batch_id = 'b2')"
    ).fetchall()
    assert {u for (u,) in urls} == {"/v1/events", "/search", "/incremental"}
    deals = con.execute(
        "select count(*) filter (where (record->'associations') is null) from raw_hubspot.deals"
        " where _batch_id = 'b2'"
    ).fetchone()[0]
    assert deals == 0  # search results get their company associations from the v4 batch read


def test_full_refresh_lands_nothing_new_and_start_cursor_rereads_a_window(sandbox, tmp_path):
    con = duckdb.connect(str(tmp_path / "wh.duckdb"))
    zendesk = CONNECTORS["zendesk"]
    args = (zendesk, sandbox.base_url("zendesk"), sandbox.creds("zendesk"))
    first = load_source(con, *args, "b1")
    refreshed = load_source(con, *args, "b2", window=Window(full_refresh=True))
    assert {s: r.rows for s, r in refreshed.items()} == dict.fromkeys(first, 0)
    assert {s: r.unchanged for s, r in refreshed.items()} == {s: r.rows for s, r in first.items()}
    rewound = load_source(con, *args, "b3", window=Window(start_cursor=0))
    assert {s: (r.rows, r.unchanged) for s, r in rewound.items()} == {
        s: (0, r.rows) for s, r in first.items()
    }


OPTIONAL_CHANGE_TABLES = {
    key: table
    for key, table in STREAM_TABLES.items()
    if key[0] == "chargebee" or key in (("freshdesk", "contacts"), ("freshdesk", "tickets"))
}


def test_optional_sources_read_changes_through_their_since_filters(
    start_sandbox_factory, world_copy, tmp_path
):
    con = duckdb.connect(str(tmp_path / "wh.duckdb"))
    with start_sandbox_factory(world_copy) as server:

        def run(batch_id: str) -> dict[tuple[str, str], int]:
            out = {}
            for name in ("chargebee", "freshdesk"):
                creds = server.creds(name)
                for stream, result in load_source(
                    con, get(name), server.base_url(name), creds, batch_id
                ).items():
                    out[(name, stream)] = result.rows
            return out

        run("b1")
        step_started = int(time.time())
        server.admin("advance", method="POST", minutes=60, events=60)
        changed = server.admin("counts", changed_since=step_started)
        second = run("b2")
        third = run("b3")
        companies = server.admin("counts")["zendesk_organizations"]
    assert {k: second[k] for k in OPTIONAL_CHANGE_TABLES} == {
        k: changed[t] for k, t in OPTIONAL_CHANGE_TABLES.items()
    }
    # Freshdesk companies have no changed-since filter: each run reads them all, and only versions not
    # landed yet land. The sandbox's `advance` ages every timestamp, so after it every company is new.
    assert second[("freshdesk", "companies")] == companies
    assert third == dict.fromkeys(third, 0)
