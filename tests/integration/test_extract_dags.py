"""The extract DAGs in a real Airflow 3 (SQLite metadata under a temporary AIRFLOW_HOME): full loads via
`airflow dags test` against a private sandbox, incremental reruns after `advance`, Assets emitted only
by successful runs."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import time
from pathlib import Path

import duckdb
import pytest
from conftest import AIRFLOW, airflow_env

from revsync.orchestration.connections import sandbox_environment
from sandbox.world.streams import tables_of

pytestmark = pytest.mark.integration

SOURCES = ("stripe", "hubspot", "zendesk", "netsuite")
WORLD_TABLES = {source: tables_of(source) for source in SOURCES}


class Airflow:
    def __init__(self, home: Path, env: dict[str, str]):
        self.home, self.env = home, env
        self.output: list[str] = []  # every command's stdout and stderr: `dags test` logs the tasks there

    def run(self, *args: str, check: bool = True, timeout: int = 600) -> subprocess.CompletedProcess:
        done = subprocess.run(
            [AIRFLOW, *args], env=self.env, cwd=self.home, capture_output=True, text=True, timeout=timeout
        )
        self.output.append(done.stdout + done.stderr)
        if check and done.returncode != 0:
            raise AssertionError(
                f"airflow {' '.join(args)} failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
            )
        return done

    def asset_events(self, source: str) -> int:
        with sqlite3.connect(self.home / "airflow.db") as db:
            return db.execute(
                "select count(*) from asset_event e join asset a on a.id = e.asset_id where a.uri = ?",
                (f"revsync://raw/{source}",),
            ).fetchone()[0]


@pytest.fixture(scope="module")
def dag_sandbox(copy_small_world, tmp_path_factory, start_sandbox_factory):
    with start_sandbox_factory(copy_small_world(tmp_path_factory.mktemp("dag_world"))) as server:
        yield server


@pytest.fixture(scope="module")
def airflow(dag_sandbox, airflow_home, tmp_path_factory):
    home = airflow_home(tmp_path_factory.mktemp("airflow_home"))  # the session's migrated database
    env = {
        **airflow_env(home),
        "REVSYNC_WAREHOUSE": str(home / "warehouse.duckdb"),
        "REVSYNC_TASK_RETRIES": "0",
        **sandbox_environment(dag_sandbox.endpoints),
    }
    env.pop("AIRFLOW_CONN_CHARGEBEE_DEFAULT", None)
    env.pop("AIRFLOW_CONN_FRESHDESK_DEFAULT", None)
    af = Airflow(home, env)
    af.run("dags", "reserialize")
    return af


def _landed(af: Airflow, source: str, batch: str | None = None) -> dict[str, int]:
    con = duckdb.connect(af.env["REVSYNC_WAREHOUSE"], read_only=True)
    try:
        out = {}
        for stream in WORLD_TABLES[source]:
            where = "" if batch is None else f" where _batch_id = '{batch}'"
            out[stream] = con.execute(f'select count(*) from raw_{source}."{stream}"{where}').fetchone()[0]
        return out
    finally:
        con.close()


def _distinct(af: Airflow, source: str) -> dict[str, tuple[int, int]]:
    con = duckdb.connect(af.env["REVSYNC_WAREHOUSE"], read_only=True)
    try:
        return {
            stream: con.execute(
                "select count(distinct _pk), count(distinct (_pk, _record_hash))"
                f' from raw_{source}."{stream}"'
            ).fetchone()
            for stream in WORLD_TABLES[source]
        }
    finally:
        con.close()


def _last_run_id(af: Airflow, dag_id: str) -> str:
    with sqlite3.connect(af.home / "airflow.db") as db:
        return db.execute(
            "select run_id from dag_run where dag_id = ? order by id desc limit 1", (dag_id,)
        ).fetchone()[0]


@pytest.fixture(scope="module")
def full_loads(airflow, dag_sandbox) -> dict[str, dict[str, int]]:
    """One `airflow dags test` of every extract DAG on the fresh world; source -> rows per stream."""
    landed = {}
    for source in SOURCES:
        airflow.run("dags", "test", f"extract_{source}")
        landed[source] = _landed(airflow, source)
    return landed


def test_each_dag_full_loads_what_the_sandbox_serves_and_emits_its_asset(full_loads, airflow, dag_sandbox):
    counts = dag_sandbox.admin("counts")
    for source in SOURCES:
        expected = {stream: counts[table] for stream, table in WORLD_TABLES[source].items()}
        assert full_loads[source] == expected, source
        assert airflow.asset_events(source) == 1, source


def test_after_advance_a_run_lands_the_changes_and_the_next_one_nothing(full_loads, airflow, dag_sandbox):
    step_started = int(time.time())
    dag_sandbox.admin("advance", method="POST", minutes=60, events=60)
    changed = dag_sandbox.admin("counts", changed_since=step_started)
    for source in SOURCES:
        before = _landed(airflow, source)
        airflow.run("dags", "test", f"extract_{source}")
        second = _landed(airflow, source, _last_run_id(airflow, f"extract_{source}"))
        assert second == {s: changed[t] for s, t in WORLD_TABLES[source].items()}, source
        airflow.run("dags", "test", f"extract_{source}")
        third = _landed(airflow, source, _last_run_id(airflow, f"extract_{source}"))
        assert third == dict.fromkeys(WORLD_TABLES[source], 0), source
        after = _landed(airflow, source)
        assert {s: after[s] - before[s] for s in after} == second
        # every landed row is a distinct version: nothing was landed twice
        assert all(keys_versions[1] == after[s] for s, keys_versions in _distinct(airflow, source).items())
        assert airflow.asset_events(source) == 3, source


def test_a_run_with_a_failed_stream_emits_no_asset(full_loads, airflow):
    env = dict(airflow.env)
    broken = json.loads(env["AIRFLOW_CONN_HUBSPOT_DEFAULT"])
    broken["password"] = "pat-na1-wrong-token"
    env["AIRFLOW_CONN_HUBSPOT_DEFAULT"] = json.dumps(broken)
    events_before = airflow.asset_events("hubspot")
    done = Airflow(airflow.home, env).run("dags", "test", "extract_hubspot", check=False)
    with sqlite3.connect(airflow.home / "airflow.db") as db:
        state = db.execute(
            "select state from dag_run where dag_id = 'extract_hubspot' order by id desc limit 1"
        ).fetchone()[0]
        failed = db.execute(
            "select count(*) from task_instance where dag_id = 'extract_hubspot' and run_id = ?"
            " and state = 'failed'",
            (_last_run_id(airflow, "extract_hubspot"),),
        ).fetchone()[0]
    assert state == "failed" and failed == 3, done.stdout[-2000:]
    assert airflow.asset_events("hubspot") == events_before
    assert "pat-na1-wrong-token" not in done.stdout + done.stderr  # Airflow masks connection secrets


def test_no_secret_in_task_logs_xcom_or_warehouse(full_loads, airflow, dag_sandbox):
    secrets = [
        value
        for vendor in SOURCES
        for key, value in dag_sandbox.creds(vendor).items()
        if key not in ("email", "account", "subdomain", "site", "domain") and len(value) >= 8
    ]
    assert len(secrets) >= 6
    logs = "\n".join(airflow.output)
    assert "stripe.invoices: fetched" in logs  # the task logs are there to search
    with sqlite3.connect(airflow.home / "airflow.db") as db:
        xcoms = "\n".join(str(v) for (v,) in db.execute("select value from xcom").fetchall())
    assert "landed" in xcoms
    con = duckdb.connect(airflow.env["REVSYNC_WAREHOUSE"], read_only=True)
    try:
        tables = con.execute(
            "select table_schema, table_name from information_schema.tables where table_type = 'BASE TABLE'"
        ).fetchall()
        warehouse = "\n".join(
            str(con.execute(f'select string_agg(t::varchar, \'\n\') from "{s}"."{t}" t').fetchone()[0])
            for s, t in tables
        )
    finally:
        con.close()
    for secret in secrets:
        assert secret not in logs and secret not in xcoms and secret not in warehouse


def test_a_cleared_run_rerun_for_its_logical_date_lands_no_row_twice(full_loads, airflow):
    """The UI's "clear DAG run" on a finished extract, then the run again: the stream tasks read their
    window again and land only versions the warehouse does not hold."""
    source, dag_id = "stripe", "extract_stripe"
    run_id = _last_run_id(airflow, dag_id)
    with sqlite3.connect(airflow.home / "airflow.db") as db:
        (logical_date,) = db.execute(
            "select logical_date from dag_run where run_id = ?", (run_id,)
        ).fetchone()
    before, events = _landed(airflow, source), airflow.asset_events(source)
    airflow.run("tasks", "clear", dag_id, "--yes")
    airflow.run("dags", "test", dag_id, str(logical_date).replace(" ", "T"))
    with sqlite3.connect(airflow.home / "airflow.db") as db:
        states = dict(
            db.execute(
                "select task_id, state from task_instance where dag_id = ? and run_id = ?",
                (dag_id, _last_run_id(airflow, dag_id)),
            ).fetchall()
        )
    assert set(states.values()) == {"success"}, states
    after = _landed(airflow, source)
    assert all(after[s] >= before[s] for s in after)
    # whatever the rerun landed, every row is a distinct version: nothing was landed twice
    assert all(versions == after[s] for s, (_, versions) in _distinct(airflow, source).items())
    assert airflow.asset_events(source) == events + 1
