"""What an operator asks first: is the sync healthy? Read from the warehouse (open mismatches by type,
exceptions, the gate's latest verdict per stage, the outbox and its dead letters) and, when given,
from Airflow's metadata database (the last run of each revsync DAG). Read-only: nothing is created."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from revsync.warehouse.state import state_engine, table_exists, writer_lock

REVSYNC_DAG_PREFIXES = ("extract_", "reconcile", "push_", "replay_dead_letters")


def warehouse_status(warehouse: Path | str) -> dict[str, Any]:
    """Open mismatches by type, exceptions, gate verdicts per stage, outbox states and dead letters."""
    engine = state_engine(warehouse)
    status: dict[str, Any] = {"warehouse": str(warehouse)}
    try:
        with writer_lock(warehouse), engine.connect() as con:
            if table_exists(con, "reconciliation", "mismatches"):
                rows = con.execute(
                    sa.text(
                        "select mismatch_type, count(*) from reconciliation.mismatches "
                        "group by 1 order by 2 desc, 1"
                    )
                ).all()
                status["mismatches"] = {t: int(n) for t, n in rows}
            if table_exists(con, "sync", "exceptions"):
                status["exceptions"] = int(
                    con.execute(sa.text("select count(*) from sync.exceptions")).scalar_one()
                )
            if table_exists(con, "revsync_state", "quality_results"):
                rows = con.execute(
                    sa.text(
                        "with latest as (select stage, max(validated_at) as at "
                        "from revsync_state.quality_results group by stage) "
                        "select q.stage, max(q.run_id), max(q.validated_at), "
                        "count(*) filter (where not q.success and q.policy = 'block'), "
                        "count(*) filter (where not q.success and q.policy = 'quarantine') "
                        "from revsync_state.quality_results as q join latest as l "
                        "on q.stage = l.stage and q.validated_at = l.at group by q.stage order by q.stage"
                    )
                ).all()
                status["gate"] = {
                    stage: {
                        "run_id": run,
                        "validated_at": str(at),
                        "verdict": "blocked" if blocking else ("quarantined" if held else "passed"),
                        "blocking_failures": int(blocking),
                    }
                    for stage, run, at, blocking, held in rows
                }
            if table_exists(con, "revsync_state", "outbox"):
                rows = con.execute(
                    sa.text(
                        "select target, state, count(*) from revsync_state.outbox group by 1, 2 order by 1, 2"
                    )
                ).all()
                outbox: dict[str, dict[str, int]] = {}
                for target, state, count in rows:
                    outbox.setdefault(target, {})[state] = int(count)
                status["outbox"] = outbox
                letters = con.execute(
                    sa.text(
                        "select target, record_type, source_id, customer_key, last_error, updated_at "
                        "from revsync_state.outbox where state = 'dead_lettered' order by updated_at limit 20"
                    )
                ).all()
                status["dead_letters"] = [
                    dict(r._mapping) | {"updated_at": str(r.updated_at)} for r in letters
                ]
            con.rollback()
    finally:
        engine.dispose()
    return status


def default_airflow_db() -> str | None:
    """Airflow's metadata URL: AIRFLOW__DATABASE__SQL_ALCHEMY_CONN, else $AIRFLOW_HOME/airflow.db, else the
    embedded demo's $REVSYNC_HOME/airflow/airflow.db, if it exists."""
    if os.environ.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"):
        return os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    for folder in (
        os.environ.get("AIRFLOW_HOME"),
        Path(os.environ.get("REVSYNC_HOME", ".revsync")) / "airflow",
    ):
        if folder and (Path(folder) / "airflow.db").exists():
            return f"sqlite:///{(Path(folder) / 'airflow.db').absolute()}"
    return None


def airflow_status(url: str) -> list[dict[str, Any]]:
    """The latest run of each revsync DAG in Airflow's metadata database (read-only)."""
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        with engine.connect() as con:
            rows = con.execute(
                sa.text(
                    "select d.dag_id, d.run_id, d.state, d.run_type, d.start_date, d.end_date "
                    "from dag_run as d "
                    "join (select dag_id, max(id) as id from dag_run group by dag_id) as last "
                    "on d.id = last.id "
                    "order by d.dag_id"
                )
            ).all()
    finally:
        engine.dispose()
    return [
        {
            "dag_id": dag_id,
            "run_id": run_id,
            "state": state,
            "run_type": run_type,
            "start_date": str(start) if start else None,
            "end_date": str(end) if end else None,
        }
        for dag_id, run_id, state, run_type, start, end in rows
        if dag_id.startswith(REVSYNC_DAG_PREFIXES)
    ]
