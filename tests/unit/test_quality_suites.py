"""Quality building blocks without a warehouse build: DuckDB type reflection, the ISO 4217 list, the
minor-unit condition (evaluated by a real in-memory DuckDB) and the suites' shape (every expectation
has a policy, every suite has its table's key)."""

from __future__ import annotations

from datetime import datetime

import duckdb
import pytest
import sqlalchemy as sa

from revsync.quality.currencies import ISO_4217, minor_unit_violations
from revsync.quality.duckdb_patch import duckdb_type
from revsync.quality.suites import TYPE_SPELLINGS, load_suites


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("VARCHAR", sa.VARCHAR),
        ("INTEGER", sa.INTEGER),
        ("BIGINT", sa.BIGINT),
        ("TIMESTAMP", sa.TIMESTAMP),
        ("DATE", sa.DATE),
        ("JSON", sa.JSON),
        ("BOOLEAN", sa.BOOLEAN),
    ],
)
def test_duckdb_type_names_map_to_sqlalchemy_types(name, expected):
    assert type(duckdb_type(name)) is expected


def test_decimal_and_timezone_types_keep_their_details():
    decimal = duckdb_type("DECIMAL(18,3)")
    assert isinstance(decimal, sa.NUMERIC) and (decimal.precision, decimal.scale) == (18, 3)
    assert duckdb_type("TIMESTAMP WITH TIME ZONE").timezone is True
    assert isinstance(duckdb_type("STRUCT(a INTEGER)"), sa.types.NullType)


def test_iso_4217_has_the_billing_currencies_and_nothing_made_up():
    assert {"usd", "eur", "gbp", "jpy"} <= ISO_4217
    assert not {"xzz", "usdd", "hrk", "USD"} & ISO_4217
    assert all(len(code) == 3 and code.isalpha() and code.islower() for code in ISO_4217)


def test_minor_unit_condition_flags_only_finer_amounts():
    rows = [
        ("usd", "10.50", False),
        ("usd", "10.505", True),
        ("jpy", "1200", False),
        ("jpy", "1200.5", True),
        ("kwd", "1.125", False),
        ("eur", None, False),
    ]
    con = duckdb.connect()
    try:
        con.execute("create table t (currency varchar, amount decimal(18, 3), flagged boolean)")
        con.executemany("insert into t values (?, ?, ?)", rows)
        flagged = con.execute(
            f"select currency, amount from t where {minor_unit_violations('amount', 'currency')}"
        )
        got = {(c, float(a)) for c, a in flagged.fetchall()}
    finally:
        con.close()
    assert got == {("usd", 10.505), ("jpy", 1200.5)}


def test_every_suite_has_a_key_and_every_expectation_a_policy():
    suites = load_suites()
    assert {"sync.erp_changes", "sync.entitlement_changes", "canonical.invoices"} <= set(suites)
    for spec in suites.values():
        expectations = spec.build(datetime(2026, 1, 1))
        assert expectations, spec.name
        assert {e.meta["policy"] for e in expectations} <= {"block", "quarantine"}, spec.name
        keyed = [e for e in expectations if e.expectation_type == "expect_column_values_to_be_unique"]
        assert spec.key in {e.column for e in keyed}, spec.name
        typed = [e for e in expectations if e.expectation_type == "expect_column_values_to_be_in_type_list"]
        assert all(e.type_list in TYPE_SPELLINGS.values() for e in typed), spec.name
