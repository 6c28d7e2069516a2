"""`revsync report`: write the reconciliation report (static HTML with charts) from the warehouse."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def report(
    warehouse: Annotated[
        Path | None, typer.Option(help="Warehouse file (default: $REVSYNC_WAREHOUSE or .revsync/).")
    ] = None,
    out: Annotated[Path, typer.Option(help="Folder the report is written to.")] = Path("build/report"),
    quality_docs: Annotated[Path, typer.Option(help="GX Data Docs to link.")] = Path("build/quality"),
    dbt_docs: Annotated[Path, typer.Option(help="dbt docs to link.")] = Path("build/dbt-docs"),
) -> None:
    """Write build/report/index.html: SLA metrics, mismatches by type and age, money at risk, sync
    latency, pushes and dead letters over time, gate history, the exceptions queue, doc links."""
    from revsync.observability.report import build_report
    from revsync.warehouse.connect import warehouse_path

    page = build_report(warehouse or warehouse_path(), out, quality_docs, dbt_docs)
    typer.echo(f"report: {page.absolute()}")
