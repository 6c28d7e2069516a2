"""`revsync sql`: an analyst's query on the read-only reporting snapshot, printed as a table."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def sql(
    query: Annotated[
        str, typer.Argument(help='SQL on the marts, e.g. "select * from sync.exceptions limit 5".')
    ],
    warehouse: Annotated[
        Path | None, typer.Option(help="Warehouse file whose snapshot to read (default: $REVSYNC_WAREHOUSE).")
    ] = None,
    publish: Annotated[
        bool, typer.Option("--publish", help="Publish a fresh snapshot from the warehouse first.")
    ] = False,
    output: Annotated[str, typer.Option("--format", help="table, csv or json.")] = "table",
    limit: Annotated[int, typer.Option(help="Rows printed at most (table format).")] = 200,
) -> None:
    """Query the reconciliation models without touching the pipeline's warehouse.

    Reads reporting.duckdb, the read-only snapshot published after each successful build (an atomic
    swap: a running query is never disturbed and never blocks the pipeline)."""
    import duckdb

    from revsync.warehouse.connect import warehouse_path
    from revsync.warehouse.reporting import publish_reporting, query_reporting

    if output not in ("table", "csv", "json"):
        raise typer.BadParameter("use table, csv or json", param_hint="--format")
    store = warehouse or warehouse_path()
    if publish:
        done = publish_reporting(store)
        typer.echo(f"published {done['tables']} tables ({done['rows']} rows) to {done['path']}", err=True)
    try:
        frame = query_reporting(query, store)
    except FileNotFoundError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(code=1) from None
    except duckdb.Error as exc:
        typer.echo(f"query failed: {exc}", err=True)
        raise typer.Exit(code=1) from None
    if output == "csv":
        typer.echo(frame.to_csv(index=False), nl=False)
    elif output == "json":
        typer.echo(frame.to_json(orient="records", date_format="iso"))
    else:
        typer.echo(frame.head(limit).to_string(index=False, max_colwidth=60))
        if len(frame) > limit:
            typer.echo(f"... {len(frame) - limit} more rows (--limit, or --format csv)")
