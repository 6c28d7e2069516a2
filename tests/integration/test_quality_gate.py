"""The quality gate on copies of the built small world, for real (GX on DuckDB, every stage's suites):
the clean world passes every stage and publishes the change sets; each planted defect blocks or is
quarantined as its policy says, with a message naming the suite, expectation, table and a sample row;
a block publishes nothing (`validated` emptied); a quarantine holds the row and the changes depending on
it, publishes the rest, and releases or supersedes the row once it passes or is gone."""

from __future__ import annotations

import dataclasses
import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from revsync.quality.gate import QUARANTINE_TABLE, STAGES, GateBlocked, GateSettings, run_gate
from revsync.quality.suites import load_suites, sql_check

pytestmark = pytest.mark.integration


@pytest.fixture
def warehouse(small_built, tmp_path) -> Path:
    target = tmp_path / "warehouse.duckdb"
    shutil.copy(small_built.warehouse, target)
    return target


@pytest.fixture
def settings(tmp_path) -> GateSettings:
    return GateSettings(docs_dir=tmp_path / "quality")


def _sql(warehouse: Path, statement: str, *args) -> list[tuple]:
    con = duckdb.connect(str(warehouse))
    try:
        return con.execute(statement, list(args)).fetchall()
    finally:
        con.close()


def _gate_all(warehouse: Path, settings: GateSettings) -> dict:
    return {stage: run_gate(stage, warehouse, settings=settings) for stage in STAGES}


def _blocked(
    stage: str,
    warehouse: Path,
    settings: GateSettings,
    tables: list[str] | None = None,
    specs: list | None = None,
) -> GateBlocked:
    with pytest.raises(GateBlocked) as raised:
        run_gate(stage, warehouse, settings=settings, specs=specs or _only(tables))
    return raised.value


def _only(tables: list[str] | None):
    """The suites of `tables` alone (a stage's checkpoint on one table and its source's freshness)."""
    return None if tables is None else [load_suites()[t] for t in tables]


def test_clean_world_passes_every_stage_and_publishes_the_change_sets(warehouse, settings):
    reports = _gate_all(warehouse, settings)
    for stage, report in reports.items():
        assert report.passed, report.message()
        summary = report.summary()
        assert summary["suites"] >= 2 and summary["failed"] == 0, summary
        assert all(o.observed is not None for r in report.results for o in r.outcomes), stage
        assert (settings.docs_dir / stage / "index.html").exists()
    staging = {r.table for r in reports["staging"].results}
    assert {
        "staging.stg_stripe__invoices",
        "staging.stg_netsuite__invoices",
        "revsync_state.cursors",
    } <= staging
    assert len({r.table for r in reports["canonical"].results}) == 9
    sync = reports["sync"]
    assert sync.quarantined == {"sync.erp_changes": {}, "sync.entitlement_changes": {}}
    for table in ("erp_changes", "entitlement_changes"):
        built, published = _sql(warehouse, f"select count(*) from sync.{table}")[0][0], sync.validated_rows
        assert published[f"sync.{table}"] == built > 0
        assert _sql(warehouse, f"select distinct gate_run_id from validated.{table}") == [(sync.run_id,)]
    stored = _sql(
        warehouse,
        "select stage, count(*), bool_and(success) from revsync_state.quality_results group by 1 order by 1",
    )
    assert [(s, ok) for s, _, ok in stored] == [("canonical", True), ("staging", True), ("sync", True)]
    # the Data Docs page of a suite shows its expectations
    page = next((settings.docs_dir / "sync" / "validations").rglob("*.html")).read_text()
    assert "expect_column_values_to_be_unique" in page or "values must be unique" in page


def test_duplicate_key_blocks_and_empties_the_validated_change_sets(warehouse, settings):
    run_gate("sync", warehouse, settings=settings)
    (key,) = _sql(warehouse, "select min(idempotency_key) from sync.erp_changes")[0]
    _sql(
        warehouse,
        "insert into sync.erp_changes select * from sync.erp_changes where idempotency_key = ?",
        key,
    )
    blocked = _blocked("sync", warehouse, settings)
    message = str(blocked)
    assert "blocked the push" in message
    assert (
        "sync__erp_changes: expect_column_values_to_be_unique on sync.erp_changes.idempotency_key" in message
    )
    assert key in message  # the sample failing rows
    assert _sql(warehouse, "select count(*) from validated.erp_changes") == [(0,)]
    assert _sql(warehouse, "select count(*) from validated.entitlement_changes") == [(0,)]
    failed = _sql(
        warehouse,
        "select table_name, expectation, policy from revsync_state.quality_results where not success",
    )
    assert failed == [("sync.erp_changes", "expect_column_values_to_be_unique", "block")]


def _dependent_invoice(warehouse: Path, queries: dict[str, str]) -> tuple[str, str]:
    """(invoice key, payment key): an invoice change whose one dependent is a payment nothing depends on."""
    return _sql(warehouse, queries["dependent_invoice"])[0]


def _leaves(warehouse: Path, queries: dict[str, str], count: int, besides: tuple[str, ...]) -> list[str]:
    """`count` change keys nothing depends on, other than `besides`."""
    rows = _sql(
        warehouse,
        "select idempotency_key from sync.erp_changes where idempotency_key not in "
        f"({queries['prerequisites']}) order by 1 desc",
    )
    return [k for (k,) in rows if k not in besides][:count]


def test_row_defects_are_quarantined_with_their_dependents_and_the_rest_is_published(
    warehouse, settings, change_queries
):
    invoice, payment = _dependent_invoice(warehouse, change_queries)
    foreign, orphan = _leaves(warehouse, change_queries, 2, (invoice, payment))
    _sql(warehouse, "update sync.erp_changes set amount = -12 where idempotency_key = ?", invoice)
    _sql(warehouse, "update sync.erp_changes set currency = 'xzz' where idempotency_key = ?", foreign)
    _sql(
        warehouse, "update sync.erp_changes set customer_key = 'cus_ghost' where idempotency_key = ?", orphan
    )
    total = _sql(warehouse, "select count(*) from sync.erp_changes")[0][0]

    report = run_gate("sync", warehouse, settings=settings)

    held = report.quarantined["sync.erp_changes"]
    assert set(held) == {invoice, payment, foreign, orphan}
    assert held[invoice] == ["sync__erp_changes: expect_column_values_to_be_between on amount"]
    assert held[payment] == [f"prerequisite {invoice} quarantined"]
    assert held[foreign] == ["sync__erp_changes: expect_column_values_to_be_in_set on currency"]
    assert "sync__erp_changes: customer_in_canonical_customers on customer_key" in held[orphan]
    assert report.validated_rows["sync.erp_changes"] == total - 4
    published = {k for (k,) in _sql(warehouse, "select idempotency_key from validated.erp_changes")}
    assert not published & set(held) and len(published) == total - 4
    rows = _sql(
        warehouse,
        f"select idempotency_key, status, reasons, row_data, first_gate_run from {QUARANTINE_TABLE}",
    )
    assert {r[0] for r in rows} == set(held) and {r[1] for r in rows} == {"quarantined"}
    stored = {r[0]: json.loads(r[3]) for r in rows}
    assert float(stored[invoice]["amount"]) == -12 and stored[orphan]["customer_key"] == "cus_ghost"
    assert {r[4] for r in rows} == {report.run_id}
    # the failures are in quality_results with their sample rows
    (sample,) = _sql(
        warehouse,
        "select sample_rows from revsync_state.quality_results where expectation = "
        "'expect_column_values_to_be_in_set' and column_name = 'currency' and not success",
    )[0]
    assert [r["idempotency_key"] for r in json.loads(sample)] == [foreign]

    # the next run, after a fix: the fixed row passes and is released, the orphan is gone (superseded)
    _sql(warehouse, "update sync.erp_changes set currency = 'usd' where idempotency_key = ?", foreign)
    _sql(warehouse, "delete from sync.erp_changes where idempotency_key = ?", orphan)
    again = run_gate("sync", warehouse, settings=settings)
    assert set(again.quarantined["sync.erp_changes"]) == {invoice, payment}
    assert (again.released, again.superseded) == (1, 1)
    states = dict(_sql(warehouse, f"select idempotency_key, status from {QUARANTINE_TABLE}"))
    assert states == {
        invoice: "quarantined",
        payment: "quarantined",
        foreign: "released",
        orphan: "superseded",
    }
    assert _sql(
        warehouse, "select count(*) from validated.erp_changes where idempotency_key = ?", foreign
    ) == [(1,)]
    (first_run,) = _sql(
        warehouse, f"select first_gate_run from {QUARANTINE_TABLE} where idempotency_key = ?", invoice
    )[0]
    assert first_run == report.run_id  # still the same quarantine, not a second one
    # the Data Docs hold the latest checkpoint only: one run per suite, the failures' details among them
    suites = {p.name: list(p.glob("*/*")) for p in (settings.docs_dir / "sync" / "validations").iterdir()}
    assert "sync__erp_changes__failures" in suites and all(len(runs) == 1 for runs in suites.values())


def test_an_orphan_entitlement_change_is_quarantined(warehouse, settings):
    (key,) = _sql(warehouse, "select min(idempotency_key) from sync.entitlement_changes")[0]
    _sql(
        warehouse,
        "update sync.entitlement_changes set organization_id = '999' where idempotency_key = ?",
        key,
    )
    report = run_gate("sync", warehouse, settings=settings)
    assert report.quarantined["sync.entitlement_changes"] == {
        key: ["sync__entitlement_changes: organization_of_canonical_customer on organization_id"]
    }
    assert _sql(
        warehouse, "select count(*) from validated.entitlement_changes where idempotency_key = ?", key
    ) == [(0,)]


def test_an_empty_source_blocks_the_staging_stage(warehouse, settings):
    _sql(warehouse, "delete from raw_stripe.charges")
    blocked = _blocked("staging", warehouse, settings, ["staging.stg_stripe__charges"])
    [outcome] = blocked.report.blocking
    assert (outcome.suite, outcome.expectation, outcome.table) == (
        "staging__stg_stripe__charges",
        "row_count",
        "staging.stg_stripe__charges",
    )
    assert outcome.observed == 0
    assert "row_count on staging.stg_stripe__charges observed 0" in str(blocked)


def test_a_volume_collapse_against_the_previous_run_blocks(warehouse, settings):
    only = ["staging.stg_zendesk__tickets"]
    first = run_gate("staging", warehouse, settings=settings, specs=_only(only))
    tickets = next(r for r in first.results if r.table == only[0])
    before = next(o.observed for o in tickets.outcomes if o.expectation == "row_count")
    _sql(warehouse, "delete from raw_zendesk.tickets where hash(_pk) % 10 < 7")  # ~70 % of the tickets
    blocked = _blocked("staging", warehouse, settings, only)
    [outcome] = blocked.report.blocking
    assert (outcome.expectation, outcome.table) == ("volume_vs_previous_run", "staging.stg_zendesk__tickets")
    assert outcome.observed < before * 0.5
    assert "volume_vs_previous_run" in str(blocked) and "stg_zendesk__tickets" in str(blocked)
    # a blocked run is no baseline: the collapse keeps blocking until an operator widens the band
    again = _blocked("staging", warehouse, settings, only)
    assert again.report.blocking[0].expectation == "volume_vs_previous_run"
    wide = GateSettings(volume_band=0.9, docs_dir=settings.docs_dir)
    assert run_gate("staging", warehouse, settings=wide, specs=_only(only)).passed


def test_a_stale_source_blocks(warehouse, settings):
    stale = datetime.now(UTC).replace(tzinfo=None) - timedelta(hours=30)
    _sql(
        warehouse,
        "update revsync_state.cursors set updated_at = ? where source = 'netsuite' and stream = 'invoice'",
        stale,
    )
    blocked = _blocked("staging", warehouse, settings, ["staging.stg_netsuite__invoices"])
    [outcome] = blocked.report.blocking
    assert (outcome.expectation, outcome.table) == ("fresh_netsuite_invoice", "revsync_state.cursors")
    assert [(r["source"], r["stream"]) for r in outcome.sample_rows] == [("netsuite", "invoice")]


def test_revsync_gate_and_quarantine_commands(warehouse, tmp_path):
    from typer.testing import CliRunner

    from revsync.cli import app

    (key,) = _sql(warehouse, "select min(idempotency_key) from sync.entitlement_changes")[0]
    _sql(warehouse, "update sync.entitlement_changes set tier_to_set = 'gold' where idempotency_key = ?", key)
    runner = CliRunner()
    docs = ["--warehouse", str(warehouse), "--docs", str(tmp_path / "docs")]
    done = runner.invoke(app, ["gate", "sync", *docs])
    assert done.exit_code == 0, done.output
    assert "gate sync: passed" in done.output and "quarantined: sync.entitlement_changes 1" in done.output
    listed = runner.invoke(app, ["quarantine", "--warehouse", str(warehouse)])
    assert listed.exit_code == 0, listed.output
    assert key[:16] in listed.output and "tier_to_set" in listed.output and "quarantined" in listed.output

    _sql(warehouse, "insert into sync.erp_changes select * from sync.erp_changes limit 1")
    blocked = runner.invoke(app, ["gate", "sync", *docs])
    assert blocked.exit_code == 1
    assert "blocked the push" in blocked.output and "expect_column_values_to_be_unique" in blocked.output
    wrong = runner.invoke(app, ["gate", "stagign", *docs])
    assert wrong.exit_code == 2 and "stagign" in wrong.output


def test_a_quarantine_check_that_cannot_name_its_rows_blocks(warehouse, settings):
    """Fail closed: a quarantine check that errors (here: its query reads a table that is gone) cannot
    say which rows to hold, so it blocks instead of letting every row through."""
    spec = load_suites()["sync.entitlement_changes"]
    broken = dataclasses.replace(
        spec,
        build=lambda now: [
            *spec.build(now),
            sql_check(
                "reads a table that is not there",
                "broken_reference",
                "select * from {batch} where organization_id not in (select id from canonical.gone)",
                "quarantine",
            ),
        ],
    )
    blocked = _blocked("sync", warehouse, settings, specs=[broken])
    [outcome] = blocked.report.blocking
    assert (outcome.expectation, outcome.policy) == ("broken_reference", "block")
    assert "canonical.gone" in outcome.error
    assert _sql(warehouse, f"select count(*) from {QUARANTINE_TABLE}") == [(0,)]
