"""The push outbox: every intended write, once, with its state, changed only by legal transactional steps.

A row per intended write, keyed by the change's deterministic idempotency key (the same change gets
the same key in every run, so enqueueing a change set again adds only what is new). States:

    pending -> sent -> acknowledged
                    -> failed -> sent (retry) | dead_lettered
                    -> dead_lettered (a permanent error, e.g. the target's 4xx validation)
    dead_lettered -> replayed -> sent
    pending | failed | dead_lettered -> superseded (the validated change set no longer wants the write)

Each step is one transaction: a row's state changes only from a state the step allows (a concurrent or
repeated step finds nothing to change and says so), and the step lands in `revsync_state.outbox_events`
with its detail. Batches (claiming rows to send, settling their outcomes) are set-based statements in
one transaction, so a thousand writes cost a handful of statements. Written through SQLAlchemy:
DuckDB and PostgreSQL alike.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from revsync.clock import utc_now
from revsync.push.audit import chunks, ensure_audit_log, insert_rows, write_audit

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
    "superseded": ("pending", "failed", "dead_lettered"),
}
STATES = ("pending", *TRANSITIONS)
SETTLED = ("acknowledged", "failed", "dead_lettered")  # the states a sent write's outcome leaves it in
SETTLE_ROWS = 1000  # outcomes per settling statement (7 parameters each)
SENDABLE = TRANSITIONS["sent"]
# what a change brings into the outbox; the first ten are required
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
OPTIONAL_COLUMNS = (
    "depends_on_idempotency_key",
    "sequence",
    "gate_run_id",
    "reason",
    "source_id",
    "target_external_id",
    "target_internal_id",
    "amount",
    "currency",
    "source_changed_at",
)
COLUMN_TYPES = {
    "payload": "json",
    "sequence": "integer",
    "amount": "decimal(18, 3)",
    "source_changed_at": "timestamp",
}

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
    reason varchar,
    source_id varchar,
    target_external_id varchar,
    target_internal_id varchar,
    amount decimal(18, 3),
    currency varchar,
    source_changed_at timestamp,
    state varchar not null,
    attempts integer not null,
    errors integer not null,
    last_error varchar,
    last_status integer,
    enqueued_at timestamp not null,
    updated_at timestamp not null,
    acknowledged_at timestamp
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
    ensure_audit_log(connection)


def _insert_select(source: str, gate_run_id: str | None) -> tuple[str, dict]:
    columns = (*CHANGE_COLUMNS, *OPTIONAL_COLUMNS)
    select = ", ".join(
        "coalesce(:gate_run_id, s.gate_run_id)" if c == "gate_run_id" else f"s.{c}" for c in columns
    )
    sql = (
        f"insert into {OUTBOX} ({', '.join(columns)}, state, attempts, errors, enqueued_at, updated_at) "
        f"select {select}, 'pending', 0, 0, :now, :now from {source} as s "
        f"where not exists (select 1 from {OUTBOX} as o where o.idempotency_key = s.idempotency_key) "
        "returning idempotency_key, gate_run_id"
    )
    return sql, {"gate_run_id": gate_run_id, "now": utc_now()}


def enqueue_relation(connection: sa.Connection, relation: str, gate_run_id: str | None = None) -> int:
    """Add each change of `relation` (a table or subquery with the outbox's change columns) not in the
    outbox yet as `pending`, set-based; the number added. A change already there, in any state, is left
    as it is: the same change is never written twice."""
    ensure_outbox(connection)
    sql, params = _insert_select(relation, gate_run_id)
    added = connection.execute(sa.text(sql), params).all()
    if added:
        _events(connection, [(key, None, "pending", {"gate_run_id": run}) for key, run in added])
    return len(added)


def enqueue(
    connection: sa.Connection, changes: Iterable[dict[str, Any]], gate_run_id: str | None = None
) -> int:
    """`enqueue_relation` for changes given as dicts (each checked for the required columns first)."""
    rows = []
    for change in changes:
        missing = [c for c in CHANGE_COLUMNS if change.get(c) is None and c != "customer_key"]
        if missing:
            raise ValueError(f"change {change.get('idempotency_key')!r} has no {', '.join(missing)}")
        row = {c: change.get(c) for c in (*CHANGE_COLUMNS, *OPTIONAL_COLUMNS)}
        if not isinstance(row["payload"], str):
            row["payload"] = json.dumps(row["payload"], sort_keys=True)
        rows.append(row)
    if not rows:
        ensure_outbox(connection)
        return 0
    columns = (*CHANGE_COLUMNS, *OPTIONAL_COLUMNS)
    values = ", ".join(
        "(" + ", ".join(f"cast(:{c}_{i} as {COLUMN_TYPES.get(c, 'varchar')})" for c in columns) + ")"
        for i in range(len(rows))
    )
    params = {f"{c}_{i}": row[c] for i, row in enumerate(rows) for c in columns}
    relation = f"(select * from (values {values}) as v ({', '.join(columns)}))"
    ensure_outbox(connection)
    sql, extra = _insert_select(relation, gate_run_id)
    added = connection.execute(sa.text(sql), params | extra).all()
    if added:
        _events(connection, [(key, None, "pending", {"gate_run_id": run}) for key, run in added])
    return len(added)


def supersede(connection: sa.Connection, target: str, wanted: str, gate_run_id: str | None = None) -> int:
    """Mark `target`'s unsent writes (pending, failed, dead-lettered) that the current change set `wanted`
    (a relation with `idempotency_key`) no longer holds as superseded: the desired state moved on (the
    data behind a dead letter was fixed, say) before they were delivered."""
    rows = connection.execute(
        sa.text(
            f"select idempotency_key, state from {OUTBOX} where target = :target "
            "and state in ('pending', 'failed', 'dead_lettered') "
            f"and idempotency_key not in (select idempotency_key from {wanted})"
        ),
        {"target": target},
    ).all()
    keys = [k for k, _ in rows]
    if not keys:
        return 0
    moved = _move(connection, keys, "superseded", TRANSITIONS["superseded"])
    detail = {"gate_run_id": gate_run_id, "reason": "not in the latest validated change set"}
    _events(connection, [(k, s, "superseded", detail) for k, s in rows if k in moved])
    return len(moved)


def claim(connection: sa.Connection, keys: Sequence[str], run_id: str) -> list[str]:
    """Move `keys` that may be sent to `sent` (counting an attempt) in one statement; the keys moved.
    Recorded before the request goes out, so a crash leaves them `sent`: in doubt, checked next run."""
    if not keys:
        return []
    before = dict(
        connection.execute(
            _keyed(f"select idempotency_key, state from {OUTBOX} where "), {"keys": list(keys)}
        ).all()
    )
    moved = _move(connection, list(keys), "sent", SENDABLE, attempt=True)
    _events(connection, [(k, before.get(k), "sent", {"run_id": run_id}) for k in moved])
    return moved


def _keyed(prefix: str) -> sa.TextClause:
    """`<prefix>idempotency_key in (:keys...)`, expanded per call: the same SQL on DuckDB and PostgreSQL."""
    return sa.text(prefix + "idempotency_key in :keys").bindparams(sa.bindparam("keys", expanding=True))


def _move(
    connection: sa.Connection, keys: list[str], to_state: str, allowed: tuple[str, ...], attempt: bool = False
) -> list[str]:
    sql = (
        f"update {OUTBOX} set state = :to, updated_at = :now"
        + (", attempts = attempts + 1" if attempt else "")
        + " where idempotency_key in :keys and state in :allowed returning idempotency_key"
    )
    statement = sa.text(sql).bindparams(
        sa.bindparam("keys", expanding=True), sa.bindparam("allowed", expanding=True)
    )
    params = {"to": to_state, "now": utc_now(), "keys": keys, "allowed": list(allowed)}
    return [r[0] for r in connection.execute(statement, params).all()]


@dataclass
class Outcome:
    """How one sent write ended: its new state and what the target said."""

    key: str
    state: str  # acknowledged | failed | dead_lettered
    attempts: int = 1  # requests made for it in this send (retries included)
    errors: int = 0  # transient errors among them (toward dead-lettering)
    http_status: int | None = None
    error: str | None = None
    target_internal_id: str | None = None
    checked: bool = False  # acknowledged by reading the target (an in-doubt write found applied)


def settle(connection: sa.Connection, outcomes: Sequence[Outcome], run_id: str, changes: dict) -> int:
    """Record the outcomes of sent writes in one transaction: each row leaves `sent` for its outcome's
    state (with the target's id, status and error), an event and an audit row per write. `changes`
    maps key -> the outbox row (dict) the audit log copies its context from. Rows no longer `sent`
    (another run settled them) are left alone, without an event or audit row; the number settled."""
    moved: set[str] = set()
    now = utc_now()
    for group in chunks([o for o in outcomes if o.state in SETTLED], SETTLE_ROWS):
        # one statement per chunk: the outcomes as a VALUES list joined to the rows still `sent`
        values = ", ".join(
            f"(cast(:k{i} as varchar), cast(:s{i} as varchar), cast(:x{i} as integer), "
            f"cast(:e{i} as integer), cast(:m{i} as varchar), cast(:h{i} as integer), "
            f"cast(:t{i} as varchar))"
            for i in range(len(group))
        )
        params: dict[str, Any] = {"now": now}
        for i, o in enumerate(group):
            params |= {
                f"k{i}": o.key,
                f"s{i}": o.state,
                f"x{i}": o.attempts - 1,  # claiming counted one
                f"e{i}": o.errors,
                f"m{i}": o.error,
                f"h{i}": o.http_status,
                f"t{i}": o.target_internal_id,
            }
        changed = connection.execute(
            sa.text(
                f"update {OUTBOX} as o set state = v.to_state, updated_at = :now, "
                "attempts = o.attempts + v.extra, errors = o.errors + v.more_errors, "
                "last_error = coalesce(v.error, o.last_error), last_status = v.status, "
                "target_internal_id = coalesce(v.internal, o.target_internal_id), "
                "acknowledged_at = case when v.to_state = 'acknowledged' then cast(:now as timestamp) "
                "else o.acknowledged_at end "
                f"from (values {values}) as v (k, to_state, extra, more_errors, error, status, internal) "
                "where o.idempotency_key = v.k and o.state = 'sent' returning o.idempotency_key"
            ),
            params,
        ).all()
        moved.update(r[0] for r in changed)
    _events(
        connection,
        [
            (
                o.key,
                "sent",
                o.state,
                {
                    "run_id": run_id,
                    "http_status": o.http_status,
                    **({"error": o.error} if o.error else {}),
                    **({"target_internal_id": o.target_internal_id} if o.target_internal_id else {}),
                    **({"checked": True} if o.checked else {}),
                },
            )
            for o in outcomes
            if o.key in moved
        ],
    )
    write_audit(
        connection,
        [
            {
                **changes[o.key],
                "outcome": o.state,
                "http_status": o.http_status,
                "target_internal_id": o.target_internal_id or changes[o.key].get("target_internal_id"),
                "error": o.error,
                "attempts": o.attempts,
                "detail": {"checked": True} if o.checked else None,
            }
            for o in outcomes
            if o.key in moved
        ],
        run_id,
    )
    return len(moved)


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
    now = utc_now()
    changed = connection.execute(
        sa.text(
            f"update {OUTBOX} set state = :to, updated_at = :now, "
            "attempts = attempts + case when :to = 'sent' then 1 else 0 end, "
            "last_error = coalesce(:error, last_error), "
            "target_internal_id = coalesce(:internal, target_internal_id), "
            "acknowledged_at = case when :to = 'acknowledged' then :now else acknowledged_at end "
            "where idempotency_key = :k and state = :from returning idempotency_key"
        ),
        {
            "to": to_state,
            "now": now,
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
    _events(connection, [(key, current, to_state, event)])
    return current


def _events(connection: sa.Connection, events: list[tuple[str, str | None, str, dict]]) -> None:
    if not events:
        return
    now = utc_now()
    insert_rows(
        connection,
        EVENTS,
        ("idempotency_key", "from_state", "to_state", "detail", "happened_at"),
        [(k, f, t, json.dumps(d, default=str, sort_keys=True), now) for k, f, t, d in events],
    )


def rows(
    connection: sa.Connection, where: str, params: dict | None = None, limit: int | None = None
) -> list[dict]:
    """Outbox rows matching `where` (SQL over the outbox's columns), as dicts, oldest first."""
    sql = f"select * from {OUTBOX} where {where} order by sequence nulls first, enqueued_at, idempotency_key"
    if limit is not None:
        sql += f" limit {int(limit)}"
    result = connection.execute(sa.text(sql), params or {})
    return [dict(r._mapping) for r in result]


def states(connection: sa.Connection, target: str | None = None) -> dict[str, int]:
    """Rows per state (every state listed), for one target or all."""
    sql = f"select state, count(*) from {OUTBOX}"
    params = {}
    if target is not None:
        sql += " where target = :target"
        params["target"] = target
    counts = dict(connection.execute(sa.text(sql + " group by state"), params).all())
    return {state: int(counts.get(state, 0)) for state in STATES}
