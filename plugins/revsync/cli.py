"""The `revsync` command line.

Top-level commands live here; `revsync sandbox ...` is the Typer app that `sandbox/cli.py`
exposes as `app`, mounted when that module exists.
"""

from __future__ import annotations

import importlib
from importlib import metadata

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
    seed: int = typer.Option(42, help="Seed of the generated sandbox world."),
    scale: str = typer.Option("1", help="Size of the generated sandbox world, passed to the generator."),
    keep: bool = typer.Option(False, "--keep", help="Keep the sandbox running after the demo."),
) -> None:
    """Run the whole pipeline against the local sandbox: extract, reconcile, gate, push, report.

    Not implemented yet: exits with status 1 and says so.
    """
    typer.echo(
        "revsync demo: the full pipeline demo is NOT IMPLEMENTED YET "
        f"(asked for seed={seed}, scale={scale}, keep={keep}).\n"
        "Every stage runs today, one command each (README): `revsync sandbox generate` and `serve`, "
        "`revsync extract --sandbox DIR`, `dbt build` (or the reconcile DAG), `revsync gate`, "
        "`revsync push --sandbox DIR`, `revsync report`, `revsync status`.",
        err=True,
    )
    raise typer.Exit(code=1)


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
