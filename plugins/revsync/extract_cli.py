"""`revsync extract` and `revsync connections`: the extract DAGs' task body from a shell, and the
Airflow connection variables for a running sandbox."""

from __future__ import annotations

import json
import logging
import os
import shlex
import sys
from pathlib import Path
from typing import Annotated

import httpx
import typer

from revsync.connectors import registry
from revsync.orchestration.connections import SourceConfig, conn_id, sandbox_environment, source_config

SANDBOX_HELP = "A sandbox world directory whose running server's endpoints.json gives URLs and credentials."


def _endpoints(world_dir: Path) -> dict:
    path = world_dir / "endpoints.json"
    if not path.exists():
        raise typer.BadParameter(
            f"{path} not found: start the sandbox first (`revsync sandbox serve {world_dir}`)",
            param_hint="--sandbox",
        )
    return json.loads(path.read_text())


def _config(source: str, endpoints: dict | None) -> SourceConfig:
    if endpoints is not None:
        info = endpoints["vendors"].get(source)
        if info is None:
            raise typer.BadParameter(f"the sandbox serves no {source!r}", param_hint="SOURCES")
        return SourceConfig(info["base_url"], info["credentials"])
    variable = f"AIRFLOW_CONN_{conn_id(source).upper()}"
    value = os.environ.get(variable)
    if not value:
        raise typer.BadParameter(
            f"no connection for {source}: set {variable} (Airflow's JSON or URI form) or pass --sandbox DIR",
            param_hint="SOURCES",
        )
    from airflow.sdk import Connection

    conn = Connection.from_json(value, conn_id=conn_id(source)) if value.lstrip().startswith("{") else None
    if conn is None:
        conn = Connection(conn_id=conn_id(source), uri=value)
    return source_config(source, conn)


def extract(
    sources: Annotated[
        list[str] | None, typer.Argument(help="Sources to extract (default: the four core ones).")
    ] = None,
    sandbox: Annotated[Path | None, typer.Option("--sandbox", help=SANDBOX_HELP)] = None,
    warehouse: Annotated[
        Path | None, typer.Option(help="Warehouse file (default: $REVSYNC_WAREHOUSE or .revsync/).")
    ] = None,
    batch_id: Annotated[
        str | None, typer.Option(help="Batch id (default: cli-<time>); rerun with the same id to retry.")
    ] = None,
    full_refresh: Annotated[bool, typer.Option("--full-refresh", help="Read every stream in full.")] = False,
    force: Annotated[
        bool,
        typer.Option("--force", help="Also read streams read more recently than their refresh interval."),
    ] = False,
    since: Annotated[
        str, typer.Option(help="Read changes since this time (ISO 8601 or epoch seconds).")
    ] = "",
    lookback: Annotated[int, typer.Option(help="Seconds re-read before each stored cursor.")] = 600,
    stream: Annotated[
        list[str] | None,
        typer.Option(
            "--stream", help="Only this stream (repeatable; e.g. --stream invoices --stream charges)."
        ),
    ] = None,
) -> None:
    """Extract sources into raw landing, as the extract DAGs do (incremental after the first run)."""
    import time

    from revsync.orchestration.extract import extract_stream_task, parse_start_cursor, run_window

    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(message)s")
    endpoints = _endpoints(sandbox) if sandbox is not None else None
    chosen = sources or list(registry.CONNECTORS)
    try:
        parse_start_cursor(since)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--since") from None
    window = run_window(
        {"full_refresh": full_refresh, "start_cursor": since, "lookback_seconds": lookback, "force": force},
        None,
        None,
    )
    batch = batch_id or f"cli-{int(time.time())}"
    connectors = {}
    for source in chosen:
        try:
            connectors[source] = registry.get(source)
        except KeyError as exc:
            raise typer.BadParameter(str(exc.args[0]), param_hint="SOURCES") from None
    offered = {s.name for connector in connectors.values() for s in connector.streams}
    if unknown := sorted(set(stream or ()) - offered):
        raise typer.BadParameter(
            f"{', '.join(unknown)}: not a stream of {', '.join(chosen)}; "
            f"their streams: {', '.join(sorted(offered))}",
            param_hint="--stream",
        )
    for source, connector in connectors.items():
        names = [s.name for s in connector.streams if not stream or s.name in stream]
        config = _config(source, endpoints)
        for name in names:
            summary = extract_stream_task(
                source, name, config.base_url, config.credentials, batch, window, warehouse=warehouse
            )
            typer.echo(
                f"{source}.{name}: {summary['mode']}, {summary['received']} received, "
                f"{summary['landed']} landed, {summary['unchanged']} unchanged, "
                f"{summary['quarantined']} quarantined in {summary['seconds']}s"
            )


def connections(
    sandbox: Annotated[Path, typer.Argument(help=SANDBOX_HELP)],
    host: Annotated[
        str | None,
        typer.Option(
            help="Reach the sandbox under this host name instead (e.g. `sandbox` in docker compose)."
        ),
    ] = None,
    output: Annotated[
        str,
        typer.Option(
            "--format",
            help="env: `export AIRFLOW_CONN_*=...` lines; airflow-json: `airflow connections import`.",
        ),
    ] = "env",
) -> None:
    """Print the Airflow connections pointing every source at a running sandbox."""
    if output not in ("env", "airflow-json"):
        raise typer.BadParameter("use env or airflow-json", param_hint="--format")
    endpoints = _endpoints(sandbox)
    if host:
        for info in endpoints["vendors"].values():
            url = httpx.URL(info["base_url"])
            info["base_url"] = str(url.copy_with(host=host)).rstrip("/")
    variables = sandbox_environment(endpoints)
    if output == "airflow-json":
        by_id = {
            name.removeprefix("AIRFLOW_CONN_").lower(): json.loads(value) for name, value in variables.items()
        }
        for connection in by_id.values():  # `airflow connections import` takes extra as JSON text
            connection["extra"] = json.dumps(connection.get("extra") or {})
        typer.echo(json.dumps(by_id, indent=2, sort_keys=True))
        return
    for name, value in variables.items():
        typer.echo(f"export {name}={shlex.quote(value)}")
