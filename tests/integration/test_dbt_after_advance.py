"""Reconciliation stays exact across `sandbox advance`: a private sandbox on a copy of the small world,
a full extraction, several advance steps (the world ages by days: grace periods, sync and onboarding
SLAs are crossed, lifecycle events lose downstream effects), one incremental extraction, then
`dbt build --select staging +mismatches` and the score: precision = recall = 1.00 for every type,
including truth entries the steps created.

Records the incremental run does not re-land keep the timestamps they were served with before the
steps aged the world; the sandbox re-serves those whose age a rule reads (sandbox/world/changes.py,
`Step.serve_aged`), so the warehouse and the truth agree on every age-based rule.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import duckdb
import pytest
from conftest import run_dbt

from revsync.connectors.load import load_source
from revsync.connectors.registry import CONNECTORS
from revsync.score import format_score, found_keys, score
from sandbox.world.truth import read_truth

pytestmark = pytest.mark.integration

# (minutes, events): an hour, then two days and one more (more than the sync SLA in all, and open
# invoices cross the 14-day grace period), with no extraction in between
STEPS = ((60, 30), (2 * 24 * 60, 30), (24 * 60, 30))


def _extract(warehouse, server, batch_id: str) -> int:
    con = duckdb.connect(str(warehouse))
    try:
        landed = 0
        for name, connector in CONNECTORS.items():
            results = load_source(con, connector, server.base_url(name), server.creds(name), batch_id)
            for stream, result in results.items():
                assert result.quarantined == 0, (name, stream, result)
                landed += result.rows
        return landed
    finally:
        con.close()


def test_mismatches_match_the_truth_after_advance_steps_and_an_incremental_extraction(
    start_sandbox_factory, world_copy, tmp_path
):
    started = time.monotonic()
    warehouse = tmp_path / "warehouse.duckdb"
    with start_sandbox_factory(world_copy) as server:
        full = _extract(warehouse, server, "b1")
        summaries = [
            server.admin("advance", method="POST", minutes=minutes, events=events)
            for minutes, events in STEPS
        ]
        incremental = _extract(warehouse, server, "b2")
    as_of = datetime.now(UTC).replace(microsecond=0)
    assert 0 < incremental < full

    # the steps crossed age thresholds and re-served what aging changed, and lost downstream effects
    aged = {k: sum(s.get(k, 0) for s in summaries) for k in set().union(*summaries) if k.startswith("aged.")}
    assert aged.get("aged.invoice_overdue", 0) > 0, summaries
    lost = sum(v for s in summaries for k, v in s.items() if k.startswith("lost."))
    assert lost > 0, summaries

    run = run_dbt(
        warehouse,
        tmp_path / "dbt",
        "build",
        "--select",
        "staging",
        "+mismatches",
        "--indirect-selection",
        "cautious",  # only the tests of what is built, not tests reaching into other marts
        dbt_vars={"as_of": as_of.strftime("%Y-%m-%dT%H:%M:%SZ")},
    )
    assert run.returncode == 0 and not run.failures, (run.failures, run.stdout[-4000:])

    truth_path = world_copy / "ground_truth.jsonl"
    result = score(truth_path, warehouse, as_of)
    print(format_score(result))
    print(f"aged: {aged}; full {full} rows, incremental {incremental}; {time.monotonic() - started:.0f}s")
    for kind, typed in result.types.items():
        assert (typed.precision, typed.recall) == (1.0, 1.0), (kind, typed.missed[:10], typed.unexpected[:10])

    # truth the steps created, detectable by now, is among the mismatches found
    cutoff = as_of.strftime("%Y-%m-%dT%H:%M:%SZ")
    from_steps = {
        (e["mismatch_type"], e["anchor_system"], str(e["anchor_id"]))
        for e in read_truth(truth_path)
        if e["origin"] == "advance" and e["detectable_at"] <= cutoff
    }
    _, found, _ = found_keys(warehouse)
    assert from_steps and from_steps <= found, sorted(from_steps - found)[:10]
