"""One push: the validated change set into the outbox, then the outbox to the target.

`push` is what the push DAGs and `revsync push` run: it enqueues `validated.<change set>` (only what
the gate let through; a change already in the outbox in any state is not added again), marks pending
writes the change set no longer wants as superseded, and delivers (revsync.push.delivery). `plan` is
the dry run: the writes a push would send now, per record type and operation, changing nothing.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from revsync.push.delivery import DeliveryReport, DeliverySettings, deliver
from revsync.push.outbox import OUTBOX, SENDABLE, enqueue_relation, ensure_outbox, supersede
from revsync.push.targets import Target
from revsync.warehouse.state import VALIDATED_SCHEMA, state_engine, table_exists, writer_lock

log = logging.getLogger(__name__)


class NothingValidated(RuntimeError):
    """The target's validated change set does not exist: the gate has not published one yet."""


def validated_table(target: Target) -> str:
    return f"{VALIDATED_SCHEMA}.{target.change_set}"


def _validated(connection: sa.Connection, target: Target) -> str:
    """The validated change set as the outbox's columns (a subquery); raises NothingValidated."""
    if not table_exists(connection, VALIDATED_SCHEMA, target.change_set):
        raise NothingValidated(
            f"{validated_table(target)} does not exist: nothing has passed the quality gate yet. Run the "
            "reconcile DAG (or `revsync gate`) first; the push only ever reads what the gate validated."
        )
    return f"(select {target.outbox_select} from {validated_table(target)} as s)"


def enqueue_validated(warehouse: Path | str, target: Target) -> dict[str, int]:
    """Bring the validated change set into the outbox; counts of rows validated, added, superseded."""
    engine = state_engine(warehouse)
    try:
        with writer_lock(warehouse), engine.begin() as con:
            ensure_outbox(con)
            relation = _validated(con, target)
            validated = con.execute(sa.text(f"select count(*) from {relation} as v")).scalar_one()
            gate_run = con.execute(
                sa.text(f"select max(gate_run_id) from {validated_table(target)}")
            ).scalar()
            added = enqueue_relation(con, relation)
            # an empty set is also what a blocked gate leaves: never read it as "nothing is wanted"
            superseded = supersede(con, target.name, relation, gate_run) if validated else 0
    finally:
        engine.dispose()
    return {"validated": int(validated), "enqueued": added, "superseded": superseded}


PLAN_SQL = f"""
select record_type, operation, count(*) as writes, count(*) filter (where is_new) as new_writes
from (
    select v.record_type, v.operation, true as is_new from {{validated}} as v
    where not exists (select 1 from {OUTBOX} as o where o.idempotency_key = v.idempotency_key)
    union all
    select o.record_type, o.operation, false as is_new from {OUTBOX} as o
    where o.target = :target and o.state in :sendable
      and o.idempotency_key in (select idempotency_key from {{validated}} as w)
) as planned
group by record_type, operation order by record_type, operation
"""


def plan(warehouse: Path | str, target: Target) -> dict[str, Any]:
    """What a push would send now, changing nothing: writes per record type and operation (new ones
    from the validated change set plus outbox writes waiting to be sent or retried), and in-doubt ones."""
    engine = state_engine(warehouse)
    try:
        with writer_lock(warehouse), engine.connect() as con:
            ensure_outbox(con)
            relation = _validated(con, target)
            statement = sa.text(PLAN_SQL.format(validated=relation)).bindparams(
                sa.bindparam("sendable", expanding=True)
            )
            groups = con.execute(statement, {"target": target.name, "sendable": list(SENDABLE)}).all()
            in_doubt = con.execute(
                sa.text(f"select count(*) from {OUTBOX} where target = :t and state = 'sent'"),
                {"t": target.name},
            ).scalar_one()
            con.rollback()
    finally:
        engine.dispose()
    by_type = [{"record_type": r, "operation": o, "writes": int(w), "new": int(n)} for r, o, w, n in groups]
    return {
        "target": target.name,
        "writes": sum(g["writes"] for g in by_type),
        "in_doubt": int(in_doubt),
        "by_type": by_type,
    }


def push(
    warehouse: Path | str,
    target: Target,
    base_url: str,
    credentials: dict[str, str],
    run_id: str,
    settings: DeliverySettings | None = None,
) -> tuple[dict[str, int], DeliveryReport]:
    """Enqueue the validated change set and deliver it; (enqueue counts, delivery report)."""
    queued = enqueue_validated(warehouse, target)
    log.info("push %s: %s", target.name, queued)
    report = deliver(warehouse, target, base_url, credentials, run_id, settings)
    return queued, report
