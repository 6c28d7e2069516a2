"""Stripe daily usage (meter event summaries per meter x customer) against a private sandbox over real
HTTP: a full load sums to the world's `stripe_usage_records` per customer and meter; after `advance`
an incremental run lands exactly the new or grown days, and the next run nothing."""

from __future__ import annotations

import time

import duckdb
import pytest

from revsync.connectors import stripe
from revsync.connectors.load import Window, extract_stream
from revsync.connectors.registry import CONNECTORS

pytestmark = pytest.mark.integration

DAY = 86_400
LATEST = (
    "select record->>'customer' as customer, record->>'meter' as meter,"
    " (record->>'start_time')::bigint as day, (record->>'aggregated_value')::double as value"
    " from raw_stripe.usage qualify row_number() over (partition by _pk order by _loaded_at desc) = 1"
)


def _world(path, sql: str, params=()) -> list[tuple]:
    con = duckdb.connect(str(path / "world.duckdb"), read_only=True)
    try:
        return con.execute(sql, list(params)).fetchall()
    finally:
        con.close()


def _run(con, server, batch_id: str, window: Window | None = None):
    connector = CONNECTORS["stripe"]
    with connector.fetcher(server.creds("stripe")) as fetcher:
        started = time.monotonic()
        run = extract_stream(
            con, connector, stripe.USAGE, fetcher, server.base_url("stripe"), batch_id, window or Window()
        )
        print(
            f"usage {batch_id}: {run.mode} since {run.since}: {run.result}"
            f" in {time.monotonic() - started:.1f}s"
        )
    assert run.result.quarantined == 0
    return run


def test_usage_sums_match_the_world_and_incremental_runs_land_only_new_or_grown_days(
    start_sandbox_factory, world_copy, tmp_path
):
    before = dict(
        _world(
            world_copy,
            "select customer || ' mtr_' || meter, sum(quantity) from stripe_usage_records group by all",
        )
    )
    con = duckdb.connect(str(tmp_path / "wh.duckdb"))
    with start_sandbox_factory(world_copy) as server:
        full = _run(con, server, "b1")
        sums = dict(
            con.execute(
                f"select customer || ' ' || meter, sum(value) from ({LATEST}) group by all"
            ).fetchall()
        )
        assert len(before) > 100 and sums == {k: float(v) for k, v in before.items()}
        assert full.mode == "full" and full.result.rows == full.result.received

        step_started = int(time.time())
        server.admin("advance", method="POST", minutes=60, events=60)
        not_due = _run(con, server, "b2")  # read minutes ago: usage waits for its refresh interval
        second = _run(con, server, "b2", Window(force=True))
        third = _run(con, server, "b3", Window(force=True))

    # the days the step recorded usage on, with the world's totals for them
    changed = {
        (c, f"mtr_{m}", d): float(q)
        for c, m, d, q in _world(
            world_copy,
            "with days as (select distinct customer, meter, period_start_at // 86400 * 86400 as d"
            " from stripe_usage_records where updated_at >= ?)"
            " select u.customer, u.meter, days.d, sum(u.quantity) from stripe_usage_records u"
            " join days on days.customer = u.customer and days.meter = u.meter"
            " and u.period_start_at // 86400 * 86400 = days.d group by all",
            [step_started],
        )
    }
    assert changed, "the step recorded no usage"
    assert (not_due.mode, not_due.result.received, not_due.result.cursor) == (
        "skipped",
        0,
        full.result.cursor,
    )
    assert second.mode == "incremental" and second.since is not None
    window_start = second.since // DAY * DAY
    assert all(day >= window_start for _, _, day in changed)
    landed_b2 = {
        (c, m, d): v
        for c, m, d, v in con.execute(
            "select record->>'customer', record->>'meter', (record->>'start_time')::bigint,"
            " (record->>'aggregated_value')::double from raw_stripe.usage where _batch_id = 'b2'"
        ).fetchall()
    }
    assert landed_b2 == changed
    assert third.result.rows == 0 and third.result.received >= len(changed)
    # every day of the world inside the incremental window holds the world's total
    world_days = {
        (c, f"mtr_{m}", d): float(q)
        for c, m, d, q in _world(
            world_copy,
            "select customer, meter, period_start_at // 86400 * 86400 as d, sum(quantity)"
            " from stripe_usage_records where period_start_at >= ? group by all",
            [window_start],
        )
    }
    latest = {
        (c, m, d): v
        for c, m, d, v in con.execute(f"select * from ({LATEST}) where day >= ?", [window_start]).fetchall()
    }
    assert latest == world_days
    con.close()
