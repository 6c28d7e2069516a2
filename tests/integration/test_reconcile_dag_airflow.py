"""The reconcile DAG in a real Airflow 3 (SQLite metadata under a temporary AIRFLOW_HOME) on a copy of the
small landed warehouse: `airflow dags test reconcile` builds every model of the real manifest with its
tests, and the quality gate's three stages pass and publish the validated change-set Assets; a poisoned
raw row fails its source's staging task only, and after the fix that task reruns alone; a dbt task
waits for the warehouse lock another writer holds, then proceeds; a change row the gate quarantines is
held out of the published set, and a blocking defect fails its gate task and publishes nothing."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
from conftest import AIRFLOW, airflow_env

from revsync.orchestration.reconcile import plan
from revsync.warehouse.connect import open_warehouse

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

RECONCILED = "revsync://warehouse/reconciled"
VALIDATED = ("revsync://validated/erp_changes", "revsync://validated/entitlement_changes")
GATES = ("gate_staging", "gate_canonical", "gate_sync", "publish_changes")
POISON_ID = "in_poisoned_currency"


class Airflow:
    def __init__(self, home: Path, env: dict[str, str], warehouse: Path, as_of: str):
        self.home, self.env, self.warehouse, self.as_of = home, env, warehouse, as_of

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run(
            [AIRFLOW, *args], env=self.env, cwd=self.home, capture_output=True, text=True, timeout=900
        )
        if check and done.returncode != 0:
            errors = [line for line in done.stdout.splitlines() if "Error" in line or "[error" in line]
            raise AssertionError(f"airflow {' '.join(args)} failed:\n" + "\n".join(errors)[-8000:])
        return done

    def dags_test(self, check: bool = True, *flags: str) -> tuple[str, subprocess.CompletedProcess]:
        conf = json.dumps({"as_of": self.as_of})
        done = self.run("dags", "test", "reconcile", "-c", conf, *flags, check=check)
        return self.query("select run_id from dag_run where dag_id = 'reconcile' order by id desc")[0][
            0
        ], done

    def query(self, sql: str, *args) -> list[tuple]:
        with sqlite3.connect(self.home / "airflow.db") as db:
            return db.execute(sql, args).fetchall()

    def task_states(self, run_id: str) -> dict[str, tuple]:
        rows = self.query(
            "select task_id, state, try_number, start_date, end_date from task_instance"
            " where dag_id = 'reconcile' and run_id = ?",
            run_id,
        )
        return {task_id: rest for task_id, *rest in rows}

    def manifest(self) -> dict:
        return json.loads((Path(self.env["REVSYNC_HOME"]) / "dbt" / "manifest.json").read_text())


@pytest.fixture(scope="module")
def airflow(copy_landed, tmp_path_factory, request) -> Airflow:
    home = tmp_path_factory.mktemp("reconcile_airflow")
    landed = copy_landed(home / "warehouse")
    env = {
        **airflow_env(home),
        "REVSYNC_HOME": str(home / "revsync"),
        "REVSYNC_WAREHOUSE": str(landed.warehouse),
        "REVSYNC_TASK_RETRIES": "0",
        "REVSYNC_QUALITY_DOCS": str(home / "quality"),
        "PYTHONUNBUFFERED": "1",
    }
    # the manifest the DAG file reads (`make manifest`), made while Airflow migrates its database (the
    # session's one migration, when no earlier module needed it) and it is copied here
    parse = subprocess.Popen(
        [sys.executable, "-m", "revsync.orchestration.reconcile", "manifest"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    request.getfixturevalue("airflow_home")(home)
    af = Airflow(home, env, landed.warehouse, landed.as_of_var)
    out, _ = parse.communicate(timeout=600)
    assert parse.returncode == 0, out[-3000:]
    return af


@pytest.fixture(scope="module")
def first_run(airflow) -> tuple[str, str]:
    started = time.monotonic()
    run_id, done = airflow.dags_test()
    print(f"dags test reconcile: {time.monotonic() - started:.0f}s")
    return run_id, done.stdout + done.stderr


def _relations(warehouse: Path) -> set[tuple[str, str]]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return set(con.execute("select table_schema, table_name from information_schema.tables").fetchall())
    finally:
        con.close()


def test_every_task_succeeds_and_every_model_exists(airflow, first_run):
    run_id, output = first_run
    manifest = airflow.manifest()
    tasks = plan(manifest)
    states = airflow.task_states(run_id)
    assert {task_id: s[0] for task_id, s in states.items()} == dict.fromkeys(
        [t.task_id for t in tasks] + ["publish", *GATES], "success"
    ), output[-6000:]
    assert airflow.query("select state from dag_run where run_id = ?", run_id) == [("success",)]
    relations = _relations(airflow.warehouse)
    for task in tasks:
        for uid in task.nodes:
            node = manifest["nodes"][uid]
            assert (node["schema"], node["alias"]) in relations, uid
    assert {"canonical", "reconciliation", "sync"} <= {schema for schema, _ in relations}
    # one dbt invocation per task, each under the warehouse lock, with the run's as_of
    assert output.count("holding the warehouse lock") == len(tasks)
    assert f'"as_of": "{airflow.as_of}"' in output
    # every model and test passed in its task (their summaries are the tasks' XComs)
    totals = json.loads(
        airflow.query("select value from xcom where run_id = ? and task_id = 'publish'", run_id)[0][0]
    )
    assert totals["built"] == sum(len(t.nodes) for t in tasks) and totals["tests"] >= sum(
        t.tests for t in tasks
    )
    (extra,) = airflow.query(
        "select e.extra from asset_event e join asset a on a.id = e.asset_id where a.uri = ?", RECONCILED
    )
    assert json.loads(extra[0])["as_of"] == airflow.as_of
    con = duckdb.connect(str(airflow.warehouse), read_only=True)
    try:
        assert con.execute("select count(*) from reconciliation.mismatches").fetchone()[0] > 0
        published = {
            t: con.execute(f"select count(*), min(gate_run_id) from validated.{t}").fetchall()[0]
            for t in ("erp_changes", "entitlement_changes")
        }
        stages = con.execute(
            "select stage, bool_and(success) from revsync_state.quality_results group by 1 order by 1"
        ).fetchall()
    finally:
        con.close()
    # the gate passed every stage and the validated change sets were emitted with what they hold
    assert stages == [("canonical", True), ("staging", True), ("sync", True)]
    gate = json.loads(
        airflow.query("select value from xcom where run_id = ? and task_id = 'gate_sync'", run_id)[0][0]
    )
    assert gate["passed"] and gate["gate_run_id"].startswith(f"{run_id}/sync/")
    for uri, table in zip(VALIDATED, ("erp_changes", "entitlement_changes"), strict=True):
        (event,) = _events(airflow, uri)
        rows, gate_run = published[table]
        assert event == {
            "gate_run_id": gate_run,
            "table": f"validated.{table}",
            "rows": rows,
            "quarantined": 0,
        }
        assert rows > 0
    assert (Path(airflow.env["REVSYNC_QUALITY_DOCS"]) / "sync" / "index.html").exists()


def _events(airflow: Airflow, uri: str) -> list[dict]:
    rows = airflow.query(
        "select e.extra from asset_event e join asset a on a.id = e.asset_id where a.uri = ? order by e.id",
        uri,
    )
    return [json.loads(extra) for (extra,) in rows]


def test_a_dbt_task_waits_for_the_warehouse_lock_then_proceeds(airflow, first_run, tmp_path):
    run_id, _ = first_run
    release = tmp_path / "release"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time, pathlib\n"
            "from revsync.warehouse.connect import open_warehouse\n"
            "with open_warehouse(sys.argv[1]) as con:\n"
            "    con.execute('create or replace table main.lock_probe as select 42 as written')\n"
            "    print('locked', flush=True)\n"
            "    while not pathlib.Path(sys.argv[2]).exists():\n"
            "        time.sleep(0.1)\n",
            str(airflow.warehouse),
            str(release),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "locked"
    log_path = tmp_path / "task.log"
    with log_path.open("w") as log:
        task = subprocess.Popen(
            [AIRFLOW, "tasks", "test", "reconcile", "staging_zendesk", run_id],
            env=airflow.env,
            cwd=airflow.home,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 300
        while "waiting for the warehouse lock" not in log_path.read_text():
            assert task.poll() is None, log_path.read_text()[-4000:]  # it waits: it does not fail
            assert time.monotonic() < deadline
            time.sleep(0.2)
        time.sleep(3)
        assert task.poll() is None  # still waiting while the lock is held
        release.touch()
        assert holder.wait(timeout=60) == 0
        assert task.wait(timeout=600) == 0, log_path.read_text()[-4000:]
    output = log_path.read_text()
    waited = float(re.search(r"holding the warehouse lock on \S+ \(waited ([\d.]+)s\)", output).group(1))
    assert waited >= 3, output[-3000:]
    assert airflow.task_states(run_id)["staging_zendesk"][0] == "success"
    con = duckdb.connect(str(airflow.warehouse), read_only=True)
    try:  # both writers' work is there, intact
        assert con.execute("select written from main.lock_probe").fetchall() == [(42,)]
        assert con.execute("select count(*) from staging.stg_zendesk__tickets").fetchone()[0] > 0
    finally:
        con.close()


def test_a_failed_task_reruns_alone_after_the_fix(airflow, first_run):
    with open_warehouse(airflow.warehouse) as con:  # an invoice in a currency the company does not bill in
        con.execute(
            "insert into raw_stripe.invoices select json_merge_patch(record, ?)::json, ?, _loaded_at,"
            " 'poison', _source_url, _cursor_value, 'poison' from raw_stripe.invoices limit 1",
            [json.dumps({"id": POISON_ID, "currency": "xxx"}), POISON_ID],
        )
    run_id, done = airflow.dags_test(check=False)
    states = airflow.task_states(run_id)
    tasks = {t.task_id: t for t in plan(airflow.manifest())}
    downstream = {"staging_stripe"}
    for task_id, task in tasks.items():  # upstream first
        if task.upstream & downstream:
            downstream.add(task_id)
    expected = {task_id: "success" for task_id in tasks} | dict.fromkeys(downstream, "upstream_failed")
    expected |= {"staging_stripe": "failed", "publish": "upstream_failed"}
    expected |= dict.fromkeys(GATES, "upstream_failed")
    assert {task_id: s[0] for task_id, s in states.items()} == expected, done.stdout[-6000:]
    assert len(downstream) > 3 and "staging_hubspot" not in downstream
    assert "accepted_values_stg_stripe__invoices_currency" in done.stdout + done.stderr
    assert len(airflow.query("select id from asset_event where extra like ?", f"%{airflow.as_of}%")) == 1

    with open_warehouse(airflow.warehouse) as con:  # the fix
        con.execute("delete from raw_stripe.invoices where _pk = ?", [POISON_ID])
    rerun = airflow.run("tasks", "test", "reconcile", "staging_stripe", run_id)
    after = airflow.task_states(run_id)
    assert after["staging_stripe"][0] == "success"
    assert after["staging_stripe"][2:] != states["staging_stripe"][2:]  # it ran again
    assert {k: v for k, v in after.items() if k != "staging_stripe"} == {
        k: v for k, v in states.items() if k != "staging_stripe"
    }  # nothing else ran: same states, tries and times
    log = rerun.stdout + rerun.stderr
    assert log.count("holding the warehouse lock") == 1 and "--select stg_stripe__" in log
    assert "stg_hubspot__" not in log and "int_customer_identity" not in log


# the gate's stages alone: every dbt task (and `publish`) is marked successful without running
GATE_ONLY = ("--mark-success-pattern", r"(?!gate_|publish_changes$).*")


def test_a_quarantined_change_is_held_out_of_what_the_dag_publishes(airflow, first_run, change_queries):
    with open_warehouse(airflow.warehouse) as con:
        invoice, payment = con.execute(change_queries["dependent_invoice"]).fetchall()[0]
        con.execute("update sync.erp_changes set currency = 'xzz' where idempotency_key = ?", [invoice])
        total = con.execute("select count(*) from sync.erp_changes").fetchone()[0]
    events_before = len(_events(airflow, VALIDATED[0]))
    try:
        run_id, done = airflow.dags_test(True, *GATE_ONLY)
        states = {t: s[0] for t, s in airflow.task_states(run_id).items()}
        assert all(states[t] == "success" for t in GATES), states
        assert "holding the warehouse lock" not in done.stdout  # no dbt task ran
        event = _events(airflow, VALIDATED[0])[-1]
        assert len(_events(airflow, VALIDATED[0])) == events_before + 1
        assert (event["rows"], event["quarantined"]) == (total - 2, 2)
        con = duckdb.connect(str(airflow.warehouse), read_only=True)
        try:
            published = {
                k for (k,) in con.execute("select idempotency_key from validated.erp_changes").fetchall()
            }
            held = dict(
                con.execute(
                    "select idempotency_key, reasons from revsync_state.quarantined_changes "
                    "where status = 'quarantined'"
                ).fetchall()
            )
        finally:
            con.close()
        assert len(published) == total - 2 and not published & {invoice, payment}
        assert set(held) == {invoice, payment} and "currency" in held[invoice]
    finally:
        with open_warehouse(airflow.warehouse) as con:
            con.execute("update sync.erp_changes set currency = 'usd' where idempotency_key = ?", [invoice])


def test_a_blocking_defect_fails_its_gate_and_nothing_is_published(airflow, first_run):
    with open_warehouse(airflow.warehouse) as con:
        key = con.execute("select min(idempotency_key) from sync.entitlement_changes").fetchone()[0]
        con.execute(
            "insert into sync.entitlement_changes "
            "select * from sync.entitlement_changes where idempotency_key = ?",
            [key],
        )
    events_before = [len(_events(airflow, uri)) for uri in VALIDATED]
    try:
        run_id, done = airflow.dags_test(False, *GATE_ONLY)
        states = {t: s[0] for t, s in airflow.task_states(run_id).items()}
        assert [states[t] for t in GATES] == ["success", "success", "failed", "upstream_failed"], states
        assert [len(_events(airflow, uri)) for uri in VALIDATED] == events_before
        output = done.stdout + done.stderr
        assert "quality gate `sync`" in output and "blocked the push" in output
        unique = "sync__entitlement_changes: expect_column_values_to_be_unique on sync.entitlement_changes"
        assert f"{unique}.idempotency_key" in output
        assert key in output  # a sample failing row
        (tries,) = airflow.query(
            "select try_number from task_instance where run_id = ? and task_id = 'gate_sync'", run_id
        )[0]
        assert tries == 1  # a block is not retried
        con = duckdb.connect(str(airflow.warehouse), read_only=True)
        try:
            emptied = [
                con.execute(f"select count(*) from validated.{t}").fetchone()[0]
                for t in ("erp_changes", "entitlement_changes")
            ]
        finally:
            con.close()
        assert emptied == [0, 0]
    finally:
        with open_warehouse(airflow.warehouse) as con:
            con.execute(
                "delete from sync.entitlement_changes where rowid in (select max(rowid) from "
                "sync.entitlement_changes where idempotency_key = ?)",
                [key],
            )


def test_a_cleared_gate_task_reruns_to_the_same_verdict_and_the_same_published_set(airflow, first_run):
    """The UI's "clear" on a finished gate task, then the task again in its run (what a worker does):
    the same verdict, and the validated change sets are the first run's again, whatever happened since."""
    run_id = first_run[0]
    (first,) = airflow.query(
        "select value from xcom where run_id = ? and task_id = 'gate_sync' and key = 'return_value'", run_id
    )[0]
    first = json.loads(first)
    before = airflow.task_states(run_id)["gate_sync"]
    airflow.run("tasks", "clear", "reconcile", "--task-regex", "^gate_sync$", "--yes")
    airflow.run("tasks", "test", "reconcile", "gate_sync", run_id)
    after = airflow.task_states(run_id)["gate_sync"]
    assert after[0] == "success" and after[2:] != before[2:]  # it ran again: new start and end times
    con = duckdb.connect(str(airflow.warehouse), read_only=True)
    try:
        published = {
            f"sync.{t}": con.execute(f"select count(*) from validated.{t}").fetchone()[0]
            for t in ("erp_changes", "entitlement_changes")
        }
    finally:
        con.close()
    assert published == {t: n for t, n in first["validated_rows"].items() if t in published}
    assert sum(published.values()) > 0
