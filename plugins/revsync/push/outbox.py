"""The push outbox: every intended write, once, with its state, changed only by legal transactional steps.

A row per intended write, keyed by the change's deterministic idempotency key (the same change gets
the same key in every run, so enqueueing a change set again adds only what is new). States:

    pending -> sent -> acknowledged
                    -> failed -> sent (retry) | dead_lettered
                    -> dead_lettered (a permanent error, e.g. the target's 4xx validation)
    dead_lettered -> replayed -> sent

Each transition is one transaction: the row's state changes only from a state the step allows (a
concurrent or repeated step finds nothing to change and says so), and the step lands in
`revsync_state.outbox_events` with its detail. Written through SQLAlchemy: DuckDB and PostgreSQL alike.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

SCHEMA = "revsync_state"
OUTBOX = f"{SCHEMA}.outbox"
EVENTS = f"{SCHEMA}.outbox_events"

# to-state -> the states it may come from
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "sent": ("pending", "failed", "replayed"),
    "acknowledged": ("sent",),
    "failed": ("sent",),
    "dead_lettered": ("sent", "failed"),
    "replayed": ("dead_lettered",),
}
STATES = ("pending", *TRANSITIONS)
# what a change set row brings into the outbox (validated.erp_changes / entitlement_changes columns)
CHANGE_COLUMNS = (
    "idempotency_key",
    "target",
    "record_type",
    "operation",
    "http_method",
    "http_path",
    "payload",
    "payload_hash",
    "correlation_id",
    "customer_key",
)

DDL = [
    f"create schema if not exists {SCHEMA}",
    f"""create table if not exists {OUTBOX} (
    idempotency_key varchar primary key,
    target varchar not null,
    record_type varchar not null,
    operation varchar not null,
    http_method varchar not null,
    http_path varchar not null,
    payload json not null,
    payload_hash varchar not null,
    correlation_id varchar not null,
    customer_key varchar,
    depends_on_idempotency_key varchar,
    sequence integer,
    gate_run_id varchar,
    state varchar not null,
    attempts integer not null,
    last_error varchar,
    target_internal_id varchar,
    enqueued_at timestamp not null,
    updated_at timestamp not null
)""",
    f"""create table if not exists {EVENTS} (
    idempotency_key varchar not null,
    from_state varchar,
    to_state varchar not null,
    detail json,
    happened_at timestamp not null
)""",
]


class IllegalTransition(RuntimeError):
    """The row is not in a state the step may start from (or does not exist)."""


def ensure_outbox(connection: sa.Connection) -> None:
    for statement in DDL:
        connection.execute(sa.text(statement))


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def enqueue(
    connection: sa.Connection, changes: Iterable[dict[str, Any]], gate_run_id: str | None = None
) -> int:
    """Add each change not in the outbox yet as `pending`; the number added. A change already there, in
    any state, is left as it is: the same change is never written twice."""
    ensure_outbox(connection)
    now = _now()
    added = 0
    for change in changes:
        missing = [c for c in CHANGE_COLUMNS if change.get(c) is None and c != "customer_key"]
        if missing:
            raise ValueError(f"change {change.get('idempotency_key')!r} has no {', '.join(missing)}")
        row = {c: change.get(c) for c in CHANGE_COLUMNS}
        if not isinstance(row["payload"], str):
            row["payload"] = json.dumps(row["payload"], sort_keys=True)
        row |= {
            "depends_on_idempotency_key": change.get("depends_on_idempotency_key"),
            "sequence": change.get("sequence"),
            "gate_run_id": gate_run_id or change.get("gate_run_id"),
            "now": now,
        }
        inserted = connection.execute(
            sa.text(
                f"insert into {OUTBOX} ({', '.join(CHANGE_COLUMNS)}, depends_on_idempotency_key, sequence, "
                "gate_run_id, state, attempts, enqueued_at, updated_at) "
                f"select {', '.join(':' + c for c in CHANGE_COLUMNS)}, :depends_on_idempotency_key, "
                ":sequence, :gate_run_id, 'pending', 0, :now, :now "
                f"where not exists (select 1 from {OUTBOX} where idempotency_key = :idempotency_key) "
                "returning idempotency_key"
            ),
            row,
        ).all()
        if inserted:
            _event(
                connection, change["idempotency_key"], None, "pending", {"gate_run_id": row["gate_run_id"]}
            )
            added += 1
    return added


def transition(
    connection: sa.Connection,
    key: str,
    to_state: str,
    *,
    error: str | None = None,
    target_internal_id: str | None = None,
    detail: dict[str, Any] | None = None,
) -> str:
    """Move `key` to `to_state` if its current state allows it; the state it left. Sending counts an
    attempt; an error or the target's id is kept on the row. Raises IllegalTransition otherwise."""
    if to_state not in TRANSITIONS:
        raise ValueError(f"unknown outbox state {to_state!r}; one of {', '.join(TRANSITIONS)}")
    allowed = TRANSITIONS[to_state]
    current = connection.execute(
        sa.text(f"select state from {OUTBOX} where idempotency_key = :k"), {"k": key}
    ).scalar_one_or_none()
    if current not in allowed:
        raise IllegalTransition(
            f"outbox {key}: cannot go {current or 'missing'} -> {to_state} (only from {', '.join(allowed)})"
        )
    changed = connection.execute(
        sa.text(
            f"update {OUTBOX} set state = :to, updated_at = :now, "
            "attempts = attempts + case when :to = 'sent' then 1 else 0 end, "
            "last_error = coalesce(:error, last_error), "
            "target_internal_id = coalesce(:internal, target_internal_id) "
            "where idempotency_key = :k and state = :from returning idempotency_key"
        ),
        {
            "to": to_state,
            "now": _now(),
            "error": error,
            "internal": target_internal_id,
            "k": key,
            "from": current,
        },
    ).all()
    if len(changed) != 1:  # another writer moved it between the read and the update
        raise IllegalTransition(f"outbox {key}: left {current} concurrently; not moved to {to_state}")
    event = (
        (detail or {})
        | ({"error": error} if error else {})
        | ({"target_internal_id": target_internal_id} if target_internal_id else {})
    )
    _event(connection, key, current, to_state, event)
    return current


def _event(connection: sa.Connection, key: str, from_state: str | None, to_state: str, detail: dict) -> None:
    connection.execute(
        sa.text(f"insert into {EVENTS} values (:k, :f, :t, :d, :at)"),
        {"k": key, "f": from_state, "t": to_state, "d": json.dumps(detail, default=str), "at": _now()},
    )


def states(connection: sa.Connection) -> dict[str, int]:
    """Rows per state (every state listed)."""
    counts = dict(connection.execute(sa.text(f"select state, count(*) from {OUTBOX} group by state")).all())
    return {state: int(counts.get(state, 0)) for state in STATES}
