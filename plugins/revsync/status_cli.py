"""`revsync status`: the last run of each DAG, open mismatches by type, the gate, the outbox, dead letters."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from revsync.quality_cli import WAREHOUSE_HELP


def status(
    warehouse: Annotated[str | None, typer.Option(help=WAREHOUSE_HELP)] = None,
    airflow_db: Annotated[
        str | None,
        typer.Option(
            help="Airflow's metadata database URL (default: AIRFLOW__DATABASE__SQL_ALCHEMY_CONN, "
            "$AIRFLOW_HOME/airflow.db or the demo's .revsync/airflow/airflow.db)."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document instead of text.")] = False,
) -> None:
    """Show whether the sync is healthy: DAG runs, mismatches, gate verdicts, outbox and dead letters."""
    from revsync.observability.status import airflow_status, default_airflow_db, warehouse_status
    from revsync.warehouse.connect import warehouse_path

    store = warehouse or str(warehouse_path())
    report = warehouse_status(store)
    url = airflow_db or default_airflow_db()
    report["dag_runs"] = airflow_status(url) if url else None
    if as_json:
        typer.echo(json.dumps(report, indent=2, default=str))
        return
    typer.echo(f"warehouse: {store}")
    if report["dag_runs"] is None:
        typer.echo("dag runs: no Airflow metadata database found (pass --airflow-db)")
    else:
        typer.echo("dag runs (latest):")
        for run in report["dag_runs"]:
            typer.echo(f"  {run['dag_id']:<24} {run['state']:<10} {run['run_id']}  ended {run['end_date']}")
    mismatches = report.get("mismatches")
    typer.echo(
        "open mismatches: " + (f"{sum(mismatches.values())}" if mismatches is not None else "not built yet")
    )
    for kind, count in (mismatches or {}).items():
        typer.echo(f"  {kind:<42} {count}")
    if "exceptions" in report:
        typer.echo(f"exceptions (need a human): {report['exceptions']}")
    for stage, gate in (report.get("gate") or {}).items():
        typer.echo(f"gate {stage:<10} {gate['verdict']:<12} {gate['run_id']} at {gate['validated_at']}")
    for target, states in (report.get("outbox") or {}).items():
        typer.echo(f"outbox {target}: " + ", ".join(f"{state} {n}" for state, n in states.items()))
    letters = report.get("dead_letters") or []
    typer.echo(f"dead letters: {len(letters)}{'+' if len(letters) == 20 else ''}")
    for letter in letters:
        typer.echo(
            f"  {letter['target']} {letter['record_type']} {letter['source_id']} "
            f"(customer {letter['customer_key']}): {letter['last_error']}"
        )
