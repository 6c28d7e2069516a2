"""`revsync extract` and `revsync connections` against the session sandbox, as a user runs them."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from conftest import AIRFLOW, airflow_env

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


def test_extract_only_named_streams_and_usage_waits_for_its_refresh_interval(sandbox, tmp_path):
    warehouse = tmp_path / "wh.duckdb"
    args = ("extract", "stripe", "--sandbox", str(sandbox.world_dir), "--warehouse", str(warehouse))
    first = _revsync(*args, "--stream", "products", "--stream", "usage")
    assert first.returncode == 0, first.stderr[-2000:]
    assert [line.split(":")[0] for line in first.stdout.splitlines()] == ["stripe.products", "stripe.usage"]
    again = _revsync(*args, "--stream", "usage")
    assert again.returncode == 0, again.stderr[-2000:]
    assert again.stdout.startswith("stripe.usage: skipped, 0 received, 0 landed"), again.stdout
    forced = _revsync(*args, "--stream", "usage", "--force")
    assert forced.stdout.startswith("stripe.usage: incremental"), forced.stdout + forced.stderr[-2000:]
    con = duckdb.connect(str(warehouse), read_only=True)
    tables = {
        r[0]
        for r in con.execute(
            "select table_name from duckdb_tables() where schema_name = 'raw_stripe'"
        ).fetchall()
    }
    assert tables == {"products", "usage"}


def test_extract_of_an_unknown_stream_names_the_streams_there_are(sandbox, tmp_path):
    done = _revsync(
        "extract", "zendesk", "--sandbox", str(sandbox.world_dir), "--warehouse", str(tmp_path / "wh.duckdb"),
        "--stream", "invoices",
    )  # fmt: skip
    assert done.returncode == 2
    assert "invoices: not a stream of zendesk" in done.stderr and "organizations" in done.stderr


def test_connections_as_airflow_json_import_into_airflow_under_another_host(sandbox, airflow_home, tmp_path):
    printed = _revsync("connections", str(sandbox.world_dir), "--host", "sandbox", "--format", "airflow-json")
    assert printed.returncode == 0, printed.stderr
    connections = json.loads(printed.stdout)
    assert {"stripe_default", "netsuite_default", "zendesk_default"} <= connections.keys()
    port = sandbox.base_url("netsuite").rsplit(":", 1)[1]
    assert connections["netsuite_default"]["host"] == f"http://sandbox:{port}"
    (tmp_path / "connections.json").write_text(printed.stdout)
    home = airflow_home(tmp_path / "airflow")
    env = airflow_env(home)
    done = subprocess.run(
        [AIRFLOW, "connections", "import", str(tmp_path / "connections.json")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    shown = subprocess.run(
        [AIRFLOW, "connections", "get", "netsuite_default", "-o", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert f"http://sandbox:{port}" in shown.stdout
