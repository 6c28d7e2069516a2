"""`revsync extract` and `revsync connections` against the session sandbox, as a user runs them."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

pytestmark = pytest.mark.integration
REVSYNC = str(Path(sys.executable).with_name("revsync"))


def _revsync(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_CONN_", "REVSYNC_"))}
    return subprocess.run(
        [REVSYNC, *args], env={**base, **(env or {})}, capture_output=True, text=True, timeout=600
    )


def test_extract_from_the_sandbox_then_again_incrementally(sandbox, tmp_path):
    warehouse = tmp_path / "wh.duckdb"
    args = ("extract", "zendesk", "--sandbox", str(sandbox.world_dir), "--warehouse", str(warehouse))
    first = _revsync(*args)
    assert first.returncode == 0, first.stderr[-2000:]
    counts = sandbox.admin("counts")
    assert (
        f"zendesk.tickets: full, {counts['zendesk_tickets']} received, {counts['zendesk_tickets']} landed"
        in (first.stdout)
    )
    second = _revsync(*args)
    assert second.returncode == 0, second.stderr[-2000:]
    assert second.stdout.count("incremental") == 3 and " 0 landed" in second.stdout
    con = duckdb.connect(str(warehouse), read_only=True)
    assert con.execute("select count(*) from raw_zendesk.users").fetchone()[0] == counts["zendesk_users"]


def test_connections_output_drives_extract_through_airflow_connection_variables(sandbox, tmp_path):
    printed = _revsync("connections", str(sandbox.world_dir))
    assert printed.returncode == 0, printed.stderr
    env = {}
    for line in printed.stdout.splitlines():
        name, _, value = line.removeprefix("export ").partition("=")
        env[name] = shlex.split(value)[0]
    assert {"AIRFLOW_CONN_STRIPE_DEFAULT", "AIRFLOW_CONN_NETSUITE_DEFAULT"} <= env.keys()
    done = _revsync("extract", "hubspot", "--warehouse", str(tmp_path / "wh.duckdb"), env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"hubspot.deals: full, {sandbox.admin('counts')['hubspot_deals']} received" in done.stdout


def test_extract_without_a_connection_says_how_to_fix_it(tmp_path):
    done = _revsync("extract", "stripe", "--warehouse", str(tmp_path / "wh.duckdb"))
    assert done.returncode == 2
    assert "AIRFLOW_CONN_STRIPE_DEFAULT" in done.stderr and "--sandbox" in done.stderr
