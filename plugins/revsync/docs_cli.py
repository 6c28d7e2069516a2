"""`revsync docs`: build the dbt docs site (every model and column described) from the warehouse."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Annotated

import typer

# what the site folder gets: index.html is dbt's --static page (manifest and catalog inlined), which a
# browser opens from disk, where the plain index.html cannot fetch its JSON files
SITE_FILES = {
    "static_index.html": "index.html",
    "manifest.json": "manifest.json",
    "catalog.json": "catalog.json",
}


def generate_docs(warehouse: Path, out: Path, lock_wait_s: float = 600.0) -> Path:
    """`dbt docs generate --static` on `warehouse` (under its writer lock: dbt-duckdb opens the file read-
    write), its target under `$REVSYNC_HOME/dbt/docs`; copy the site into `out` and return its index.html.

    Raises RuntimeError with dbt's last output lines when dbt fails."""
    from revsync.orchestration.reconcile import dbt_argv, revsync_home, run_dbt
    from revsync.warehouse.connect import warehouse_lock

    work = revsync_home() / "dbt"
    target = work / "docs"
    work.mkdir(parents=True, exist_ok=True)
    for name in SITE_FILES:
        (target / name).unlink(missing_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DBT_")}
    env |= {"REVSYNC_WAREHOUSE": str(warehouse), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    with warehouse_lock(warehouse, lock_wait_s) as lock:
        code, tail = run_dbt(dbt_argv("docs", "generate", "--static", target="docs"), env, (lock.fileno(),))
    missing = [name for name in SITE_FILES if not (target / name).exists()]
    if code != 0 or missing:
        detail = "\n".join(tail)
        raise RuntimeError(f"dbt docs generate exited {code} (missing: {missing or 'nothing'}):\n{detail}")
    out.mkdir(parents=True, exist_ok=True)
    for name, copy_as in SITE_FILES.items():
        shutil.copyfile(target / name, out / copy_as)
    return out / "index.html"


def docs(
    warehouse: Annotated[
        Path | None, typer.Option(help="Warehouse file (default: $REVSYNC_WAREHOUSE or .revsync/).")
    ] = None,
    out: Annotated[Path, typer.Option(help="Folder the docs site is written to.")] = Path("build/dbt-docs"),
    lock_wait: Annotated[
        float, typer.Option(help="Seconds to wait for the warehouse's writer lock (a running dbt build).")
    ] = 600.0,
) -> None:
    """Write build/dbt-docs: dbt's documentation site for the project (every model and column with its
    description, lineage, tests, compiled SQL and the warehouse's column types), which the report links.

    index.html is self-contained (it opens from disk); manifest.json and catalog.json sit beside it."""
    from revsync.warehouse.connect import warehouse_path

    store = (warehouse or warehouse_path()).absolute()
    if not store.exists():
        typer.echo(f"no warehouse at {store}: run `revsync extract` and the reconcile build first", err=True)
        raise typer.Exit(code=1)
    typer.echo(f"dbt docs generate on {store} ...", err=True)
    try:
        page = generate_docs(store, out, lock_wait)
    except (RuntimeError, TimeoutError) as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(code=1) from None
    typer.echo(f"dbt docs: {page.absolute()}")
