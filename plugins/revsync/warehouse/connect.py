"""Where the warehouse lives and how a process gets it: DuckDB lets one process write a file at a time,
so writers take an advisory file lock beside it and wait their turn instead of failing."""

from __future__ import annotations

import fcntl
import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TypeVar

import duckdb

log = logging.getLogger(__name__)

LOCK_POLL_S = 0.2
LOCK_CONFLICT_WAIT_S = 60.0
T = TypeVar("T")


# DuckDB's default limit is 80 % of RAM; a writer sharing the machine with Airflow, the sandbox and
# other tasks spills to disk beyond this instead (REVSYNC_DUCKDB_MEMORY_LIMIT, e.g. "2GB").
MEMORY_LIMIT = os.environ.get("REVSYNC_DUCKDB_MEMORY_LIMIT", "2GB")


class WarehouseBusy(TimeoutError):
    pass


def is_lock_conflict(error: BaseException) -> bool:
    """DuckDB's refusal to open a file another process still has open."""
    return isinstance(error, duckdb.IOException) and "Could not set lock" in str(error)


def retry_lock_conflict(open_file: Callable[[], T], wait_s: float = LOCK_CONFLICT_WAIT_S) -> T:
    """`open_file()`, retried while DuckDB reports a conflicting lock. Writers take the advisory lock
    first, but a process that just released it may still be closing the file (a connection object not
    yet collected): that is worth a short wait, not a failed task."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            return open_file()
        except Exception as exc:
            if not is_lock_conflict(exc) or time.monotonic() > deadline:
                raise
            log.info("the warehouse file is still held by another process; retrying: %s", exc)
            time.sleep(0.25)


def connect(path: Path | str, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with revsync's memory limit (spilling next to the file beyond it)."""
    target = Path(path)
    con = retry_lock_conflict(lambda: duckdb.connect(str(target), read_only=read_only))
    con.execute(f"set memory_limit = '{MEMORY_LIMIT}'")
    con.execute(f"set temp_directory = '{target.with_name(target.name + '.tmp')}'")
    con.execute("set preserve_insertion_order = false")
    return con


def warehouse_path() -> Path:
    """`REVSYNC_WAREHOUSE`, else warehouse.duckdb in `REVSYNC_HOME` (default .revsync/ here)."""
    if os.environ.get("REVSYNC_WAREHOUSE"):
        return Path(os.environ["REVSYNC_WAREHOUSE"]).absolute()
    return (Path(os.environ.get("REVSYNC_HOME", ".revsync")) / "warehouse.duckdb").absolute()


@contextmanager
def warehouse_lock(path: Path | str | None = None, wait_s: float = 600.0) -> Iterator[IO[str]]:
    """Hold the warehouse's writer lock (`<warehouse>.lock`) for the block, waiting up to `wait_s` for it.

    Yields the open lock file: a child process given its descriptor (`pass_fds`) shares the lock, so
    the lock outlives a killed parent until the child (say, dbt writing the warehouse) exits too."""
    target = Path(path) if path is not None else warehouse_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.with_name(target.name + ".lock"), "a+") as lock:
        deadline = time.monotonic() + wait_s
        waited = False
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise WarehouseBusy(
                        f"the warehouse {target} stayed locked by another writer for {wait_s:.0f}s; "
                        "check for a stuck task holding it (`fuser` on the .lock file)"
                    ) from None
                if not waited:
                    log.info("waiting for the warehouse lock on %s", target)
                    waited = True
                time.sleep(LOCK_POLL_S)
        try:
            yield lock
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@contextmanager
def open_warehouse(
    path: Path | str | None = None, wait_s: float = 600.0
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-write connection to the warehouse, held under an exclusive lock for the block's duration."""
    target = Path(path) if path is not None else warehouse_path()
    with warehouse_lock(target, wait_s):
        con = connect(target)
        try:
            yield con
        finally:
            con.close()
