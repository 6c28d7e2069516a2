"""The GX quality engine on the DuckDB warehouse, for real: the built small world passes every suite,
planted defects (a duplicate idempotency key, a negative amount, an unknown currency, a changed column
type) fail the expectation that covers them, naming the table and a sample failing row, and the
outcomes land in `revsync_state.quality_results` in one transaction.

These tests are what keeps the DuckDB trap out: GX's SQL datasource over duckdb-engine, unpatched,
"fails" every expectation with observed value None (an IndexError in resolve_metric_bundle), which no
failure-only test would notice; here the clean world must pass with real observed values, and each
defect must fail exactly the expectation that covers it."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import textwrap

import duckdb
import pytest
import sqlalchemy as sa

from revsync.quality.engine import Outcome, SuiteResult, run_suites
from revsync.quality.results import TABLE, new_run_id, state_engine, store_results, write_results
from revsync.quality.suites import load_suites

pytestmark = pytest.mark.integration

GATED = ("sync.erp_changes", "sync.entitlement_changes", "canonical.invoices")


@pytest.fixture(scope="module")
def suites():
    loaded = load_suites()
    assert set(GATED) <= set(loaded), sorted(loaded)
    return [loaded[t] for t in GATED]


@pytest.fixture(scope="module")
def clean_results(small_built, suites) -> list[SuiteResult]:
    return run_suites(small_built.warehouse, suites)


def _count(warehouse, table: str) -> int:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return con.execute(f"select count(*) from {table}").fetchall()[0][0]
    finally:
        con.close()


def test_clean_small_world_passes_every_suite(small_built, clean_results):
    assert [r.table for r in clean_results] == list(GATED)
    for result in clean_results:
        failures = [o.describe() for o in result.failures]
        assert result.success, failures
        assert len(result.outcomes) >= 30
        assert {o.policy for o in result.outcomes} <= {"block", "quarantine"}
        # the trap's signature is an observed value of None everywhere: every outcome has a real one
        assert all(o.observed is not None and o.error is None for o in result.outcomes)
    erp = clean_results[0]
    unique = next(o for o in erp.outcomes if o.expectation == "expect_column_values_to_be_unique")
    assert unique.observed["element_count"] == _count(small_built.warehouse, "sync.erp_changes") > 0
    assert unique.observed["unexpected_count"] == 0
    types = [o for o in erp.outcomes if o.expectation == "expect_column_values_to_be_in_type_list"]
    assert {o.column: o.observed for o in types}["amount"] == "NUMERIC"


@pytest.fixture(scope="module")
def defective(small_built, tmp_path_factory):
    """A private copy of the built warehouse with planted defects, and what was planted."""
    warehouse = tmp_path_factory.mktemp("quality_defects") / "warehouse.duckdb"
    shutil.copy(small_built.warehouse, warehouse)
    con = duckdb.connect(str(warehouse))
    try:
        keys = [
            r[0]
            for r in con.execute(
                "select idempotency_key from sync.erp_changes where record_type = 'invoice' "
                "order by idempotency_key limit 4"
            ).fetchall()
        ]
        assert len(keys) == 4
        duplicate, negative, foreign, half_yen = keys
        con.execute(
            "insert into sync.erp_changes select * from sync.erp_changes where idempotency_key = ?",
            [duplicate],
        )
        con.execute("update sync.erp_changes set amount = -12.5 where idempotency_key = ?", [negative])
        con.execute("update sync.erp_changes set currency = 'xzz' where idempotency_key = ?", [foreign])
        con.execute(
            "update sync.erp_changes set currency = 'jpy', amount = 1234.5 where idempotency_key = ?",
            [half_yen],
        )
        future = con.execute("select min(idempotency_key) from sync.entitlement_changes").fetchall()[0][0]
        con.execute(
            "update sync.entitlement_changes set source_changed_at = now()::timestamp + interval 2 day "
            "where idempotency_key = ?",
            [future],
        )
        con.execute("alter table sync.entitlement_changes alter payload type varchar")
    finally:
        con.close()
    return warehouse, {
        "duplicate": duplicate,
        "negative": negative,
        "foreign": foreign,
        "half_yen": half_yen,
        "future": future,
    }


@pytest.fixture(scope="module")
def defect_results(defective, suites) -> dict[str, SuiteResult]:
    warehouse, _ = defective
    return {r.table: r for r in run_suites(warehouse, suites)}


def _failure(result: SuiteResult, expectation: str, column: str) -> Outcome:
    found = [o for o in result.failures if o.expectation == expectation and o.column == column]
    assert len(found) == 1, [o.describe() for o in result.failures]
    return found[0]


def test_duplicate_idempotency_key_fails_and_blocks(defective, defect_results):
    _, planted = defective
    outcome = _failure(
        defect_results["sync.erp_changes"], "expect_column_values_to_be_unique", "idempotency_key"
    )
    assert outcome.table == "sync.erp_changes" and outcome.policy == "block"
    assert outcome.unexpected_count == 2
    assert [row["idempotency_key"] for row in outcome.sample_rows] == [planted["duplicate"]] * 2
    assert planted["duplicate"] in outcome.describe()


def test_negative_amount_fails_with_the_row(defective, defect_results):
    _, planted = defective
    outcome = _failure(defect_results["sync.erp_changes"], "expect_column_values_to_be_between", "amount")
    assert outcome.table == "sync.erp_changes" and outcome.policy == "quarantine"
    assert outcome.unexpected_count == 1
    assert [(r["idempotency_key"], float(r["amount"])) for r in outcome.sample_rows] == [
        (planted["negative"], -12.5)
    ]


def test_unknown_currency_fails_with_the_row(defective, defect_results):
    _, planted = defective
    outcome = _failure(defect_results["sync.erp_changes"], "expect_column_values_to_be_in_set", "currency")
    assert outcome.policy == "quarantine" and outcome.unexpected_count == 1
    assert outcome.observed["partial_unexpected_list"] == ["xzz"]
    assert [(r["idempotency_key"], r["currency"]) for r in outcome.sample_rows] == [
        (planted["foreign"], "xzz")
    ]


def test_amount_finer_than_the_currency_minor_unit_fails(defective, defect_results):
    _, planted = defective
    outcome = _failure(defect_results["sync.erp_changes"], "amount_minor_unit_precision", "amount")
    assert outcome.policy == "quarantine" and outcome.unexpected_count == 1
    assert [(r["idempotency_key"], r["currency"], float(r["amount"])) for r in outcome.sample_rows] == [
        (planted["half_yen"], "jpy", 1234.5)
    ]


def test_a_timestamp_in_the_future_fails(defective, defect_results):
    _, planted = defective
    changes = defect_results["sync.entitlement_changes"]
    outcome = _failure(changes, "expect_column_values_to_be_between", "source_changed_at")
    assert outcome.policy == "quarantine" and outcome.unexpected_count == 1
    assert [r["idempotency_key"] for r in outcome.sample_rows] == [planted["future"]]


def test_only_the_planted_defects_fail(defect_results):
    failed = {(table, o.expectation, o.column) for table, r in defect_results.items() for o in r.failures}
    assert failed == {
        ("sync.erp_changes", "expect_column_values_to_be_unique", "idempotency_key"),
        ("sync.erp_changes", "expect_column_values_to_be_between", "amount"),
        ("sync.erp_changes", "expect_column_values_to_be_in_set", "currency"),
        ("sync.erp_changes", "amount_minor_unit_precision", "amount"),
        ("sync.entitlement_changes", "expect_column_values_to_be_in_type_list", "payload"),
        ("sync.entitlement_changes", "expect_column_values_to_be_between", "source_changed_at"),
    }
    payload = _failure(
        defect_results["sync.entitlement_changes"], "expect_column_values_to_be_in_type_list", "payload"
    )
    assert payload.observed == "VARCHAR" and payload.policy == "block"
    assert defect_results["canonical.invoices"].success


def test_results_land_in_quality_results(defective, defect_results):
    warehouse, planted = defective
    run_id = new_run_id()
    written = store_results(defect_results.values(), run_id, warehouse)
    assert written == sum(len(r.outcomes) for r in defect_results.values())
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        rows = con.execute(
            f"select suite, expectation, table_name, column_name, success, policy, observed, sample_rows "
            f"from {TABLE} where run_id = ? and not success order by table_name, expectation",
            [run_id],
        ).fetchall()
        total = con.execute(f"select count(*) from {TABLE} where run_id = ?", [run_id]).fetchall()[0][0]
    finally:
        con.close()
    assert total == written
    assert [(r[2], r[1], r[3]) for r in rows] == [
        ("sync.entitlement_changes", "expect_column_values_to_be_between", "source_changed_at"),
        ("sync.entitlement_changes", "expect_column_values_to_be_in_type_list", "payload"),
        ("sync.erp_changes", "amount_minor_unit_precision", "amount"),
        ("sync.erp_changes", "expect_column_values_to_be_between", "amount"),
        ("sync.erp_changes", "expect_column_values_to_be_in_set", "currency"),
        ("sync.erp_changes", "expect_column_values_to_be_unique", "idempotency_key"),
    ]
    amount = rows[3]
    assert amount[0] == "sync__erp_changes" and amount[5] == "quarantine"
    assert json.loads(amount[6])["unexpected_count"] == 1
    assert [r["idempotency_key"] for r in json.loads(amount[7])] == [planted["negative"]]


def test_results_write_is_all_or_nothing(tmp_path, defect_results):
    """An outcome that cannot be stored (no policy) rolls the whole run back: no half gate is visible."""
    warehouse = tmp_path / "warehouse.duckdb"
    engine = state_engine(warehouse)
    good = defect_results["sync.erp_changes"]
    broken = SuiteResult(good.suite, good.table, [*good.outcomes[:3]], good.seconds)
    broken.outcomes.append(Outcome("s", "e", "t", None, False, None, None))  # type: ignore[arg-type]
    try:
        with pytest.raises(sa.exc.DBAPIError, match="NOT NULL"), engine.begin() as connection:
            write_results(connection, [broken], "run_bad")
        with engine.begin() as connection:
            assert write_results(connection, [good], "run_good") == len(good.outcomes)
        with engine.connect() as connection:
            counts = dict(
                connection.execute(sa.text(f"select run_id, count(*) from {TABLE} group by 1")).all()
            )
    finally:
        engine.dispose()
    assert counts == {"run_good": len(good.outcomes)}


def test_unpatched_gx_still_has_the_duckdb_trap(small_built):
    """Canary: GX's SQL path over duckdb-engine without revsync.quality.duckdb_patch loses every metric
    (upstream bug). When this fails, upstream fixed it: drop patch 1 in duckdb_patch."""
    script = textwrap.dedent(
        f"""
        import great_expectations as gx
        import great_expectations.expectations as gxe
        context = gx.get_context(mode="ephemeral")
        source = context.data_sources.add_sql(
            name="w", connection_string="duckdb:///{small_built.warehouse}",
            kwargs={{"connect_args": {{"read_only": True}}}})
        asset = source.add_table_asset(name="t", table_name="erp_changes", schema_name="sync")
        batch = asset.add_batch_definition_whole_table("all").get_batch()
        result = batch.validate(gxe.ExpectTableRowCountToBeBetween(min_value=1))
        messages = [str(v.get("exception_message")) for v in result.exception_info.values()]
        print("RESULT", result.success, result.result.get("observed_value"), messages)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "GX_ANALYTICS_ENABLED": "false"},
    )
    line = next((x for x in done.stdout.splitlines() if x.startswith("RESULT")), done.stdout + done.stderr)
    assert line.startswith("RESULT False None") and "list index out of range" in line, line


def test_a_missing_table_fails_closed(small_built, suites):
    """A table the build did not produce fails its suite (block) instead of passing or crashing the run."""
    missing = dataclasses.replace(suites[0], table="sync.erp_changes_missing")
    results = run_suites(small_built.warehouse, [missing, suites[1]])
    assert [r.success for r in results] == [False, True]
    [outcome] = results[0].outcomes
    assert (outcome.expectation, outcome.table, outcome.policy) == (
        "table_exists",
        "sync.erp_changes_missing",
        "block",
    )
    assert "sync.erp_changes_missing" in outcome.error
