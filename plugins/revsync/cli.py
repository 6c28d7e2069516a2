"""The `revsync` command line.

Top-level commands live here; `revsync sandbox ...` is the Typer app that `sandbox/cli.py`
exposes as `app`, mounted when that module exists.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
from importlib import metadata
from pathlib import Path
from typing import Annotated

import typer

from revsync import __version__, docs_cli, extract_cli, push_cli, quality_cli, report_cli, sql_cli, status_cli

app = typer.Typer(
    name="revsync",
    help="Reconcile Stripe, HubSpot, Zendesk and NetSuite, and push the fixes back.",
    no_args_is_help=True,
    add_completion=False,
)

_KEY_PACKAGES = ("apache-airflow", "dbt-core", "dbt-duckdb", "great-expectations", "duckdb")


@app.command()
def version() -> None:
    """Print the revsync version and the versions of the main engines it drives."""
    typer.echo(f"revsync {__version__}")
    for name in _KEY_PACKAGES:
        try:
            typer.echo(f"  {name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            typer.echo(f"  {name} (not installed)")


@app.command()
def demo(
    seed: Annotated[int, typer.Option(help="Seed of the generated sandbox world.")] = 42,
    scale: Annotated[str, typer.Option(help="small (≈1k customers), medium, large, or a count.")] = "small",
    keep: Annotated[
        bool, typer.Option("--keep", help="Leave Airflow and the sandbox running; print the UI login.")
    ] = False,
    home: Annotated[Path, typer.Option(help="Where the demo keeps its world, warehouse and Airflow.")] = Path(
        ".revsync"
    ),
    airflow_port: Annotated[int, typer.Option(help="The Airflow api-server's port (UI and API).")] = 8080,
    sandbox_port_base: Annotated[
        int, typer.Option(help="First of the sandbox's six vendor ports (0: any free).")
    ] = 12111,
    timeout: Annotated[float, typer.Option(help="Give up after this many seconds.")] = 900,
    executor: Annotated[
        str,
        typer.Option(help="LocalExecutor (embedded) or CeleryExecutor (with --metadata-url, --broker-url)."),
    ] = "LocalExecutor",
    metadata_url: Annotated[
        str | None,
        typer.Option(help="Airflow's metadata database (SQLAlchemy URL); default SQLite in --home."),
    ] = None,
    broker_url: Annotated[
        str | None, typer.Option(help="Celery broker, e.g. redis://127.0.0.1:6379/0.")
    ] = None,
    celery_workers: Annotated[int, typer.Option(help="Celery worker processes to start.")] = 2,
    rounds: Annotated[int, typer.Option(min=1, help="Rounds of extract -> reconcile -> gate -> push.")] = 2,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Also write the summary's figures to this JSON file.")
    ] = None,
) -> None:
    """Run the whole pipeline in a real Airflow 3 on a generated sandbox world, then print a summary.

    Extract DAGs are triggered; Assets drive reconcile (dbt + quality gate) and the pushes, twice: the
    second round shows what the first fixed. Writes the HTML report (build/report/index.html).
    """
    from revsync.demo import DemoFailed, DemoOptions, run_demo
    from revsync.orchestration.stack import StackError
    from sandbox.server.background import SandboxFailed

    if executor not in ("LocalExecutor", "CeleryExecutor"):
        raise typer.BadParameter("use LocalExecutor or CeleryExecutor", param_hint="--executor")
    celery = executor == "CeleryExecutor"
    if celery and not (metadata_url and broker_url):
        raise typer.BadParameter("CeleryExecutor needs --metadata-url (PostgreSQL) and --broker-url (Redis)")
    options = DemoOptions(
        seed,
        scale,
        keep,
        home,
        airflow_port,
        sandbox_port_base,
        timeout_s=timeout,
        rounds=rounds,
        executor=executor,
        metadata_url=metadata_url,
        broker_url=broker_url,
        celery_workers=celery_workers if celery else 0,
    )
    try:
        result = run_demo(options, progress=typer.echo)
    except (DemoFailed, StackError, SandboxFailed, ValueError) as exc:
        typer.echo(f"revsync demo failed: {exc}", err=True)
        raise typer.Exit(code=1) from None
    except KeyboardInterrupt:
        typer.echo("revsync demo: interrupted; what it started is stopped", err=True)
        raise typer.Exit(code=130) from None
    if json_out is not None:
        json_out.write_text(json.dumps(dataclasses.asdict(result), indent=2, default=str))


app.command()(extract_cli.extract)
app.command()(extract_cli.connections)
app.command()(quality_cli.gate)
app.command()(quality_cli.quarantine)
app.command()(push_cli.push)
app.command()(push_cli.outbox)
app.command()(push_cli.replay)
app.command()(status_cli.status)
app.command()(sql_cli.sql)
app.command()(report_cli.report)
app.command()(docs_cli.docs)


def _load_sandbox_app() -> typer.Typer | None:
    """Return `sandbox.cli.app`, or None while `sandbox/cli.py` does not exist yet.

    Only the absence of that one module is tolerated: any other import error (a missing
    dependency, a bug inside sandbox.cli) propagates.
    """
    try:
        sandbox_cli = importlib.import_module("sandbox.cli")
    except ModuleNotFoundError as exc:
        if exc.name == "sandbox.cli":
            return None
        raise
    return sandbox_cli.app


_sandbox_app = _load_sandbox_app()
if _sandbox_app is not None:
    app.add_typer(_sandbox_app, name="sandbox")


def main() -> None:
    """Console-script entry point (`revsync`)."""
    app()


if __name__ == "__main__":
    main()
