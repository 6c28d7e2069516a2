"""Opening the DuckDB warehouse while another process is still closing it: the opener waits the holder
out instead of failing (two push tasks on Celery workers met exactly this), and gives up on anything else."""

from __future__ import annotations

import subprocess
import sys
import time

import duckdb
import pytest
import sqlalchemy as sa

from revsync.warehouse.connect import connect, retry_lock_conflict
from revsync.warehouse.state import state_engine

HOLD_S = 2.0


def _hold(path, seconds: float) -> subprocess.Popen:
    """A process that opens `path` for writing, says so, and keeps it open `seconds`."""
    code = (
        "import duckdb, sys, time; con = duckdb.connect(sys.argv[1]); "
        "con.execute('create table if not exists t (x int)'); print('open', flush=True); "
        f"time.sleep({seconds}); con.close()"
    )
    holder = subprocess.Popen([sys.executable, "-c", code, str(path)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "open"
    return holder


def test_connect_waits_for_a_holder_that_closes(tmp_path):
    path = tmp_path / "w.duckdb"
    holder = _hold(path, HOLD_S)
    started = time.monotonic()
    con = connect(path)
    waited = time.monotonic() - started
    try:
        assert con.execute("select count(*) from t").fetchall() == [(0,)]
    finally:
        con.close()
        holder.wait()
    assert waited > HOLD_S / 2  # it really was refused first


def test_the_state_engine_waits_too(tmp_path):
    path = tmp_path / "w.duckdb"
    holder = _hold(path, HOLD_S)
    engine = state_engine(path)
    try:
        with engine.connect() as con:
            assert con.execute(sa.text("select count(*) from t")).scalar_one() == 0
    finally:
        engine.dispose()
        holder.wait()


def test_a_holder_that_stays_fails_after_the_wait_and_other_errors_at_once(tmp_path):
    path = tmp_path / "w.duckdb"
    holder = _hold(path, 30)
    try:
        with pytest.raises(duckdb.IOException, match="Could not set lock"):
            retry_lock_conflict(lambda: duckdb.connect(str(path)), wait_s=0.5)
    finally:
        holder.kill()
        holder.wait()
    calls = []

    def broken():
        calls.append(1)
        raise duckdb.IOException("IO Error: Cannot open file: permission denied")

    with pytest.raises(duckdb.IOException, match="permission denied"):
        retry_lock_conflict(broken)
    assert calls == [1]
