"""SIGKILL of a stream task's process mid-fetch and mid-landing: the warehouse keeps nothing partial,
and rerunning the task lands exactly the source, once."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

pytestmark = pytest.mark.integration

TASK = """
import json, sys
from pathlib import Path
from revsync.connectors.load import Window
from revsync.orchestration.extract import extract_stream_task
base_url, creds, warehouse = sys.argv[1], json.loads(sys.argv[2]), Path(sys.argv[3])
summary = extract_stream_task("stripe", "invoices", base_url, creds, "run-1", Window(), warehouse=warehouse)
print(json.dumps(summary))
"""


def _start(server, warehouse: Path, chunk_rows: int) -> subprocess.Popen:
    env = {**os.environ, "REVSYNC_LANDING_CHUNK_ROWS": str(chunk_rows)}
    args = [
        sys.executable,
        "-c",
        TASK,
        server.base_url("stripe"),
        json.dumps(server.creds("stripe")),
        str(warehouse),
    ]
    return subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(condition, process: subprocess.Popen, what: str, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if process.poll() is not None:
            raise AssertionError(f"the task ended before {what}: {process.stderr.read()[-2000:]}")
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.002)


def _locked(warehouse: Path) -> bool:
    with open(warehouse.with_name(warehouse.name + ".lock"), "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(lock, fcntl.LOCK_UN)
        return False


def _state(warehouse: Path) -> tuple[int, int, int]:
    """(invoice rows, distinct invoice ids, cursor rows for stripe.invoices) as a fresh process sees them."""
    con = duckdb.connect(str(warehouse))
    try:
        tables = {r[0] for r in con.execute("select table_name from information_schema.tables").fetchall()}
        rows = distinct = cursors = 0
        if "invoices" in tables:
            rows, distinct = con.execute(
                "select count(*), count(distinct _pk) from raw_stripe.invoices"
            ).fetchone()
        if "cursors" in tables:
            sql = "select count(*) from revsync_state.cursors where source = 'stripe' and stream = 'invoices'"
            cursors = con.execute(sql).fetchone()[0]
        return rows, distinct, cursors
    finally:
        con.close()


def _kill(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL


def test_sigkill_mid_fetch_and_mid_landing_then_rerun_lands_exactly_once(sandbox, tmp_path):
    warehouse = tmp_path / "warehouse.duckdb"
    spool = tmp_path / "spool" / "stripe.invoices.run-1.jsonl"
    expected = sandbox.admin("counts")["stripe_invoices"]

    # 1. killed while fetching: the spool is partial and the warehouse holds nothing of the stream
    task = _start(sandbox, warehouse, chunk_rows=5000)
    partial = spool.with_name(spool.name + ".partial")
    _wait_for(lambda: partial.exists() and partial.stat().st_size > 200_000, task, "a partial spool")
    _kill(task)
    assert not spool.exists()
    assert _state(warehouse) == (0, 0, 0)

    # 2. killed while landing (small chunks make the transaction last): it rolls back entirely
    task = _start(sandbox, warehouse, chunk_rows=20)
    _wait_for(lambda: spool.exists() and _locked(warehouse), task, "landing under the lock")
    time.sleep(0.3)  # well inside the ~350 chunk inserts
    _kill(task)
    assert spool.exists()  # the spool is removed only after a committed landing
    assert _state(warehouse) == (0, 0, 0)

    # 3. the rerun (same batch, as a retry or a cleared task) lands every invoice exactly once
    task = _start(sandbox, warehouse, chunk_rows=5000)
    out, err = task.communicate(timeout=300)
    assert task.returncode == 0, err[-3000:]
    summary = json.loads(out.strip().splitlines()[-1])
    assert (summary["mode"], summary["landed"], summary["quarantined"]) == ("full", expected, 0)
    assert _state(warehouse) == (expected, expected, 1)
    assert not spool.exists()

    # 4. and once more: nothing new lands
    task = _start(sandbox, warehouse, chunk_rows=5000)
    out, err = task.communicate(timeout=300)
    assert task.returncode == 0, err[-3000:]
    assert json.loads(out.strip().splitlines()[-1])["landed"] == 0
    assert _state(warehouse) == (expected, expected, 1)
