"""The analysts' read-only snapshot on copies of the built small world: it holds the marts as the
warehouse has them; `revsync sql` answers from it while a real `dbt build` holds the warehouse for
writing (when the warehouse itself cannot even be opened); a query open on the old snapshot survives
the swap to a new one, and the next query sees the new data."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
from conftest import DBT, DBT_PROJECT

from revsync.warehouse.reporting import SCHEMAS, publish_reporting

pytestmark = pytest.mark.integration
REVSYNC = str(Path(sys.executable).with_name("revsync"))


@pytest.fixture
def built(small_built, tmp_path) -> Path:
    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copy(small_built.warehouse, warehouse)
    return warehouse


def _sql(warehouse: Path, query: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REVSYNC_")}
    return subprocess.run(
        [REVSYNC, "sql", "--warehouse", str(warehouse), "--format", "json", query],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def test_the_snapshot_holds_every_mart_as_the_warehouse_has_it(built):
    done = publish_reporting(built)
    snapshot = Path(done["path"])
    assert snapshot == built.with_name("reporting.duckdb")
    source = duckdb.connect(str(built), read_only=True)
    copy = duckdb.connect(str(snapshot), read_only=True)
    try:
        marts = source.execute(
            "select schema_name, table_name from duckdb_tables() where list_contains(?, schema_name)",
            [list(SCHEMAS)],
        ).fetchall()
        assert len(marts) >= 10 and done["tables"] >= len(marts)
        for schema, table in marts:
            query = f"select count(*) from {schema}.{table}"
            assert copy.execute(query).fetchall() == source.execute(query).fetchall(), (schema, table)
        # staging (views over raw JSON) stays in the pipeline's warehouse
        assert copy.execute(
            "select count(*) from duckdb_tables() where schema_name = 'staging'"
        ).fetchall() == [(0,)]
    finally:
        source.close()
        copy.close()


def test_an_analyst_query_runs_while_a_build_writes_the_warehouse(built, tmp_path):
    publish_reporting(built)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REVSYNC_", "DBT_"))}
    env |= {"REVSYNC_WAREHOUSE": str(built), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    argv = [DBT, "build", "--project-dir", str(DBT_PROJECT), "--profiles-dir", str(DBT_PROJECT)]
    argv += ["--target-path", str(tmp_path / "target"), "--log-path", str(tmp_path / "logs")]
    build = subprocess.Popen(
        argv, env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    answered = 0
    wal = built.with_name(built.name + ".wal")
    try:
        deadline = time.monotonic() + 300
        while build.poll() is None and time.monotonic() < deadline and answered < 3:
            if not wal.exists():  # dbt has the warehouse open and is writing once its WAL exists
                time.sleep(0.05)
                continue
            result = _sql(built, "select exception_type, count(*) as n from sync.exceptions group by 1")
            assert result.returncode == 0, result.stderr[-2000:]
            assert sum(row["n"] for row in json.loads(result.stdout)) > 0
            if build.poll() is None:
                answered += 1
    finally:
        build.wait(timeout=600)
    # (opening the live warehouse instead, even read-only, would have failed dbt's writes or the query)
    assert build.returncode == 0
    assert answered >= 1, "no analyst query finished while the build was writing"


def test_a_query_on_the_old_snapshot_survives_the_swap_and_the_next_sees_the_new(built):
    snapshot = Path(publish_reporting(built)["path"])
    before = duckdb.connect(str(snapshot), read_only=True)
    try:
        count = before.execute("select count(*) from sync.exceptions").fetchall()[0][0]
        writer = duckdb.connect(str(built))
        writer.execute(
            "delete from sync.exceptions "
            "where exception_id in (select exception_id from sync.exceptions limit 5)"
        )
        writer.close()
        publish_reporting(built)
        assert before.execute("select count(*) from sync.exceptions").fetchall() == [(count,)]
    finally:
        before.close()
    result = _sql(built, "select count(*) as n from sync.exceptions")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [{"n": count - 5}]
    assert sorted(p.name for p in snapshot.parent.iterdir() if "reporting" in p.name) == ["reporting.duckdb"]
