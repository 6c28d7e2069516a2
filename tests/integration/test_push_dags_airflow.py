"""The push DAGs in a real Airflow 3 (SQLite metadata under a temporary AIRFLOW_HOME) against a real
sandbox, on copies of the gated small world.

- `push_erp` while NetSuite is in a maintenance window: `wait_for_netsuite` defers to its trigger
  (run inline by `airflow dags test`, as the triggerer would) until the window ends, then `push`
  delivers every validated change once and emits `revsync://pushed/netsuite`.
- The push task killed (SIGKILL) mid-batch, the task cleared as from the UI, and the DAG run again for
  the same logical date: every change delivered, none twice.
- `replay_dead_letters` refuses financial dead letters without `approved_by`, and with it replays and
  delivers them.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import duckdb
import pytest
from conftest import AIRFLOW, airflow_env
from cycle import duplicates, gated_copy, outbox_states, private_copy, query, successful, writes

from revsync.orchestration.connections import sandbox_environment

REVSYNC = str(Path(sys.executable).with_name("revsync"))

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]
LOGICAL_DATE = "2026-12-01T00:00:00+00:00"


@pytest.fixture(scope="module")
def gated(small_built, tmp_path_factory) -> Path:
    return gated_copy(small_built.warehouse, tmp_path_factory.mktemp("push_dags_gated"))


@pytest.fixture(scope="module")
def home(tmp_path_factory, request) -> Path:
    folder = tmp_path_factory.mktemp("push_airflow")
    return request.getfixturevalue("airflow_home")(folder)


class _Webhook(BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        type(self).received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def webhook():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Webhook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Webhook.received = []
    yield f"http://127.0.0.1:{server.server_address[1]}/alerts", _Webhook.received
    server.shutdown()


class Run:
    """One test's Airflow environment: the shared home, a private warehouse and sandbox, the alert hook."""

    def __init__(self, home: Path, warehouse: Path, sandbox, alerts_url: str):  # noqa: ANN001
        self.home, self.warehouse, self.sandbox = home, warehouse, sandbox
        self.env = {
            **airflow_env(home),
            **sandbox_environment(sandbox.endpoints),
            "AIRFLOW_CONN_REVSYNC_ALERTS": json.dumps({"conn_type": "http", "host": alerts_url}),
            "REVSYNC_HOME": str(warehouse.parent / "revsync"),
            "REVSYNC_WAREHOUSE": str(warehouse),
            "REVSYNC_TASK_RETRIES": "0",
            "PYTHONUNBUFFERED": "1",
        }

    def airflow(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run(
            [AIRFLOW, *args], env=self.env, cwd=self.home, capture_output=True, text=True, timeout=600
        )
        assert not check or done.returncode == 0, (done.stdout[-4000:], done.stderr[-4000:])
        return done

    def states(self, dag_id: str) -> dict[str, str]:
        with sqlite3.connect(self.home / "airflow.db") as db:
            run_id = db.execute(
                "select run_id from dag_run where dag_id = ? order by id desc limit 1", (dag_id,)
            ).fetchone()[0]
            rows = db.execute(
                "select task_id, state from task_instance where dag_id = ? and run_id = ?", (dag_id, run_id)
            ).fetchall()
        return dict(rows)

    def asset_events(self, uri: str) -> list[dict]:
        with sqlite3.connect(self.home / "airflow.db") as db:
            rows = db.execute(
                "select e.extra from asset_event e join asset a on a.id = e.asset_id where a.uri = ?", (uri,)
            ).fetchall()
        return [json.loads(extra) if isinstance(extra, str) else extra for (extra,) in rows]


@pytest.fixture
def run(gated, home, small_landed, start_sandbox_factory, webhook, tmp_path):
    warehouse, world = private_copy(gated, small_landed.world, tmp_path)
    with start_sandbox_factory(world) as sandbox:
        yield Run(home, warehouse, sandbox, webhook[0])


def _wanted(warehouse: Path) -> int:
    return query(warehouse, "select count(*) from validated.erp_changes")[0][0]


def test_push_erp_waits_out_a_maintenance_window_deferred_then_delivers_once(run, tmp_path):
    wanted = _wanted(run.warehouse)
    run.airflow("dags", "reserialize")
    # The window stays open until the sensor has deferred, however long `dags test` takes to start on
    # a loaded machine; then it stays open a few seconds more and closes (seconds=0 ends it).
    run.sandbox.admin("maintenance", method="POST", vendor="netsuite", seconds=600)
    output_file = tmp_path / "dags_test.log"
    with output_file.open("w") as sink:
        test_run = subprocess.Popen(
            [AIRFLOW, "dags", "test", "push_erp", LOGICAL_DATE],
            env=run.env,
            cwd=run.home,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 300
        while "deferring until it is back" not in output_file.read_text():
            assert test_run.poll() is None, output_file.read_text()[-4000:]
            assert time.monotonic() < deadline, "the sensor never deferred"
            time.sleep(0.2)
        deferred_at = time.monotonic()
        time.sleep(5)
        assert test_run.poll() is None  # still waiting: the window is open
        run.sandbox.admin("maintenance", method="POST", vendor="netsuite", seconds=0)
        assert test_run.wait(timeout=600) == 0, output_file.read_text()[-4000:]
    output = output_file.read_text()
    assert "running trigger in line" in output
    assert time.monotonic() - deferred_at >= 5  # it waited for the window instead of failing
    assert run.states("push_erp") == {"wait_for_netsuite": "success", "push": "success"}
    assert outbox_states(run.warehouse) == {("netsuite", "acknowledged"): wanted}
    log = writes(run.sandbox)
    assert len(successful(log)) == wanted and not duplicates(log)
    (event,) = run.asset_events("revsync://pushed/netsuite")
    assert event["acknowledged"] == wanted and event["dead_lettered"] == 0


def test_a_push_task_killed_mid_batch_then_cleared_and_rerun_delivers_everything_once(run):
    wanted = _wanted(run.warehouse)
    run.airflow("dags", "reserialize")
    killed = subprocess.Popen(
        [AIRFLOW, "dags", "test", "push_erp", LOGICAL_DATE],
        env=run.env,
        cwd=run.home,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 300
    while len(successful(writes(run.sandbox))) < wanted // 3:
        assert killed.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    os.killpg(killed.pid, signal.SIGKILL)
    killed.wait(timeout=30)
    assert outbox_states(run.warehouse).get(("netsuite", "sent"), 0) > 0  # killed with writes in flight

    # the UI's "clear" on the push task, then the run again for the same logical date
    run.airflow("tasks", "clear", "push_erp", "--task-regex", "^push$", "--yes")
    run.airflow("dags", "test", "push_erp", LOGICAL_DATE)
    assert run.states("push_erp")["push"] == "success"
    assert outbox_states(run.warehouse) == {("netsuite", "acknowledged"): wanted}
    log = writes(run.sandbox)
    assert not duplicates(log) and len(successful(log)) == wanted
    checked = query(
        run.warehouse,
        "select count(*) from revsync_state.audit_log where outcome = 'acknowledged' "
        "and json_extract_string(detail, '$.checked') = 'true'",
    )[0][0]
    assert checked > 0  # writes left in doubt were found applied, not sent again

    # `revsync status` reads the same story back from the warehouse and Airflow's metadata
    shown = subprocess.run(
        [
            REVSYNC,
            "status",
            "--json",
            "--warehouse",
            str(run.warehouse),
            "--airflow-db",
            f"sqlite:///{run.home / 'airflow.db'}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shown.returncode == 0, shown.stderr[-2000:]
    status = json.loads(shown.stdout)
    assert {r["dag_id"]: r["state"] for r in status["dag_runs"]}["push_erp"] == "success"
    assert status["outbox"] == {"netsuite": {"acknowledged": wanted}} and status["dead_letters"] == []
    assert {stage: g["verdict"] for stage, g in status["gate"].items()} == dict.fromkeys(
        ("canonical", "staging", "sync"), "passed"
    )


def test_replay_dead_letters_needs_an_approver_for_financial_writes(run, change_queries, webhook):
    invoice_key, _ = query(run.warehouse, change_queries["dependent_invoice"].replace("sync.", "validated."))[
        0
    ]
    con = duckdb.connect(str(run.warehouse))
    con.execute(
        "update validated.erp_changes set payload = cast(json_merge_patch(cast(payload as varchar), "
        """'{"currency": {"id": "999"}}') as json) where idempotency_key = ?""",
        [invoice_key],
    )
    con.close()
    run.airflow("dags", "reserialize")
    run.airflow("dags", "test", "push_erp", LOGICAL_DATE)
    ((state, error),) = query(
        run.warehouse,
        "select state, last_error from revsync_state.outbox where idempotency_key = ?",
        [invoice_key],
    )
    assert state == "dead_lettered" and "currency" in error

    conf = json.dumps({"idempotency_keys": [invoice_key]})
    refused = run.airflow("dags", "test", "replay_dead_letters", "-c", conf, check=False)
    assert run.states("replay_dead_letters")["replay"] == "failed"
    assert "approved_by" in refused.stdout + refused.stderr
    # the failure alert reached the webhook of the `revsync_alerts` connection, with the business context
    alerts = [a for a in webhook[1] if a["dag_id"] == "replay_dead_letters"]
    assert alerts and alerts[0]["task_id"] == "replay" and "invoice" in alerts[0]["error"]
    assert "approved_by" in alerts[0]["error"]
    assert query(
        run.warehouse, "select state from revsync_state.outbox where idempotency_key = ?", [invoice_key]
    ) == [("dead_lettered",)]

    approved = json.dumps({"idempotency_keys": [invoice_key], "approved_by": "controller@example.com"})
    run.airflow("dags", "test", "replay_dead_letters", "-c", approved)
    assert run.states("replay_dead_letters")["replay"] == "success"
    audit = query(
        run.warehouse,
        "select outcome, actor from revsync_state.audit_log where idempotency_key = ? order by logged_at",
        [invoice_key],
    )
    # replayed with the approver's name; the ERP refuses the same bad currency again
    assert audit[:3] == [
        ("dead_lettered", "revsync"),
        ("replayed", "controller@example.com"),
        ("dead_lettered", "revsync"),
    ]
