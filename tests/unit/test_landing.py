"""Raw landing in a DuckDB file: contract quarantine, schema drift, versions, idempotent reruns and
atomic batches (no network)."""

from __future__ import annotations

from dataclasses import replace

import duckdb
import pytest

from revsync.connectors.base import Page, Stream, StripeCursor, iso_datetime
from revsync.warehouse.landing import land, read_cursor

CUSTOMERS = Stream(
    "customers",
    "/v1/customers",
    "id",
    StripeCursor(),
    "data",
    cursor_field="updated",
    contract={"balance": "integer", "updated": "timestamp"},
)
TICKETS = Stream(
    "tickets", "/t", "id", StripeCursor(), "t", cursor_field="updated_at", cursor_parser=iso_datetime
)


@pytest.fixture
def fresh_db(tmp_path):
    con = duckdb.connect(str(tmp_path / "wh.duckdb"))
    yield con
    con.close()


def _page(*records: dict, url: str = "http://x/v1/customers") -> Page:
    return Page(list(records), url, [r.get("updated") for r in records])


def _pages() -> list[Page]:
    return [
        _page({"id": "cus_1", "name": "A", "updated": 100}, {"name": "no key", "updated": 100}),
        _page({"id": "cus_2", "updated": 200}, {"id": "cus_1", "name": "A", "updated": 100}),
    ]


def _rows(con, table="raw_stripe.customers") -> list[tuple]:
    return con.execute(
        f"select _pk, record->>'name', _cursor_value from {table} order by _pk, _loaded_at"
    ).fetchall()


def test_record_without_primary_key_is_quarantined_with_its_reason(fresh_db):
    result = land(fresh_db, "stripe", CUSTOMERS, _pages(), "b1")
    assert (result.received, result.rows, result.quarantined, result.duplicates) == (3, 2, 1, 1)
    assert result.cursor == 200
    assert _rows(fresh_db) == [("cus_1", "A", "100"), ("cus_2", None, "200")]
    reason, name = fresh_db.execute(
        "select reason, record->>'name' from revsync_state.quarantine where batch_id = 'b1'"
    ).fetchone()
    assert reason == "missing primary key 'id'" and name == "no key"


def test_unparseable_amount_or_timestamp_is_quarantined_and_the_rest_lands(fresh_db):
    pages = [
        _page(
            {"id": "cus_1", "balance": "12x", "updated": 100},
            {"id": "cus_2", "balance": "1500", "updated": 100},  # a string that still is an integer
            {"id": "cus_3", "balance": 7, "updated": "yesterday"},
        )
    ]
    pages[0].cursors[2] = None  # what run_stream yields for an unparseable cursor
    result = land(fresh_db, "stripe", CUSTOMERS, pages, "b1")
    assert (result.rows, result.quarantined) == (1, 2)
    reasons = dict(fresh_db.execute("select record->>'id', reason from revsync_state.quarantine").fetchall())
    assert reasons == {
        "cus_1": "field 'balance': expected integer, got str '12x'",
        "cus_3": "field 'updated': expected timestamp, got str 'yesterday'",
    }


def test_rerun_of_a_batch_adds_nothing_and_quarantines_once(fresh_db):
    land(fresh_db, "stripe", CUSTOMERS, _pages(), "b1")
    again = land(fresh_db, "stripe", CUSTOMERS, _pages(), "b1")
    assert (again.rows, again.unchanged, again.quarantined) == (0, 2, 1)
    assert fresh_db.execute("select count(*) from raw_stripe.customers").fetchone()[0] == 2
    assert fresh_db.execute("select count(*) from revsync_state.quarantine").fetchone()[0] == 1
    assert fresh_db.execute("select cursor, batch_id from revsync_state.cursors").fetchall() == [
        ("200", "b1")
    ]


def test_a_later_batch_lands_only_changed_versions(fresh_db):
    land(fresh_db, "stripe", CUSTOMERS, _pages(), "b1")
    again = land(fresh_db, "stripe", CUSTOMERS, _pages(), "b2")
    assert (again.rows, again.unchanged) == (0, 2)
    changed = land(
        fresh_db,
        "stripe",
        CUSTOMERS,
        [_page({"id": "cus_1", "name": "B", "updated": 300}, {"id": "cus_2", "updated": 200})],
        "b3",
    )
    assert (changed.rows, changed.unchanged, changed.cursor) == (1, 1, 300)
    assert _rows(fresh_db)[:2] == [("cus_1", "A", "100"), ("cus_1", "B", "300")]


def test_within_a_batch_the_latest_version_wins(fresh_db):
    pages = [
        _page({"id": "cus_1", "name": "new", "updated": 300}, {"id": "cus_1", "name": "old", "updated": 100})
    ]
    result = land(fresh_db, "stripe", CUSTOMERS, pages, "b1")
    assert (result.rows, result.duplicates) == (1, 1)
    assert _rows(fresh_db) == [("cus_1", "new", "300")]


@pytest.mark.parametrize("newest_first", [True, False])
def test_equal_cursors_resolve_by_the_stream_order(fresh_db, newest_first):
    """Two versions with the same change time (two Stripe events in one second): the newer one wins,
    which is the first to arrive in a newest-first feed and the last in an oldest-first one."""
    stream = replace(CUSTOMERS, newest_first=newest_first)
    older, newer = (
        {"id": "cus_1", "name": "old", "updated": 100},
        {"id": "cus_1", "name": "new", "updated": 100},
    )
    land(fresh_db, "stripe", stream, [_page(*((newer, older) if newest_first else (older, newer)))], "b1")
    assert _rows(fresh_db) == [("cus_1", "new", "100")]


def test_cursor_never_moves_backwards(fresh_db):
    land(fresh_db, "stripe", CUSTOMERS, _pages(), "b1")
    land(fresh_db, "stripe", CUSTOMERS, [_page({"id": "cus_9", "updated": 50})], "b2")
    assert read_cursor(fresh_db, "stripe", "customers") == 200


def test_new_fields_and_changed_types_are_reported_as_drift(fresh_db):
    land(fresh_db, "stripe", CUSTOMERS, _pages(), "b1")
    drifted = [_page({"id": "cus_4", "name": 42, "updated": 400, "billing_mode": {"type": "flexible"}})]
    result = land(fresh_db, "stripe", CUSTOMERS, drifted, "b2")
    assert result.rows == 1
    assert {(d.field, d.change, d.was, d.now) for d in result.drift} == {
        ("billing_mode", "new_field", None, "object"),
        ("name", "type_changed", "string", "number"),
    }
    stored = fresh_db.execute(
        "select field, change from revsync_state.schema_drift where batch_id = 'b2' order by field"
    ).fetchall()
    assert stored == [("billing_mode", "new_field"), ("name", "type_changed")]


def test_a_failing_batch_leaves_no_rows_and_no_cursor(fresh_db):
    def broken_pages():
        yield _pages()[0]
        raise RuntimeError("source died mid-stream")

    with pytest.raises(RuntimeError):
        land(fresh_db, "stripe", CUSTOMERS, broken_pages(), "b2")
    assert fresh_db.execute("select count(*) from raw_stripe.customers").fetchone()[0] == 0
    assert fresh_db.execute("select count(*) from revsync_state.cursors").fetchone()[0] == 0


def test_iso_cursors_parse_to_epoch_seconds():
    assert iso_datetime("2026-11-22T10:00:00Z") == 1795341600
    assert iso_datetime("2026-11-22T02:00:00-08:00") == 1795341600
    with pytest.raises(ValueError):
        iso_datetime("2026-11-22 10:00:00")
