"""Suites as code: each `expectations/<schema>__<table>.py` defines one table's suite.

A suite module has `TABLE` ("schema.table"), `KEY` (the column that identifies a row: unique, and how a
failing row is fetched for the sample) and `build(now)` returning GX expectations, each with
`meta={"policy": ...}` (`block`: stop the whole push; `quarantine`: hold the failing change rows, push
the rest). `now` is the validation time (timestamps of things that happened must not be after it).
Most modules declare their table and call `table_expectations`. Optional module settings:

- `SOURCE = ("stripe", "invoices")`: the raw stream the table reads; the gate checks its freshness.
- `MIN_ROWS` (default 1; 0 for change sets): fewer rows is an empty source or a failed build.
- `VOLUME` (default True; False for change sets, which shrink to nothing as systems converge): the row
  count must stay within the gate's band around the previous run's.
- `DEPENDS_ON` (change sets): the column naming the change a row waits for; a quarantined change holds
  its dependents too (no invoice reaches the ERP without its customer).

The gate (`revsync.quality.gate`) adds the volume, minimum-rows and freshness expectations; the stage of
a suite is its table's schema (`staging`, `canonical`, `sync`).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import great_expectations.expectations as gxe

from revsync.quality.currencies import iso_4217, minor_unit_violations

EXPECTATIONS_DIR = Path(__file__).resolve().parents[3] / "expectations"
POLICIES = ("block", "quarantine")
BLOCK = {"policy": "block"}
QUARANTINE = {"policy": "quarantine"}
CHANGE_SET_SCHEMA = "sync"


@dataclass(frozen=True)
class SuiteSpec:
    name: str
    table: str
    key: str
    build: Callable[[datetime], list]
    stage: str
    source: tuple[str, str] | None = None
    min_rows: int = 1
    volume: bool = True
    depends_on: str | None = None

    @property
    def is_change_set(self) -> bool:
        """Only change rows can be quarantined (held back while the rest is pushed)."""
        return self.stage == CHANGE_SET_SCHEMA


def load_suite(path: Path) -> SuiteSpec:
    spec = importlib.util.spec_from_file_location(f"revsync_expectations_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load suite {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    stage = module.TABLE.partition(".")[0]
    change_set = stage == CHANGE_SET_SCHEMA
    return SuiteSpec(
        name=path.stem,
        table=module.TABLE,
        key=module.KEY,
        build=module.build,
        stage=stage,
        source=getattr(module, "SOURCE", None),
        min_rows=getattr(module, "MIN_ROWS", 0 if change_set else 1),
        volume=getattr(module, "VOLUME", not change_set),
        depends_on=getattr(module, "DEPENDS_ON", None),
    )


def load_suites(directory: Path = EXPECTATIONS_DIR, stage: str | None = None) -> dict[str, SuiteSpec]:
    """Every suite in `directory` (of one stage if given), by table name ("schema.table")."""
    specs = [load_suite(p) for p in sorted(directory.glob("*__*.py"))]
    return {s.table: s for s in specs if stage is None or s.stage == stage}


# A suite names a column's logical type; each warehouse spells it its own way. GX compares DuckDB's
# reflected types by SQLAlchemy class (isinstance; spellings that are no class name are skipped) and
# PostgreSQL's by the type's text, case-insensitively ("TIMESTAMP WITHOUT TIME ZONE", "NUMERIC(18, 3)").
TYPE_SPELLINGS = {
    "VARCHAR": ["VARCHAR", "CHARACTER VARYING", "TEXT"],
    "INTEGER": ["INTEGER"],
    "BIGINT": ["BIGINT"],
    "DOUBLE": ["DOUBLE", "DOUBLE PRECISION", "FLOAT"],
    "DECIMAL(18,3)": ["NUMERIC", "NUMERIC(18, 3)"],
    "DECIMAL(18,2)": ["NUMERIC", "NUMERIC(18, 2)"],
    "DECIMAL(38,3)": ["NUMERIC", "NUMERIC(38, 3)"],
    "HUGEINT": ["NUMERIC", "NUMERIC(38, 0)"],
    "TIMESTAMP": ["TIMESTAMP", "TIMESTAMP WITHOUT TIME ZONE"],
    "DATE": ["DATE"],
    "BOOLEAN": ["BOOLEAN"],
    "JSON": ["JSON", "JSONB"],
}


def column_types(columns: dict[str, str], meta: dict) -> list:
    """One type expectation per column of `columns` ({name: logical type from TYPE_SPELLINGS})."""
    return [
        gxe.ExpectColumnValuesToBeInTypeList(column=name, type_list=TYPE_SPELLINGS[logical], meta=meta)
        for name, logical in columns.items()
    ]


def table_expectations(
    columns: Mapping[str, str],
    key: str,
    now: datetime,
    *,
    policy: str = "block",
    not_null: Iterable[str] = (),
    unique: Iterable[str] = (),
    enums: Mapping[str, list] | None = None,
    non_negative: Iterable[str] = (),
    currencies: Iterable[str] = (),
    minor_units: Mapping[str, str] | None = None,
    happened: Iterable[str] = (),
) -> list:
    """The standard checks of one table. Its shape (the exact column set and each column's type) and its
    key (unique, not null) always block; the content checks carry `policy`:

    `not_null` and `unique` columns; `enums` ({column: accepted values}); `non_negative` amounts;
    `currencies` in ISO 4217; `minor_units` ({amount: currency column}: no more decimals than the
    currency's minor unit); `happened` timestamps not after `now`."""
    meta = {"policy": policy}
    expectations: list = [
        gxe.ExpectTableColumnsToMatchSet(column_set=list(columns), exact_match=True, meta=BLOCK),
        *column_types(dict(columns), BLOCK),
        gxe.ExpectColumnValuesToBeUnique(column=key, meta=BLOCK),
        gxe.ExpectColumnValuesToNotBeNull(column=key, meta=BLOCK),
    ]
    expectations += [gxe.ExpectColumnValuesToBeUnique(column=c, meta=meta) for c in unique]
    expectations += [gxe.ExpectColumnValuesToNotBeNull(column=c, meta=meta) for c in not_null]
    expectations += [
        gxe.ExpectColumnValuesToBeInSet(column=c, value_set=v, meta=meta) for c, v in (enums or {}).items()
    ]
    expectations += [
        gxe.ExpectColumnValuesToBeBetween(column=c, min_value=0, meta=meta) for c in non_negative
    ]
    expectations += [
        gxe.ExpectColumnValuesToBeInSet(column=c, value_set=iso_4217(), meta=meta) for c in currencies
    ]
    expectations += [
        sql_check(
            f"{amount} carries no more decimals than {currency}'s minor unit",
            "amount_minor_unit_precision",
            f"select {key}, {amount}, {currency} from {{batch}} where "
            + minor_unit_violations(amount, currency),
            policy,
            column=amount,
        )
        for amount, currency in (minor_units or {}).items()
    ]
    expectations += [gxe.ExpectColumnValuesToBeBetween(column=c, max_value=now, meta=meta) for c in happened]
    return expectations


def sql_check(description: str, check: str, query: str, policy: str, column: str | None = None):
    """A check GX's column expectations cannot say (a condition across columns or tables): `query`
    selects the failing rows of `{batch}` (the suite's table); `check` names it in the results."""
    meta = {"policy": policy, "check": check} | ({"column": column} if column else {})
    return gxe.UnexpectedRowsExpectation(description=description, unexpected_rows_query=query, meta=meta)


def change_references(table: str) -> list:
    """Referential integrity of a change set: every change row's customer is a canonical customer (an
    orphan change is quarantined, not written to a target that cannot place it)."""
    return [
        sql_check(
            f"every {table} row's customer_key is in canonical.customers",
            "customer_in_canonical_customers",
            "select * from {batch} where customer_key is not null and customer_key not in "
            "(select customer_key from canonical.customers)",
            "quarantine",
            column="customer_key",
        )
    ]
