"""The change stream keeps the ground truth exact, and `advance` works over HTTP and from the CLI.

Exactness is checked with sandbox.world.verify: the mismatch rules, applied with the generator's
identity answer key, must find exactly the truth entries detectable now — after generation and after
each advance step, including steps long enough for renewals, trial conversions and grace periods.
"""

from __future__ import annotations

import json
import time

import duckdb
import httpx
import pytest
from typer.testing import CliRunner

from sandbox.cli import app
from sandbox.world.catalog import MARGIN
from sandbox.world.changes import advance, apply_event
from sandbox.world.generator import generate
from sandbox.world.verify import compare, expected

pytestmark = pytest.mark.integration

STEPS = ((60, 30), (2 * 24 * 60, 30), (15 * 24 * 60, 30), (90, 30))


@pytest.fixture(scope="module")
def advanced(tmp_path_factory):
    """A 600-customer world, checked after generation and after each of STEPS (the rules against the
    truth right after, and an hour later): (step, summary, report, detectable) tuples."""
    world = tmp_path_factory.mktemp("changes")
    generate(world, 600, 3)
    con = duckdb.connect(str(world / "world.duckdb"))
    now = int(time.time())
    # a pipeline may evaluate the rules up to MARGIN after a step (minutes later, in practice)
    reports = [
        ("generated", {}, compare(con, now) or compare(con, now + MARGIN - 60), len(expected(con, now)))
    ]
    for minutes, events in STEPS:
        summary = advance(con, minutes, events=events, truth_path=world / "ground_truth.jsonl")
        now = int(time.time())
        report = compare(con, now) or compare(con, now + MARGIN - 60)
        reports.append((f"{minutes} min", summary, report, len(expected(con, now))))
    yield con, world, reports
    con.close()


def test_rules_find_exactly_the_truth_after_generation_and_every_step(advanced):
    _, _, reports = advanced
    for step, _, report, detectable in reports:
        assert detectable > 0
        assert report == {}, f"after {step}: {report}"


def test_steps_apply_events_lose_effects_and_catch_up(advanced):
    _, _, reports = advanced
    summaries = [summary for _, summary, _, _ in reports[1:]]
    lost = sum(v for s in summaries for k, v in s.items() if k.startswith("lost."))
    assert lost > 0  # integration bugs were injected
    kinds = {k for s in summaries for k in s if k.startswith("event.")}
    assert {"event.signup", "event.upgrade", "event.cancellation", "event.refund"} <= kinds
    caught_up = {k for s in summaries for k in s if k.startswith("caught_up.")}
    assert {"caught_up.renewed", "caught_up.invoice_synced", "caught_up.onboarded"} <= caught_up
    # the 15-day step outlives trials and grace periods
    assert {"caught_up.trial_converted"} <= set(summaries[2]) | set(summaries[3])


def test_step_truth_has_event_times_and_the_file_follows_the_table(advanced):
    con, world, _ = advanced
    rows = con.execute(
        "select count(*), count(*) filter (where origin = 'advance' and event_kind is not null) from truth"
    ).fetchall()[0]
    lines = [json.loads(line) for line in (world / "ground_truth.jsonl").read_text().splitlines()]
    assert len(lines) == rows[0] and rows[1] > 0
    from_steps = [e for e in lines if e["origin"] == "advance"]
    assert all(e["event_kind"] and e["event_at"] <= e["detectable_at"] for e in from_steps)


def test_stripe_changes_come_with_events_shaped_like_the_api(advanced):
    con, _, _ = advanced
    types = dict(con.execute("select type, count(*) from stripe_events group by 1").fetchall())
    assert {"customer.created", "invoice.paid", "customer.subscription.updated", "charge.succeeded"} <= set(
        types
    )
    doc, kind, previous = con.execute(
        "select data_object, type, previous_attributes from stripe_events "
        "where type = 'customer.subscription.updated' and previous_attributes is not null limit 1"
    ).fetchall()[0]
    assert json.loads(doc)["object"] == "subscription" and json.loads(previous)


def test_advance_over_http_ages_the_world_and_rewrites_the_truth(world_copy, start_sandbox_factory):
    with start_sandbox_factory(world_copy) as sandbox:
        base = sandbox.base_url("stripe")
        key = sandbox.creds("stripe")["api_key"]
        headers = {"Authorization": f"Bearer {key}"}
        newest_before = httpx.get(f"{base}/v1/customers", params={"limit": 1}, headers=headers).json()[
            "data"
        ][0]
        result = CliRunner().invoke(app, ["advance", "--minutes", "120", "--events", "15", str(world_copy)])
        assert result.exit_code == 0, result.output
        assert "step: 1" in result.output
        aged = httpx.get(f"{base}/v1/customers/{newest_before['id']}", headers=headers).json()
        assert aged["created"] == newest_before["created"] - 120 * 60
        events = httpx.get(f"{base}/v1/events", params={"limit": 100}, headers=headers).json()["data"]
        assert events and all(e["created"] >= time.time() - 600 for e in events)
        counts = sandbox.admin("truth")["by_type"]
        lines = (world_copy / "ground_truth.jsonl").read_text().splitlines()
        assert sum(c["detectable"] + c["pending"] for c in counts.values()) == len(lines)


def test_cli_errors_say_how_to_fix(tmp_path):
    result = CliRunner().invoke(app, ["advance", str(tmp_path)])
    assert result.exit_code == 2 and "revsync sandbox serve" in result.output
    result = CliRunner().invoke(app, ["verify", str(tmp_path)])
    assert result.exit_code == 2 and "revsync sandbox generate" in result.output


def test_a_grace_period_ending_just_after_a_step_is_settled_by_the_step(tmp_path):
    """An account whose grace period runs out half an hour after a step would become delinquent on a
    paid tier with no truth entry until the next step; the step has the customer pay first."""
    from sandbox.world.catalog import DOWNGRADE_TIER, GRACE_PERIOD

    generate(tmp_path, 300, 5)
    con = duckdb.connect(str(tmp_path / "world.duckdb"))
    try:
        pick = """
            select i.id, i.customer from stripe_invoices i
            join stripe_subscriptions s on s.id = i.subscription
            join company_refs r on r.stripe_customer_id = i.customer
            join zendesk_organizations o on o.id = r.zendesk_organization_id
            where s.status = 'past_due' and i.status = 'open'
            and lower(json_extract_string(o.organization_fields, '$.support_tier')) <> ?
            and r.customer_ref not in (select customer_ref from truth)
            order by i.seq limit 1"""
        invoice, customer = con.execute(pick, [DOWNGRADE_TIER]).fetchone()
        # after a 1-minute step its grace period ends 30 minutes later
        due = int(time.time()) + 60 - GRACE_PERIOD + 30 * 60
        con.execute(
            "update stripe_invoices set due_at = ? where customer = ? and status = 'open'", [due, customer]
        )
        summary = advance(con, 1, events=0)
        status = con.execute("select status from stripe_invoices where id = ?", [invoice]).fetchone()[0]
        later = compare(con, int(time.time()) + MARGIN - 60)
    finally:
        con.close()
    assert summary["caught_up.paid_before_grace_end"] >= 1 and status == "paid"
    assert later == {}


def test_a_steered_cancellation_losing_the_tier_change_always_records_that_loss(tmp_path):
    """The loss needs the cancellation to end the customer's last live subscription: whatever the clock,
    the steered event picks such a customer (the push workflow tests depend on it)."""
    generate(tmp_path, 300, 5)
    con = duckdb.connect(str(tmp_path / "world.duckdb"))
    try:
        start = int(time.time())
        for step in range(12):
            summary = apply_event(
                con, "cancellation", losses=frozenset({"entitlement_after_cancellation"}), now=start + step
            )
            assert summary["customer"], summary
            lost = con.execute(
                "select count(*) from truth where mismatch_type = 'entitlement_after_cancellation' "
                "and customer_ref = ? and origin = 'advance'",
                [summary["customer"]],
            ).fetchone()[0]
            assert lost == 1, (step, summary)
    finally:
        con.close()
