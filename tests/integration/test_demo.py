"""`make demo` as a user runs it: `revsync demo` on a generated small world (seed 7) in a real Airflow 3
(api-server, scheduler, dag-processor, triggerer; LocalExecutor; SQLite), two rounds of extract ->
reconcile -> gate -> push driven by Assets. The figures come from the demo's --json output, the
warehouse it leaves and `revsync status`; nothing is left running afterwards."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1500)]

CORE_SOURCES = {"stripe", "hubspot", "zendesk", "netsuite"}
REVSYNC = str(Path(sys.executable).with_name("revsync"))


def test_the_demo_prints_its_summary_and_writes_the_report(embedded_demo):
    out = embedded_demo.output
    for heading in ("revsync demo: summary", "rows extracted", "before push", "writes acknowledged"):
        assert heading in out
    assert "dead letters: 0" in out and "exceptions for a person" in out
    report = embedded_demo.folder / "build" / "report" / "index.html"
    assert report.exists() and f"report: {report}" in out
    first = embedded_demo.result["rounds"][0]
    assert set(first["extracted"]) == CORE_SOURCES
    assert all(counts["landed"] > 0 and counts["quarantined"] == 0 for counts in first["extracted"].values())
    # the progress lines name the DAG runs Assets started, not just the triggered extracts
    for dag_id in ("extract_stripe", "reconcile", "push_erp", "push_entitlements"):
        assert f"] {dag_id}" in out and "success" in out


def test_the_first_push_fixes_what_it_may_and_the_second_writes_nothing(embedded_demo):
    first, second = embedded_demo.result["rounds"]
    assert first["pushed"]["push_erp"]["acknowledged"] > 0
    assert first["pushed"]["push_entitlements"]["acknowledged"] > 0
    assert all(p["dead_lettered"] == 0 for p in first["pushed"].values())
    assert all(p["requests"] == 0 for p in second["pushed"].values()), second["pushed"]
    before, after = first["mismatches"], second["mismatches"]
    assert sum(after.values()) < sum(before.values())
    assert all(after[kind] <= before.get(kind, 0) for kind in after)
    # what remains is waiting for a person: every open mismatch is in sync.exceptions
    assert sum(after.values()) == second["exceptions"] > 0
    assert "customer_missing_in_erp" in before and "customer_missing_in_erp" not in after


def test_revsync_status_reads_the_demo_airflow_and_warehouse(embedded_demo):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "REVSYNC"))}
    done = subprocess.run(
        [REVSYNC, "status", "--json"],
        env={**env, "REVSYNC_HOME": str(embedded_demo.home)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    status = json.loads(done.stdout)
    runs = {run["dag_id"]: run for run in status["dag_runs"]}
    for dag_id in ("extract_stripe", "extract_netsuite", "reconcile", "push_erp", "push_entitlements"):
        assert runs[dag_id]["state"] == "success", runs.get(dag_id)
    assert runs["reconcile"]["run_type"] == "asset_triggered"
    assert sum(status["mismatches"].values()) == embedded_demo.result["rounds"][-1]["exceptions"]


def test_nothing_the_demo_started_is_left_running(embedded_demo):
    with socket.socket() as probe:  # the api-server's port is free again (as a server binds it)
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", embedded_demo.port))
        probe.listen()
    assert not (embedded_demo.home / "world" / "endpoints.json").exists()  # the sandbox shut down
    home = str(embedded_demo.home)
    left = []
    for process in psutil.process_iter():
        try:  # Airflow's components run in the home's airflow/ folder; the sandbox names its world
            if process.cwd().startswith(home) or home in " ".join(process.cmdline()):
                left.append(process.cmdline())
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    assert left == []
