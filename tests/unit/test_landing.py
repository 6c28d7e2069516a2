"""Raw landing in a DuckDB file: quarantine, idempotent reruns and atomic batches (no network)."""

from __future__ import annotations

import duckdb
import pytest

from revsync.connectors.base import Page
from revsync.warehouse.landing import land


@pytest.fixture
def fresh_db(tmp_path):
    con = duckdb.connect(str(tmp_path / "wh.duckdb"))
    yield con
    con.close()


def _pages() -> list[Page]:
    return [
        Page([{"id": "cus_1", "name": "A"}, {"name": "no key"}], "http://x/v1/customers?limit=2", "100"),
        Page([{"id": "cus_2"}, {"id": "cus_1", "name": "A"}], "http://x/v1/customers?limit=2&s=1", "200"),
    ]


def test_record_without_primary_key_is_quarantined_with_its_reason(fresh_db):
    result = land(fresh_db, "stripe", "customers", _pages(), "b1")
    assert (result.rows, result.quarantined, result.duplicates, result.cursor) == (2, 1, 1, "200")
    assert fresh_db.execute("select _pk from raw_stripe.customers order by _pk").fetchall() == [
        ("cus_1",),
        ("cus_2",),
    ]
    reason, record = fresh_db.execute(
        "select reason, record->>'name' from revsync_state.quarantine where batch_id = 'b1'"
    ).fetchone()
    assert reason == "missing primary key 'id'" and record == "no key"


def test_rerun_of_a_batch_replaces_it(fresh_db):
    land(fresh_db, "stripe", "customers", _pages(), "b1")
    land(fresh_db, "stripe", "customers", _pages(), "b1")
    assert fresh_db.execute("select count(*) from raw_stripe.customers").fetchone()[0] == 2
    assert fresh_db.execute("select count(*) from revsync_state.quarantine").fetchone()[0] == 1
    assert fresh_db.execute("select cursor, batch_id from revsync_state.cursors").fetchall() == [
        ("200", "b1")
    ]


def test_a_failing_batch_leaves_no_rows_and_no_cursor(fresh_db):
    def broken_pages():
        yield _pages()[0]
        raise RuntimeError("source died mid-stream")

    with pytest.raises(RuntimeError):
        land(fresh_db, "stripe", "customers", broken_pages(), "b2")
    assert fresh_db.execute("select count(*) from raw_stripe.customers").fetchone()[0] == 0
    assert fresh_db.execute("select count(*) from revsync_state.cursors").fetchone()[0] == 0
