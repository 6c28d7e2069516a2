"""`revsync gate` and `revsync quarantine`: the quality gate's checkpoints from a shell, and the review of
what it holds back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

WAREHOUSE_HELP = "Warehouse: a DuckDB file or a PostgreSQL URL (default: $REVSYNC_WAREHOUSE or .revsync/)."


def gate(
    stages: Annotated[
        list[str] | None,
        typer.Argument(help="Stages to validate, in order: staging, canonical, sync (default: all three)."),
    ] = None,
    warehouse: Annotated[str | None, typer.Option(help=WAREHOUSE_HELP)] = None,
    volume_band: Annotated[
        float | None,
        typer.Option(
            help="Allowed row-count swing against the previous passing run, 0-1 (0.5: half to double)."
        ),
    ] = None,
    freshness_hours: Annotated[
        float | None, typer.Option(help="A source stream landed longer ago than this blocks (default 24).")
    ] = None,
    docs: Annotated[Path | None, typer.Option(help="Where GX Data Docs go (default build/quality).")] = None,
) -> None:
    """Run the quality gate's checkpoints, as the reconcile DAG's gate tasks do.

    Each stage's outcome lands in revsync_state.quality_results; the sync stage quarantines failing
    change rows and publishes validated.<change set>. Rerun it after a fix: quarantined rows that now pass
    are released. Exits 1 at the first stage that blocks, printing why."""
    from revsync.quality.gate import STAGES, GateBlocked, GateSettings, run_gate

    chosen = stages or list(STAGES)
    unknown = [s for s in chosen if s not in STAGES]
    if unknown:
        raise typer.BadParameter(f"unknown stage(s) {unknown}; choose from {', '.join(STAGES)}")
    settings = GateSettings.from_env(volume_band=volume_band, freshness_hours=freshness_hours, docs_dir=docs)
    for stage in STAGES:
        if stage not in chosen:
            continue
        typer.echo(f"gate {stage}: validating ...")
        try:
            report = run_gate(stage, warehouse, settings=settings)
        except GateBlocked as blocked:
            typer.echo(str(blocked), err=True)
            raise typer.Exit(code=1) from None
        summary = report.summary()
        held = ", ".join(f"{t} {n}" for t, n in summary["quarantined"].items() if n) or "none"
        typer.echo(
            f"gate {stage}: passed {summary['expectations'] - summary['failed']}/{summary['expectations']} "
            f"expectations of {summary['suites']} suites in {summary['seconds']}s; quarantined: {held}; "
            f"docs: {summary['docs']}"
        )
        if summary["validated_rows"]:
            typer.echo(f"gate {stage}: published {json.dumps(summary['validated_rows'])}")


def quarantine(
    status: Annotated[
        str, typer.Option(help="quarantined (held now), released, superseded, or all.")
    ] = "quarantined",
    warehouse: Annotated[str | None, typer.Option(help=WAREHOUSE_HELP)] = None,
    limit: Annotated[int, typer.Option(help="At most this many rows, newest first.")] = 50,
) -> None:
    """List change rows the gate held back, with why and what became of them.

    A held row is pushed once it passes the gate (released); one whose change disappeared from the change
    set, e.g. recomputed under a new key after the data was fixed, is superseded. Nothing is deleted."""
    import sqlalchemy as sa

    from revsync.quality.gate import QUARANTINE_TABLE
    from revsync.quality.results import state_engine
    from revsync.warehouse.connect import warehouse_path

    if status not in ("quarantined", "released", "superseded", "all"):
        raise typer.BadParameter("choose quarantined, released, superseded or all", param_hint="--status")
    engine = state_engine(warehouse or warehouse_path())
    query = (
        "select change_table, idempotency_key, customer_key, record_type, source_id, status, reasons, "
        f"quarantined_at, resolved_at from {QUARANTINE_TABLE}"
        + ("" if status == "all" else " where status = :status")
        + " order by quarantined_at desc limit :limit"
    )
    try:
        with engine.connect() as connection:
            rows = connection.execute(sa.text(query), {"status": status, "limit": limit}).all()
    except sa.exc.DBAPIError as exc:
        if "quarantined_changes" in str(exc):
            typer.echo("nothing quarantined yet: the gate's sync stage has not run on this warehouse")
            return
        raise
    finally:
        engine.dispose()
    if not rows:
        typer.echo("no change rows" + ("" if status == "all" else f" {status}"))
    for row in rows:
        reasons = "; ".join(json.loads(row.reasons) if isinstance(row.reasons, str) else row.reasons)
        what = f"{row.change_table} {row.record_type or '-'} {row.source_id or '-'}"
        typer.echo(
            f"{row.quarantined_at:%Y-%m-%d %H:%M} {row.status:<11} {what} customer {row.customer_key or '-'} "
            f"key {row.idempotency_key[:16]}: {reasons}"
        )
