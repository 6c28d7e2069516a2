"""Dead letters: listing them, and replaying the ones an operator chose.

A replay moves each chosen dead letter to `replayed` (its transient-error budget starts afresh) and
audits who asked and who approved; the next delivery sends it like any other write. Writes that book
money (invoices, payments, credit memos) are replayed only with a named approver: a replay re-posts
a financial document to the ledger, which is a finance decision, not an operator's.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from revsync.push.audit import write_audit
from revsync.push.outbox import OUTBOX, ensure_outbox, rows, transition
from revsync.push.targets import FINANCIAL_RECORD_TYPES
from revsync.warehouse.state import state_engine, writer_lock


class ApprovalRequired(PermissionError):
    """Financial dead letters were chosen without an approver."""


def _where(
    keys: Sequence[str] | None, target: str | None, record_type: str | None, error_like: str | None
) -> tuple[str, dict[str, Any]]:
    clauses, params = ["state = 'dead_lettered'"], {}
    if keys:
        clauses.append("idempotency_key in (" + ", ".join(f":k{i}" for i in range(len(keys))) + ")")
        params |= {f"k{i}": key for i, key in enumerate(keys)}
    if target:
        clauses.append("target = :target")
        params["target"] = target
    if record_type:
        clauses.append("record_type = :record_type")
        params["record_type"] = record_type
    if error_like:
        clauses.append("lower(last_error) like :error_like")
        params["error_like"] = f"%{error_like.lower()}%"
    return " and ".join(clauses), params


def dead_letters(
    warehouse: Path | str,
    *,
    keys: Sequence[str] | None = None,
    target: str | None = None,
    record_type: str | None = None,
    error_like: str | None = None,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """Dead-lettered writes matching the filters, oldest first."""
    where, params = _where(keys, target, record_type, error_like)
    engine = state_engine(warehouse)
    try:
        with writer_lock(warehouse), engine.begin() as con:
            ensure_outbox(con)
            return rows(con, where, params, limit)
    finally:
        engine.dispose()


def replay(
    warehouse: Path | str,
    *,
    keys: Sequence[str] | None = None,
    target: str | None = None,
    record_type: str | None = None,
    error_like: str | None = None,
    approved_by: str | None = None,
    actor: str = "operator",
    run_id: str | None = None,
) -> list[dict[str, Any]]:
    """Move the matching dead letters to `replayed`; the rows moved. Raises ApprovalRequired (moving
    nothing) when financial writes are among them and `approved_by` is empty, ValueError when nothing
    was chosen at all (no keys and no filter)."""
    if not (keys or target or record_type or error_like):
        raise ValueError("choose what to replay: idempotency keys, or a target / record type / error filter")
    where, params = _where(keys, target, record_type, error_like)
    engine = state_engine(warehouse)
    try:
        with writer_lock(warehouse), engine.begin() as con:
            ensure_outbox(con)
            chosen = rows(con, where, params)
            financial = [r for r in chosen if r["record_type"] in FINANCIAL_RECORD_TYPES]
            if financial and not (approved_by or "").strip():
                sample = ", ".join(f"{r['record_type']} {r['source_id']}" for r in financial[:5])
                raise ApprovalRequired(
                    f"{len(financial)} of the {len(chosen)} dead letters chosen are financial writes "
                    f"({sample}"
                    f"{', ...' if len(financial) > 5 else ''}); replaying them needs approved_by: "
                    "the name of the finance approver"
                )
            detail = {"actor": actor, "approved_by": approved_by or None, "run_id": run_id}
            for row in chosen:
                transition(con, row["idempotency_key"], "replayed", detail=detail)
            if chosen:
                keyed = sa.text(f"update {OUTBOX} set errors = 0 where idempotency_key in :keys").bindparams(
                    sa.bindparam("keys", expanding=True)
                )
                con.execute(keyed, {"keys": [r["idempotency_key"] for r in chosen]})
                write_audit(
                    con,
                    [
                        {
                            **row,
                            "outcome": "replayed",
                            "attempts": row["attempts"],
                            "error": row["last_error"],
                            "detail": detail,
                        }
                        for row in chosen
                    ],
                    run_id,
                    actor=approved_by or actor,
                )
            return chosen
    finally:
        engine.dispose()
