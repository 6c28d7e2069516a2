"""The analysts' copy: after each successful build the marts are published read-only to
`reporting.duckdb` beside the warehouse, swapped in atomically.

DuckDB allows one writing process per file, and a reader on the warehouse file would block the
pipeline (or be blocked by it). Analysts read the snapshot instead: it is written to a temporary file
and renamed over the old one, so a query running on the old snapshot finishes on it undisturbed (its
open file stays readable), the next query sees the new one, and the pipeline never waits for a reader.

Published: the canonical, reconciliation and sync marts, and the push's audit log and outbox (their
business columns), each as a table in a schema of the same name.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import duckdb

from revsync.warehouse.connect import warehouse_lock

SCHEMAS = ("canonical", "reconciliation", "sync")
STATE_TABLES = ("audit_log", "outbox", "quality_results", "quarantined_changes")
REPORTING_FILE = "reporting.duckdb"


def reporting_path(warehouse: Path | str) -> Path:
    """`REVSYNC_REPORTING`, else reporting.duckdb beside the warehouse."""
    if os.environ.get("REVSYNC_REPORTING"):
        return Path(os.environ["REVSYNC_REPORTING"]).absolute()
    return Path(warehouse).absolute().with_name(REPORTING_FILE)


def publish_reporting(warehouse: Path | str, target: Path | None = None, *, lock: bool = True) -> dict:
    """Copy the marts into a new snapshot and swap it in; {tables, rows, seconds, path}. With `lock`, the
    warehouse's writer lock is taken for the copy (off when the caller already holds it)."""
    started = time.monotonic()
    target = target or reporting_path(warehouse)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.partial")
    copied: dict[str, int] = {}
    try:
        if lock:
            with warehouse_lock(warehouse):
                copied = _copy(Path(warehouse), partial)
        else:
            copied = _copy(Path(warehouse), partial)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
        Path(f"{partial}.wal").unlink(missing_ok=True)
    return {
        "path": str(target),
        "tables": len(copied),
        "rows": sum(copied.values()),
        "seconds": round(time.monotonic() - started, 2),
    }


def _copy(warehouse: Path, partial: Path) -> dict[str, int]:
    con = duckdb.connect(str(partial))
    try:
        con.execute(f"attach '{warehouse}' as source (read_only)")
        tables = con.execute(
            "select schema_name, table_name from duckdb_tables() where database_name = 'source' "
            "and (list_contains(?, schema_name) "
            "or (schema_name = 'revsync_state' and list_contains(?, table_name))) order by 1, 2",
            [list(SCHEMAS), list(STATE_TABLES)],
        ).fetchall()
        copied = {}
        for schema, table in tables:
            con.execute(f'create schema if not exists "{schema}"')
            con.execute(f'create table "{schema}"."{table}" as select * from source."{schema}"."{table}"')
            count = con.execute(f'select count(*) from "{schema}"."{table}"').fetchall()[0][0]
            copied[f"{schema}.{table}"] = count
        con.execute("detach source")
        con.execute("checkpoint")
        return copied
    finally:
        con.close()


def query_reporting(sql: str, warehouse: Path | str | None = None, path: Path | None = None):  # noqa: ANN201
    """Run `sql` on the snapshot (read-only); a pandas DataFrame. Raises FileNotFoundError when no
    snapshot was published yet."""
    from revsync.warehouse.connect import warehouse_path

    path = path or reporting_path(warehouse or warehouse_path())
    if not path.exists():
        raise FileNotFoundError(
            f"no reporting snapshot at {path}: it is published after each successful reconcile run "
            "(or run `revsync sql --publish`)"
        )
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(sql).df()
    finally:
        con.close()
