"""Integration fixtures: a generated world served by a real sandbox process on loopback ports.

`sandbox` is one server for the whole session on a small world; tests that change the world in ways
others would notice (faults, `advance`) start their own server on a private copy with `start_sandbox`.
dbt tests share one full landing of the small world (`small_landed`), copy it (`copy_landed`) and build
with `run_dbt`; `small_built` is that landing with the whole dbt project built once, read-only (`copy_built`
copies it).
Tests that run Airflow start from one metadata database migrated once per session (`airflow_home`).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import httpx
import pytest

from revsync.connectors.load import load_source
from revsync.connectors.registry import CONNECTORS
from sandbox.server.background import serve_in_background
from sandbox.world.generator import generate

SMALL_CUSTOMERS = 1000
SEED = 7
DBT = str(Path(sys.executable).with_name("dbt"))
DBT_PROJECT = Path(__file__).resolve().parents[2] / "dbt_project"
DBT_TIMEOUT_S = 900
AIRFLOW = str(Path(sys.executable).with_name("airflow"))


@dataclass
class Sandbox:
    world_dir: Path
    endpoints: dict
    process: subprocess.Popen

    def base_url(self, vendor: str) -> str:
        return self.endpoints["vendors"][vendor]["base_url"]

    def creds(self, vendor: str) -> dict[str, str]:
        return self.endpoints["vendors"][vendor]["credentials"]

    def admin(self, path: str, method: str = "GET", **params) -> dict:
        """Call `/__sandbox__/<path>` and return its JSON (asserting a 200)."""
        response = httpx.request(
            method, f"{self.base_url('stripe')}/__sandbox__/{path}", params=params, timeout=600
        )
        assert response.status_code == 200, response.text
        return response.json()


@contextmanager
def start_sandbox(world_dir: Path, faults: str = "none") -> Iterator[Sandbox]:
    """Serve `world_dir` from a `python -m sandbox serve` subprocess on free ports until the block ends."""
    with serve_in_background(world_dir, 0, faults) as (endpoints, process):
        yield Sandbox(world_dir, endpoints, process)


@pytest.fixture(scope="session")
def small_world(tmp_path_factory) -> Path:
    """A generated world of SMALL_CUSTOMERS customers (seed SEED); treat it as read-only."""
    world_dir = tmp_path_factory.mktemp("small_world")
    generate(world_dir, SMALL_CUSTOMERS, SEED)
    return world_dir


@pytest.fixture(scope="session")
def copy_small_world(small_world):
    """`copy(target)`: put a private copy of the small world in the (new or empty) folder `target`."""

    def copy(target: Path) -> Path:
        target.mkdir(exist_ok=True)
        for name in ("world.duckdb", "ground_truth.jsonl"):
            shutil.copy(small_world / name, target / name)
        return target

    return copy


@pytest.fixture
def world_copy(copy_small_world, tmp_path) -> Path:
    """A private copy of the small world that a test may change."""
    return copy_small_world(tmp_path / "world")


@pytest.fixture(scope="session")
def sandbox(copy_small_world, tmp_path_factory) -> Iterator[Sandbox]:
    """The session's sandbox (faults none) on a copy of the small world."""
    with start_sandbox(copy_small_world(tmp_path_factory.mktemp("served_world"))) as running:
        yield running


@pytest.fixture(scope="session")
def start_sandbox_factory():
    """`start_sandbox` as a fixture, for tests that serve a private world (tests/ is not a package)."""
    return start_sandbox


@dataclass(frozen=True)
class Landed:
    """A warehouse with the four core sources fully landed from `world`, and the time of that load."""

    warehouse: Path
    world: Path
    as_of: datetime

    @property
    def as_of_var(self) -> str:
        return self.as_of.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class DbtRun:
    returncode: int
    stdout: str
    results: list[dict]

    @property
    def statuses(self) -> dict[str, str]:
        return {r["unique_id"]: r["status"] for r in self.results}

    @property
    def failures(self) -> dict[str, str]:
        return {k: v for k, v in self.statuses.items() if v not in ("success", "pass")}


# vars (as JSON) -> the partial_parse.msgpack of the latest run_dbt with those vars
_PARSED: dict[str, Path] = {}


def run_dbt(warehouse: Path, workdir: Path, *args: str, dbt_vars: dict | None = None) -> DbtRun:
    """`dbt <args>` on `warehouse`, with its target and logs in `workdir` (never the project's own).

    A new `workdir` starts with the partial parse of an earlier run with the same vars (dbt's own state
    file, which dbt checks against the project's files, vars, profile and version and discards on any
    difference), so it does not parse the whole project again (about 10 s)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REVSYNC_", "DBT_"))}
    env |= {"REVSYNC_WAREHOUSE": str(warehouse), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    workdir.mkdir(parents=True, exist_ok=True)
    target = workdir / "target"
    vars_key = json.dumps(dbt_vars or {}, sort_keys=True)
    parsed = target / "partial_parse.msgpack"
    if not parsed.exists() and _PARSED.get(vars_key, parsed).exists():
        target.mkdir(exist_ok=True)
        shutil.copy(_PARSED[vars_key], parsed)
    argv = [DBT, *args, "--project-dir", str(DBT_PROJECT), "--profiles-dir", str(DBT_PROJECT)]
    argv += ["--target-path", str(target), "--log-path", str(workdir / "logs")]
    if dbt_vars:
        argv += ["--vars", json.dumps(dbt_vars)]
    done = subprocess.run(argv, env=env, cwd=workdir, capture_output=True, text=True, timeout=DBT_TIMEOUT_S)
    if parsed.exists():
        _PARSED[vars_key] = parsed
    results_file = target / "run_results.json"
    results = json.loads(results_file.read_text())["results"] if results_file.exists() else []
    return DbtRun(done.returncode, done.stdout + done.stderr, results)


@pytest.fixture(scope="session")
def small_landed(copy_small_world, tmp_path_factory) -> Landed:
    """The small world fully landed from a private sandbox (no other test's writes); treat as read-only."""
    world = copy_small_world(tmp_path_factory.mktemp("landed_world"))
    warehouse = tmp_path_factory.mktemp("landed") / "warehouse.duckdb"
    with start_sandbox(world) as running:
        con = duckdb.connect(str(warehouse))
        try:
            for name, connector in CONNECTORS.items():
                load_source(con, connector, running.base_url(name), running.creds(name), "b1")
        finally:
            con.close()
    return Landed(warehouse, world, datetime.now(UTC).replace(microsecond=0))


@pytest.fixture(scope="session")
def copy_landed(small_landed):
    """`copy(folder)`: a private copy of `small_landed`'s warehouse in `folder`, as a `Landed`."""

    def copy(folder: Path) -> Landed:
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / "warehouse.duckdb"
        shutil.copy(small_landed.warehouse, target)
        return Landed(target, small_landed.world, small_landed.as_of)

    return copy


@pytest.fixture(scope="session")
def small_built(copy_landed, tmp_path_factory) -> Landed:
    """`small_landed` with the whole dbt project built (`dbt build`, every test) at its as-of; read-only.

    Fails the session's dbt tests at once with the failing nodes if any model or test fails."""
    folder = tmp_path_factory.mktemp("built")
    landed = copy_landed(folder)
    started = time.monotonic()
    run = run_dbt(landed.warehouse, folder, "build", dbt_vars={"as_of": landed.as_of_var})
    assert run.returncode == 0 and not run.failures, (run.failures, run.stdout[-4000:])
    print(
        f"dbt build (whole project, small world): {time.monotonic() - started:.1f}s, {len(run.results)} nodes"
    )
    return landed


@pytest.fixture(scope="session")
def copy_built(small_built):
    """`copy(folder)`: a private copy of `small_built`'s warehouse in `folder`, as a `Landed`: a test that
    needs the whole project built once at the landing's as-of starts from it instead of building again."""

    def copy(folder: Path) -> Landed:
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / "warehouse.duckdb"
        shutil.copy(small_built.warehouse, target)
        wal = small_built.warehouse.with_name(small_built.warehouse.name + ".wal")
        if wal.exists():
            shutil.copy(wal, target.with_name(target.name + ".wal"))
        return Landed(target, small_built.world, small_built.as_of)

    return copy


# change-set queries the gate tests share (sync.erp_changes on DuckDB and PostgreSQL alike)
PREREQUISITES = (
    "select depends_on_idempotency_key from sync.erp_changes where depends_on_idempotency_key is not null"
)
# an invoice change with exactly one change depending on it: a payment nothing depends on
DEPENDENT_INVOICE = (
    "select i.idempotency_key, min(p.idempotency_key) from sync.erp_changes as i "
    "join sync.erp_changes as p on p.depends_on_idempotency_key = i.idempotency_key "
    "where i.record_type = 'invoice' group by 1 having count(*) = 1 "
    "and min(p.record_type) = 'customerPayment' "
    f"and min(p.idempotency_key) not in ({PREREQUISITES}) order by 1 limit 1"
)


@pytest.fixture(scope="session")
def change_queries() -> dict[str, str]:
    """SQL the gate tests share: `prerequisites` (keys some change waits for), `dependent_invoice`."""
    return {"prerequisites": PREREQUISITES, "dependent_invoice": DEPENDENT_INVOICE}


def airflow_env(home: Path) -> dict[str, str]:
    """The environment of an Airflow 3 under `home` (SQLite metadata, the project's DAG folder) with no
    AIRFLOW_*, REVSYNC_* or DBT_* variable of the caller's."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "REVSYNC", "DBT_"))},
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DBT_PROJECT.parent / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
    }


@pytest.fixture(scope="session")
def migrated_airflow_db(tmp_path_factory) -> Path:
    """An Airflow metadata database (SQLite) after `airflow db migrate`, made once per session; read-only."""
    home = tmp_path_factory.mktemp("airflow_migrated")
    started = time.monotonic()
    done = subprocess.run(
        [AIRFLOW, "db", "migrate"],
        env=airflow_env(home),
        cwd=home,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, (done.stdout[-4000:], done.stderr[-4000:])
    print(f"airflow db migrate: {time.monotonic() - started:.1f}s")
    return home / "airflow.db"


@pytest.fixture(scope="session")
def airflow_home(migrated_airflow_db):
    """`home(folder)`: make `folder` a new AIRFLOW_HOME holding a private copy of the migrated metadata
    database (what `airflow db migrate` would leave there, without migrating again); returns the folder."""

    def home(folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(migrated_airflow_db, folder / "airflow.db")
        return folder

    return home


def assert_identity_matches_the_answer_key(
    con: duckdb.DuckDBPyConnection, identity: str, world: Path
) -> dict[str, int]:
    """Identity resolution against the generator's answer key: every record of `identity` (a relation with
    source_system, native_id, customer_key, link_method) is the company the generator made it for (NetSuite
    customers by their e-mail domain: duplicates in the ERP belong to one company), customer_key <->
    customer_ref is one-to-one, and nothing a record could link to is left unlinked (only CRM-only
    companies). Returns the records per link method."""
    con.execute(f"attach '{world / 'world.duckdb'}' as world (read_only)")
    con.execute("""
        create temp table answer as
        select 'stripe' as system, stripe_customer_id as native_id, customer_ref from world.company_refs
        where stripe_customer_id is not null
        union all select 'hubspot', hubspot_company_id, customer_ref from world.company_refs
        where hubspot_company_id is not null
        union all select 'zendesk', zendesk_organization_id::varchar, customer_ref from world.company_refs
        where zendesk_organization_id is not null
        union all select 'netsuite', n.id, r.customer_ref from world.netsuite_customers n
        join world.company_refs r on r.domain = lower(split_part(n.email, '@', 2))
    """)
    records, answered, pairs, keys, refs = con.execute(f"""
        select (select count(*) from {identity}), count(*),
            count(distinct (i.customer_key, a.customer_ref)), count(distinct i.customer_key),
            count(distinct a.customer_ref)
        from {identity} i
        join answer a on a.system = i.source_system and a.native_id = i.native_id
    """).fetchone()
    assert records == answered == con.execute("select count(*) from answer").fetchone()[0]
    assert pairs == keys == refs, (pairs, keys, refs)
    unlinked_with_partners = con.execute(f"""
        select count(*) from {identity} i
        join answer a on a.system = i.source_system and a.native_id = i.native_id
        where i.link_method = 'unlinked'
        and exists (select 1 from answer b where b.customer_ref = a.customer_ref and b.system <> a.system)
    """).fetchone()[0]
    assert unlinked_with_partners == 0
    methods = dict(con.execute(f"select link_method, count(*) from {identity} group by 1").fetchall())
    # external ids and metadata links do most of the work; domains fill in the rest
    assert methods["hubspot_stripe_customer_id"] > 0 and methods["stripe_metadata_hubspot_company_id"] > 0
    assert methods["netsuite_external_id"] > 0 and methods["zendesk_external_id"] > 0
    return methods
