"""`revsync_state.quality_results`: every expectation outcome of a gate run, written in one transaction.

One row per (run, suite, expectation, column): whether it passed, its policy, the observed value and up
to a few sample failing rows as JSON. A run's rows land together or not at all, so a reader never sees
half a gate."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from revsync.quality.engine import SuiteResult
from revsync.warehouse.connect import open_warehouse

SCHEMA = "revsync_state"
TABLE = f"{SCHEMA}.quality_results"

DDL = f"""
create schema if not exists {SCHEMA};
create table if not exists {TABLE} (
    run_id varchar not null,
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
)
"""


def new_run_id() -> str:
    return f"gate_{datetime.now(UTC):%Y%m%dT%H%M%S}_{uuid.uuid4().hex[:8]}"


def write_results(
    con: duckdb.DuckDBPyConnection,
    results: Iterable[SuiteResult],
    run_id: str,
    validated_at: datetime | None = None,
) -> int:
    """Insert every outcome of `results` under `run_id` in one transaction; returns the row count."""
    validated_at = validated_at or datetime.now(UTC).replace(tzinfo=None)
    rows = [
        (
            run_id,
            o.suite,
            o.expectation,
            o.table,
            o.column,
            o.success,
            o.policy,
            json.dumps(o.observed, default=str),
            o.unexpected_count,
            json.dumps(o.sample_rows, default=str),
            o.error,
            validated_at,
        )
        for r in results
        for o in r.outcomes
    ]
    con.execute("begin transaction")
    try:
        con.execute(DDL)
        if rows:
            con.executemany(f"insert into {TABLE} values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    return len(rows)


def store_results(results: Iterable[SuiteResult], run_id: str, warehouse: Path | str | None = None) -> int:
    """`write_results` under the warehouse's writer lock (open_warehouse)."""
    with open_warehouse(warehouse) as con:
        return write_results(con, results, run_id)
