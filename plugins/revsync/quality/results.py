"""`revsync_state.quality_results`: every expectation outcome of a gate run, written in one transaction.

One row per (run, suite, expectation, column): whether it passed, its policy, the observed value and up
to a few sample failing rows as JSON. A run's rows land together or not at all, so a reader never sees
half a gate. Written through SQLAlchemy, so the same code serves DuckDB and PostgreSQL warehouses."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from revsync.quality.engine import SuiteResult
from revsync.warehouse.connect import warehouse_path
from revsync.warehouse.state import is_postgres, state_engine, writer_lock  # noqa: F401 - re-exported

SCHEMA = "revsync_state"
TABLE = f"{SCHEMA}.quality_results"

DDL = [
    f"create schema if not exists {SCHEMA}",
    f"""create table if not exists {TABLE} (
    run_id varchar not null,
    stage varchar,
    suite varchar not null,
    expectation varchar not null,
    table_name varchar not null,
    column_name varchar,
    success boolean not null,
    policy varchar not null,
    observed json,
    unexpected_count bigint,
    sample_rows json,
    error varchar,
    validated_at timestamp not null
)""",
    # warehouses gated before stages existed
    f"alter table {TABLE} add column if not exists stage varchar",
]


def new_run_id() -> str:
    return f"gate_{datetime.now(UTC):%Y%m%dT%H%M%S}_{uuid.uuid4().hex[:8]}"


def write_results(
    connection: sa.Connection,
    results: Iterable[SuiteResult],
    run_id: str,
    validated_at: datetime | None = None,
    stage: str | None = None,
) -> int:
    """Insert every outcome of `results` under `run_id` in the caller's transaction; the row count."""
    validated_at = validated_at or datetime.now(UTC).replace(tzinfo=None)
    rows = [
        {
            "run_id": run_id,
            "stage": stage,
            "suite": o.suite,
            "expectation": o.expectation,
            "table_name": o.table,
            "column_name": o.column,
            "success": o.success,
            "policy": o.policy,
            "observed": json.dumps(o.observed, default=str),
            "unexpected_count": o.unexpected_count,
            "sample_rows": json.dumps(o.sample_rows, default=str),
            "error": o.error,
            "validated_at": validated_at,
        }
        for r in results
        for o in r.outcomes
    ]
    for statement in DDL:
        connection.execute(sa.text(statement))
    if rows:
        columns = list(rows[0])
        insert = f"insert into {TABLE} ({', '.join(columns)}) values ({', '.join(':' + c for c in columns)})"
        connection.execute(sa.text(insert), rows)
    return len(rows)


def store_results(results: Iterable[SuiteResult], run_id: str, warehouse: Path | str | None = None) -> int:
    """`write_results` in one transaction of its own, under the warehouse's writer lock."""
    warehouse = warehouse or warehouse_path()
    engine = state_engine(warehouse)
    try:
        with writer_lock(warehouse), engine.begin() as connection:
            return write_results(connection, results, run_id)
    finally:
        engine.dispose()
