"""mismatch_history and reconciliation_summary across real incremental dbt runs on a copy of the small
world's warehouse as the session first built it: episodes open, continue, resolve and reopen; a replayed
old as-of changes nothing; `--full-refresh` keeps the history; the summary counts what each run found and
resolved."""

from __future__ import annotations

from datetime import timedelta

import duckdb
import pytest
from conftest import run_dbt

pytestmark = pytest.mark.integration

# tests on models outside the selection (other marts' relationships) are left to their own runs
HISTORY = (
    "--select",
    "mismatches mismatch_history reconciliation_summary",
    "--indirect-selection",
    "cautious",
)


def _rows(warehouse, sql: str) -> list[tuple]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


@pytest.fixture(scope="module")
def runs(copy_built, tmp_path_factory):
    """Four runs an hour apart: baseline; CRM ARR tolerance 100 % (every crm_arr_mismatch resolves);
    a replay of the first as-of; back to the default tolerance with --full-refresh (they reopen).

    The baseline is the session's first build of the landing (`small_built`: the whole project, every
    test passing, at the landing's as-of), copied; the other three runs build on that copy."""
    folder = tmp_path_factory.mktemp("history")
    landed = copy_built(folder)
    t1 = landed.as_of
    t2, t3 = t1 + timedelta(hours=1), t1 + timedelta(hours=2)
    iso = "%Y-%m-%dT%H:%M:%SZ"
    snapshots = []
    for step, (when, extra, flags) in enumerate(
        [
            (t1, {}, ()),
            (t2, {"arr_tolerance": 1.0}, ()),
            (t1, {}, ()),
            (t3, {}, ("--full-refresh",)),
        ]
    ):
        if step:  # step 0, the first build at t1, is small_built's
            run = run_dbt(
                landed.warehouse, folder / f"run{step}", "build", *HISTORY, *flags,
                dbt_vars={"as_of": when.strftime(iso), **extra},
            )  # fmt: skip
            assert run.returncode == 0 and not run.failures, (step, run.failures, run.stdout[-3000:])
        snapshots.append(
            {
                "history": _rows(
                    landed.warehouse,
                    "select mismatch_type, anchor_id, first_detected_at, last_detected_at, resolved_at,"
                    " times_detected from reconciliation.mismatch_history order by all",
                ),
                "summary": {
                    r[0]: r[1:]
                    for r in _rows(
                        landed.warehouse,
                        "select mismatch_type, open_count, new_since_last_run, resolved_since_last_run,"
                        " median_hours_to_resolve, amount_at_risk from reconciliation.reconciliation_summary",
                    )
                },
            }
        )
    return t1, t2, t3, snapshots


def test_first_run_opens_one_episode_per_open_mismatch(runs):
    t1, _, _, snapshots = runs
    history = snapshots[0]["history"]
    assert len(history) > 500
    assert {(first, last, resolved, times) for _, _, first, last, resolved, times in history} == {
        (t1.replace(tzinfo=None), t1.replace(tzinfo=None), None, 1)
    }
    summary = snapshots[0]["summary"]
    assert len(summary) == 14
    assert sum(open_count for open_count, *_ in summary.values()) == len(history)
    assert all(new == open_count for open_count, new, *_ in summary.values())
    # money at risk is summed in the reporting currency where the rule has an amount
    assert summary["invoice_amount_mismatch"][4] > 0 and summary["entitlement_tier_mismatch"][4] == 0


def test_a_mismatch_no_longer_detected_is_resolved_and_the_rest_continue(runs):
    t1, t2, _, snapshots = runs
    before = {(k, a) for k, a, *_ in snapshots[0]["history"]}
    after = {(k, a): rest for k, a, *rest in snapshots[1]["history"]}
    arr = {key for key in before if key[0] == "crm_arr_mismatch"}
    assert arr and set(after) == before  # nothing new, nothing lost
    naive_t1, naive_t2 = t1.replace(tzinfo=None), t2.replace(tzinfo=None)
    for key, (first, last, resolved, times) in after.items():
        if key in arr:
            assert (first, last, resolved, times) == (naive_t1, naive_t1, naive_t2, 1), key
        else:
            assert (first, last, resolved, times) == (naive_t1, naive_t2, None, 2), key
    open_count, new, resolved_now, median_hours, _ = snapshots[1]["summary"]["crm_arr_mismatch"]
    assert (open_count, new, resolved_now, median_hours) == (0, 0, len(arr), 1.0)
    assert snapshots[1]["summary"]["invoice_amount_mismatch"][1] == 0  # continued, not new


def test_a_replayed_older_as_of_changes_nothing(runs):
    _, _, _, snapshots = runs
    assert snapshots[2]["history"] == snapshots[1]["history"]


def test_full_refresh_keeps_history_and_a_recurring_mismatch_opens_a_new_episode(runs):
    t1, t2, t3, snapshots = runs
    history = snapshots[3]["history"]
    arr = [row for row in history if row[0] == "crm_arr_mismatch"]
    resolved = [r for r in arr if r[4] is not None]
    reopened = [r for r in arr if r[4] is None]
    assert len(resolved) == len(reopened) > 0
    assert {r[2] for r in reopened} == {t3.replace(tzinfo=None)}
    assert {r[1] for r in resolved} == {r[1] for r in reopened}
    open_count, new, resolved_now, _, _ = snapshots[3]["summary"]["crm_arr_mismatch"]
    assert (open_count, new, resolved_now) == (len(reopened), len(reopened), 0)
