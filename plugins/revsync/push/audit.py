"""`revsync_state.audit_log`: every write revsync made or planned and how it ended, in business terms.

One row per outcome: a write acknowledged (with the target's internal id), failed, dead-lettered,
found already applied by a check, planned by a dry run, or replayed by an operator (with who approved
it). Each row carries the change's correlation id (`<system>:<object>:<id>:<version>` of the source
record), so a record can be followed from the billing event to the ERP's acknowledgement. The outbox's
own `outbox_events` is the state machine's ledger; this is the log people read.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa

from revsync.clock import utc_now

SCHEMA = "revsync_state"
AUDIT_LOG = f"{SCHEMA}.audit_log"
COLUMNS = (
    "logged_at",
    "run_id",
    "actor",
    "outcome",
    "target",
    "record_type",
    "operation",
    "http_method",
    "http_path",
    "idempotency_key",
    "correlation_id",
    "customer_key",
    "source_id",
    "reason",
    "amount",
    "currency",
    "http_status",
    "target_internal_id",
    "attempts",
    "error",
    "detail",
)

DDL = [
    f"create schema if not exists {SCHEMA}",
    f"""create table if not exists {AUDIT_LOG} (
    logged_at timestamp not null,
    run_id varchar,
    actor varchar,
    outcome varchar not null,
    target varchar not null,
    record_type varchar not null,
    operation varchar not null,
    http_method varchar,
    http_path varchar,
    idempotency_key varchar not null,
    correlation_id varchar,
    customer_key varchar,
    source_id varchar,
    reason varchar,
    amount decimal(18, 3),
    currency varchar,
    http_status integer,
    target_internal_id varchar,
    attempts integer,
    error varchar,
    detail json
)""",
]


def ensure_audit_log(connection: sa.Connection) -> None:
    for statement in DDL:
        connection.execute(sa.text(statement))


def write_audit(
    connection: sa.Connection, entries: Sequence[dict[str, Any]], run_id: str | None, actor: str = "revsync"
) -> int:
    """Append `entries` (dicts with the outbox row's context plus `outcome` and what the target said)."""
    if not entries:
        return 0
    now = utc_now()
    rows = []
    for entry in entries:
        row = {c: entry.get(c) for c in COLUMNS}
        detail = entry.get("detail")
        row |= {
            "logged_at": now,
            "run_id": run_id,
            "actor": entry.get("actor") or actor,
            "detail": None if detail is None else json.dumps(detail, default=str, sort_keys=True),
        }
        rows.append(row)
    insert_rows(connection, AUDIT_LOG, COLUMNS, [tuple(row[c] for c in COLUMNS) for row in rows])
    return len(rows)


def chunks(items: Sequence, size: int) -> Iterable[Sequence]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


MAX_PARAMETERS = 30_000  # per statement (PostgreSQL allows 65,535)


def insert_rows(connection: sa.Connection, table: str, columns: Sequence[str], rows: Sequence[tuple]) -> None:
    """Append `rows` (tuples in `columns` order) with multi-row INSERT ... VALUES statements: a
    statement per few thousand rows, not one per row (an executemany is row by row on DuckDB)."""
    width = len(columns)
    for group in chunks(rows, max(MAX_PARAMETERS // width, 1)):
        values = ", ".join(
            "(" + ", ".join(f":p{i}_{j}" for j in range(width)) + ")" for i in range(len(group))
        )
        params = {f"p{i}_{j}": value for i, row in enumerate(group) for j, value in enumerate(row)}
        connection.execute(sa.text(f"insert into {table} ({', '.join(columns)}) values {values}"), params)
