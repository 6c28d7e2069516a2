"""The extract DAGs in a real Airflow 3 (SQLite metadata under a temporary AIRFLOW_HOME): full loads via
`airflow dags test` against a private sandbox, incremental reruns after `advance`, Assets emitted only
by successful runs."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from revsync.orchestration.connections import sandbox_environment

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
AIRFLOW = str(Path(sys.executable).with_name("airflow"))
SOURCES = ("stripe", "hubspot", "zendesk", "netsuite")
WORLD_TABLES = {
    "stripe": {
        "customers": "stripe_customers",
        "subscriptions": "stripe_subscriptions",
        "invoices": "stripe_invoices",
        "charges": "stripe_charges",
        "credit_notes": "stripe_credit_notes",
        "products": "stripe_products",
        "prices": "stripe_prices",
    },
    "hubspot": {"companies": "hubspot_companies", "contacts": "hubspot_contacts", "deals": "hubspot_deals"},
    "zendesk": {
        "organizations": "zendesk_organizations",
        "users": "zendesk_users",
        "tickets": "zendesk_tickets",
    },
    "netsuite": {
        "customer": "netsuite_customers",
        "salesOrder": "netsuite_sales_orders",
        "invoice": "netsuite_invoices",
        "customerPayment": "netsuite_customer_payments",
        "creditMemo": "netsuite_credit_memos",
    },
}


class Airflow:
    def __init__(self, home: Path, env: dict[str, str]):
        self.home, self.env = home, env

    def run(self, *args: str, check: bool = True, timeout: int = 600) -> subprocess.CompletedProcess:
        done = subprocess.run(
            [AIRFLOW, *args], env=self.env, cwd=self.home, capture_output=True, text=True, timeout=timeout
        )
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
def dag_sandbox(small_world, tmp_path_factory, start_sandbox_factory):
    world = tmp_path_factory.mktemp("dag_world")
    for name in ("world.duckdb", "ground_truth.jsonl"):
        shutil.copy(small_world / name, world / name)
    with start_sandbox_factory(world) as server:
        yield server


@pytest.fixture(scope="module")
def airflow(dag_sandbox, tmp_path_factory):
    home = tmp_path_factory.mktemp("airflow_home")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "REVSYNC"))},
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "REVSYNC_WAREHOUSE": str(home / "warehouse.duckdb"),
        "REVSYNC_TASK_RETRIES": "0",
        **sandbox_environment(dag_sandbox.endpoints),
    }
    env.pop("AIRFLOW_CONN_CHARGEBEE_DEFAULT", None)
    env.pop("AIRFLOW_CONN_FRESHDESK_DEFAULT", None)
    af = Airflow(home, env)
    af.run("db", "migrate")
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
