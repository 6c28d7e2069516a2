"""The optional connectors (Chargebee, Freshdesk) against the running sandbox, landing into DuckDB.

Adding a vendor is a stream table plus a paginator over the same engine: a full load of each must land
exactly the world's rows per stream, fill the landing metadata, and keep every secret out of the
warehouse.
"""

from __future__ import annotations

import duckdb
import httpx
import pytest

from revsync.connectors import registry
from revsync.connectors.chargebee import ChargebeeOffset
from revsync.connectors.freshdesk import LinkHeader, next_link
from revsync.connectors.load import load_source
from revsync.warehouse.landing import raw_table
from sandbox.world.streams import STREAM_TABLES

pytestmark = pytest.mark.integration

WORLD_TABLES = {key: table for key, table in STREAM_TABLES.items() if key[0] in ("chargebee", "freshdesk")}


def _counts(con, source: str, batch_id: str) -> dict[str, tuple[int, int]]:
    """stream -> (rows, distinct primary keys) landed for `batch_id`."""
    out = {}
    for stream in registry.get(source).streams:
        sql = (
            f"select count(*), count(distinct _pk) from {raw_table(source, stream.name)} where _batch_id = ?"
        )
        out[stream.name] = con.execute(sql, [batch_id]).fetchone()
    return out


@pytest.fixture(scope="module")
def loaded(sandbox, tmp_path_factory):
    """A DuckDB file holding a full load of both optional sources as batch `b1`, and the world's counts."""
    con = duckdb.connect(str(tmp_path_factory.mktemp("warehouse") / "wh.duckdb"))
    for source in registry.OPTIONAL_SOURCES:
        load_source(con, registry.get(source), sandbox.base_url(source), sandbox.creds(source), "b1")
    yield con, sandbox.admin("counts")
    con.close()


def test_the_registry_keeps_optional_sources_apart():
    assert list(registry.CONNECTORS) == ["stripe", "hubspot", "zendesk", "netsuite"]
    assert registry.OPTIONAL_SOURCES == ("chargebee", "freshdesk")
    assert registry.get("chargebee").name == "chargebee" and registry.get("freshdesk").name == "freshdesk"
    assert list(registry.available(lambda source: False)) == list(registry.CONNECTORS)
    assert list(registry.available(lambda source: source == "freshdesk"))[-1] == "freshdesk"
    with pytest.raises(KeyError, match="known: chargebee, freshdesk, hubspot"):
        registry.get("salesforce")


def test_each_vendor_is_a_table_plus_a_paginator():
    chargebee, freshdesk = registry.get("chargebee"), registry.get("freshdesk")
    assert {type(s.paginator) for s in chargebee.streams} == {ChargebeeOffset}
    assert {type(s.paginator) for s in freshdesk.streams} == {LinkHeader}
    assert all(s.record_path == "list" and s.record_selector for s in chargebee.streams)
    assert all(s.cursor_field == f"{s.record_selector}.updated_at" for s in chargebee.streams)
    assert all(s.record_path is None and s.cursor_field == "updated_at" for s in freshdesk.streams)


@pytest.mark.parametrize("source", registry.OPTIONAL_SOURCES)
def test_full_load_lands_every_sandbox_row(loaded, source):
    con, world = loaded
    expected = {s: (world[t], world[t]) for (src, s), t in WORLD_TABLES.items() if src == source}
    assert _counts(con, source, "b1") == expected
    assert all(rows > 100 for rows, _ in expected.values())  # every stream needed several pages


def test_landing_metadata_and_cursors_are_filled(loaded, sandbox):
    con, _ = loaded
    for (source, stream), _table in WORLD_TABLES.items():
        row = con.execute(
            "select count(*) filter (where _source_url is null or _cursor_value is null),"
            f" count(distinct _source_url), min(_source_url) from {raw_table(source, stream)}"
        ).fetchone()
        assert row[0] == 0 and row[1] > 1, (source, stream, row)
        assert row[2].startswith(f"{sandbox.base_url(source)}/api/v2/{stream}?")
    cursors = con.execute(
        "select source, stream, cursor from revsync_state.cursors where source in ('chargebee', 'freshdesk')"
    ).fetchall()
    assert {(s, n) for s, n, _ in cursors} == set(WORLD_TABLES) and all(c is not None for *_, c in cursors)
    wrapped = con.execute("select record from raw_chargebee.invoices limit 1").fetchone()[0]
    assert '"object":"invoice"' in wrapped.replace(" ", "") and '"invoice":{' not in wrapped.replace(" ", "")


def test_no_secret_reaches_the_warehouse(loaded, sandbox):
    con, _ = loaded
    secrets = [sandbox.creds(s)["api_key"] for s in registry.OPTIONAL_SOURCES]
    assert all(len(s) >= 16 for s in secrets)
    tables = con.execute(
        "select table_schema, table_name from information_schema.tables where table_type = 'BASE TABLE'"
    ).fetchall()
    for schema, table in tables:
        text = con.execute(f'select string_agg(t::varchar, \'\n\') from "{schema}"."{table}" t').fetchone()[0]
        assert not any(secret in (text or "") for secret in secrets), f"{schema}.{table} holds a credential"


def test_rerunning_a_batch_lands_no_duplicates(sandbox, tmp_path):
    con = duckdb.connect(str(tmp_path / "wh.duckdb"))
    for source in registry.OPTIONAL_SOURCES:
        args = (registry.get(source), sandbox.base_url(source), sandbox.creds(source))
        load_source(con, *args, "b1")
        first = _counts(con, source, "b1")
        load_source(con, *args, "b1")
        assert _counts(con, source, "b1") == first
    con.close()


def test_link_header_parsing_follows_only_rel_next(sandbox):
    both = (
        '<https://x.freshdesk.com/api/v2/tickets?page=1>; rel="prev", <https://x/api/v2/t?page=3>;rel="next"'
    )
    assert next_link(both) == "https://x/api/v2/t?page=3"
    assert next_link('<https://x/api/v2/t?page=1>; rel="prev"') is None and next_link(None) is None
    # and the sandbox's own header, verbatim
    creds = sandbox.creds("freshdesk")
    response = httpx.get(
        f"{sandbox.base_url('freshdesk')}/api/v2/contacts",
        params={"per_page": 5},
        auth=(creds["api_key"], "X"),
    )
    assert (
        next_link(response.headers["link"])
        == f"{sandbox.base_url('freshdesk')}/api/v2/contacts?per_page=5&page=2"
    )
