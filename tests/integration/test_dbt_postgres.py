"""The dbt project on PostgreSQL (profile target `postgres`), end to end on the small world (seed 7):

the session's landing of the world in DuckDB (`small_landed`: extraction lands nowhere else), the
`revsync.warehouse.postgres_copy` command copies the landed raw tables and landing state into a fresh
PostgreSQL database, and `dbt build --target postgres` builds the whole project there: every model,
data test and unit test passes. Then the same checks as tests/integration/test_dbt_reconciliation.py
makes on DuckDB: identity resolution agrees with the generator's answer key, and `revsync.score`
(reading PostgreSQL; `revsync sandbox score --warehouse <URL>` too) finds precision = recall = 1.00 for
every mismatch type. Last, the quality gate's three stages pass on what dbt built (staging's freshness
from the copied cursors).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
import sqlalchemy as sa
from conftest import assert_identity_matches_the_answer_key, run_dbt

from revsync.quality.gate import GateSettings, run_gate
from revsync.score import score
from sandbox.world.plan import MISMATCH_TYPES

# the module's setup (copy, build) takes minutes on 2 shared cores: the default 300 s per test (setup
# included) leaves too little room
pytestmark = [pytest.mark.integration, pytest.mark.services, pytest.mark.timeout(600)]


def _pg_env(url: sa.URL) -> dict[str, str]:
    """libpq's variables, which the profile's `postgres` output reads."""
    env = {
        "PGHOST": url.host or "127.0.0.1",
        "PGPORT": str(url.port or 5432),
        "PGUSER": url.username or "postgres",
        "PGDATABASE": url.database,
        "PGSCHEMA": "public",
    }
    if url.password:
        env["PGPASSWORD"] = url.password
    return env


@pytest.fixture(scope="module")
def pg_built(new_postgres_database, small_landed, tmp_path_factory):
    """(PostgreSQL URL, world folder, as-of, dbt run): the session's small-world landing copied to a fresh
    database and the whole dbt project built there with `--target postgres` at the landing's as-of (every
    node passed)."""
    landed, world, as_of = small_landed.warehouse, small_landed.world, small_landed.as_of
    with new_postgres_database("revsync_dbt") as url_text:
        url = sa.make_url(url_text)
        copied = subprocess.run(
            [sys.executable, "-m", "revsync.warehouse.postgres_copy", "--warehouse", str(landed)]
            + ["--postgres", url_text],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert copied.returncode == 0, copied.stdout + copied.stderr
        print(copied.stdout.splitlines()[-1])
        _check_copy(landed, url_text, copied.stdout)

        started = time.monotonic()
        workdir = tmp_path_factory.mktemp("dbt_postgres")
        with pytest.MonkeyPatch.context() as env:
            for key, value in _pg_env(url).items():
                env.setenv(key, value)
            run = run_dbt(
                landed,
                workdir,
                "build",
                "--target",
                "postgres",
                dbt_vars={"as_of": as_of.strftime("%Y-%m-%dT%H:%M:%SZ")},
            )
        assert run.returncode == 0 and not run.failures, (run.failures, run.stdout[-4000:])
        elapsed = time.monotonic() - started
        print(f"dbt build --target postgres (whole project): {elapsed:.1f}s, {len(run.results)} nodes")
        yield url_text, world, as_of, run


def _check_copy(landed: Path, url: str, output: str) -> None:
    """Every raw table and landing state table arrived with all its rows."""
    con = duckdb.connect(str(landed), read_only=True)
    try:
        tables = con.execute(
            "select table_schema, table_name from information_schema.tables"
            " where starts_with(table_schema, 'raw_')"
            " or (table_schema = 'revsync_state' and table_name in ('cursors', 'stream_schema'))"
        ).fetchall()
        counts = {
            f"{s}.{t}": con.execute(f'select count(*) from "{s}"."{t}"').fetchone()[0] for s, t in tables
        }
    finally:
        con.close()
    assert len([c for c in counts if c.startswith("raw_")]) == 19
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        with engine.connect() as pg:
            for table, rows in counts.items():
                schema, name = table.split(".")
                assert (
                    pg.execute(sa.text(f'select count(*) from "{schema}"."{name}"')).scalar_one() == rows
                ), table
                assert f"{table}: {rows} rows" in output
            record_type = pg.execute(
                sa.text(
                    "select data_type from information_schema.columns"
                    " where table_schema = 'raw_stripe' and table_name = 'invoices'"
                    " and column_name = 'record'"
                )
            ).scalar_one()
    finally:
        engine.dispose()
    assert record_type == "json"


def test_every_node_of_the_project_ran_on_postgres(pg_built):
    *_, run = pg_built
    kinds = {r["unique_id"].split(".")[0] for r in run.results}
    assert {"model", "test", "unit_test"} <= kinds
    assert len([r for r in run.results if r["unique_id"].startswith("model.")]) >= 35
    assert all(r["status"] in ("success", "pass") for r in run.results)


def test_identity_resolution_agrees_with_the_answer_key_on_postgres(pg_built):
    url, world, _, _ = pg_built
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        with engine.connect() as pg:
            rows = pg.execute(
                sa.text(
                    "select source_system, native_id, customer_key, link_method"
                    " from intermediate.int_customer_identity"
                )
            ).all()
    finally:
        engine.dispose()
    columns = ("source_system", "native_id", "customer_key", "link_method")
    identity = pa.table({c: [r[i] for r in rows] for i, c in enumerate(columns)})
    con = duckdb.connect()  # the answer-key check of the DuckDB build, over PostgreSQL's rows
    try:
        con.register("identity", identity)
        assert_identity_matches_the_answer_key(con, "identity", world)
    finally:
        con.close()


@pytest.fixture(scope="module")
def scored(pg_built):
    url, world, _, _ = pg_built
    return score(world / "ground_truth.jsonl", url)


def test_the_score_reads_postgres_at_the_builds_as_of(pg_built, scored):
    assert scored.as_of == pg_built[2]
    assert scored.table == '"reconciliation"."mismatch_history"'
    assert sum(s.expected for s in scored.types.values()) > 500


def test_score_cli_takes_the_postgres_url_and_passes_strict(pg_built):
    url, world, _, _ = pg_built
    done = subprocess.run(
        [str(Path(sys.executable).with_name("revsync")), "sandbox", "score", "--strict"]
        + ["--truth", str(world / "ground_truth.jsonl"), "--warehouse", url],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert all(f"{kind} " in done.stdout for kind in MISMATCH_TYPES)


@pytest.mark.parametrize("mismatch_type", MISMATCH_TYPES)
def test_rule_finds_exactly_the_ground_truth_on_postgres(scored, mismatch_type):
    result = scored.types[mismatch_type]
    assert result.expected > 0, "the small world injects every type"
    assert (result.precision, result.recall) == (1.0, 1.0), {
        "missed": result.missed[:10],
        "unexpected": result.unexpected[:10],
    }


def test_the_quality_gate_passes_what_dbt_built_on_postgres(pg_built, tmp_path):
    url, *_ = pg_built
    settings = GateSettings(docs_dir=tmp_path / "quality")
    staging = run_gate("staging", url, settings=settings)
    assert staging.passed and len(staging.results) == 20  # 19 staging tables and the sources' freshness
    assert all(o.success for r in staging.results for o in r.outcomes), staging.message()
    canonical = run_gate("canonical", url, settings=settings)
    assert canonical.passed and len(canonical.results) == 9
    assert all(o.success for r in canonical.results for o in r.outcomes), canonical.message()
    sync = run_gate("sync", url, settings=settings)
    assert sync.passed and sync.quarantined == {"sync.erp_changes": {}, "sync.entitlement_changes": {}}
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        with engine.connect() as pg:
            built = pg.execute(sa.text("select count(*) from sync.erp_changes")).scalar_one()
            published = pg.execute(sa.text("select count(*) from validated.erp_changes")).scalar_one()
    finally:
        engine.dispose()
    assert published == built == sync.validated_rows["sync.erp_changes"] > 0
