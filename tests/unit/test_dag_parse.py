"""Parsing the DAG folder: no import errors, under 2 s, and no database, network or warehouse access.

Parsing runs in a fresh interpreter whose socket, SQLite, DuckDB and SQLAlchemy connects raise, so an
I/O call at parse time fails the parse instead of passing unnoticed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from revsync.orchestration.extract import enabled_sources

ROOT = Path(__file__).resolve().parents[2]

PARSE = r"""
import json, socket, sqlite3, sys, time
import airflow.sdk  # the SDK itself, before the guards: DAG files import it
import duckdb, sqlalchemy.engine

opened = []
def refuse(name):
    def guard(*args, **kwargs):
        opened.append(name)
        raise RuntimeError(f"{name} at parse time")
    return guard
socket.socket.connect = refuse("socket.connect")
sqlite3.connect = refuse("sqlite3.connect")
duckdb.connect = refuse("duckdb.connect")
sqlalchemy.engine.Engine.connect = refuse("Engine.connect")

from airflow.dag_processing.dagbag import DagBag
started = time.perf_counter()
bag = DagBag(dag_folder=sys.argv[1], safe_mode=False)
seconds = time.perf_counter() - started
dags = {}
for dag_id, dag in bag.dags.items():
    dags[dag_id] = {
        "tasks": sorted(t.task_id for t in dag.tasks),
        "schedule": str(dag.schedule if hasattr(dag, "schedule") else dag.timetable),
        "catchup": dag.catchup,
        "tags": sorted(dag.tags),
        "params": sorted(dag.params.keys()),
        "retries": dag.default_args.get("retries"),
        "outlets": {t.task_id: [a.uri for a in t.outlets] for t in dag.tasks if t.outlets},
        "doc": bool(dag.doc_md),
    }
print(json.dumps({"errors": {k: str(v) for k, v in bag.import_errors.items()}, "seconds": seconds,
                  "opened": opened, "dags": dags}))
"""


def _parse(extra_env: dict[str, str] | None = None, folder: Path = ROOT / "dags") -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_CONN_", "REVSYNC_"))}
    env.update({"AIRFLOW__CORE__LOAD_EXAMPLES": "False", **(extra_env or {})})
    done = subprocess.run(
        [sys.executable, "-c", PARSE, str(folder)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_dag_folder_parses_fast_without_io(reconcile_home):
    parsed = _parse({"REVSYNC_HOME": str(reconcile_home)})
    assert parsed["errors"] == {}
    assert parsed["opened"] == []
    assert parsed["seconds"] < 2.0, parsed["seconds"]
    assert sorted(parsed["dags"]) == [
        "extract_hubspot",
        "extract_netsuite",
        "extract_stripe",
        "extract_zendesk",
        "push_entitlements",
        "push_erp",
        "reconcile",
        "replay_dead_letters",
    ]
    erp = parsed["dags"]["push_erp"]
    assert (
        erp["tasks"] == ["push", "wait_for_netsuite"] and "revsync://validated/erp_changes" in erp["schedule"]
    )
    assert erp["outlets"] == {"push": ["revsync://pushed/netsuite"]} and erp["params"] == [
        "concurrency",
        "dry_run",
    ]
    entitlements = parsed["dags"]["push_entitlements"]
    assert entitlements["tasks"] == ["push", "wait_for_zendesk"]
    assert "revsync://validated/entitlement_changes" in entitlements["schedule"]
    replay = parsed["dags"]["replay_dead_letters"]
    assert (
        replay["tasks"] == ["deliver_netsuite", "deliver_zendesk", "replay"] and replay["schedule"] == "None"
    )
    assert "approved_by" in replay["params"]
    stripe = parsed["dags"]["extract_stripe"]
    assert stripe["tasks"] == sorted(
        ["publish"]
        + [f"extract_{s}" for s in ("customers", "subscriptions", "invoices", "charges", "credit_notes")]
        + ["extract_products", "extract_prices", "extract_usage"]
    )
    assert stripe["outlets"] == {"publish": ["revsync://raw/stripe"]}
    assert "*/15 * * * *" in stripe["schedule"] and stripe["catchup"] is False
    assert stripe["params"] == ["force", "full_refresh", "lookback_seconds", "start_cursor"]
    assert stripe["retries"] == 3 and stripe["doc"] and "extract" in stripe["tags"]


def test_without_a_dbt_manifest_the_reconcile_dag_fails_to_import_naming_the_fix(tmp_path):
    parsed = _parse({"REVSYNC_HOME": str(tmp_path)})
    assert list(parsed["errors"]) == [str(ROOT / "dags" / "revsync_reconcile.py")]
    assert "make manifest" in next(iter(parsed["errors"].values()))
    assert "reconcile" not in parsed["dags"] and "extract_stripe" in parsed["dags"]


def test_optional_sources_get_dags_when_their_connection_is_configured():
    parsed = _parse({"AIRFLOW_CONN_CHARGEBEE_DEFAULT": '{"conn_type": "http", "host": "http://127.0.0.1:1"}'})
    assert "extract_chargebee" in parsed["dags"] and "extract_freshdesk" not in parsed["dags"]
    assert enabled_sources({"REVSYNC_EXTRA_SOURCES": "freshdesk"})[-1] == "freshdesk"
    assert enabled_sources({})[-1] == "netsuite"


def test_the_guard_catches_a_dag_file_that_opens_the_warehouse_at_parse_time(tmp_path):
    (tmp_path / "bad_dag.py").write_text(
        "import duckdb\nfrom airflow.sdk import DAG\n"
        "duckdb.connect('wh.duckdb')\nwith DAG('bad'):\n    pass\n"
    )
    parsed = _parse(folder=tmp_path)
    assert parsed["opened"] == ["duckdb.connect"] and "parse time" in next(iter(parsed["errors"].values()))
