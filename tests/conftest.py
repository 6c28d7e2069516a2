"""Shared fixtures: real PostgreSQL and Redis for the `services` tests.

Each service fixture probes its server once per session with a short timeout. When the server
is not there, the test is skipped with a reason starting "service unavailable:" on a developer's
machine, and fails outright when the `CI` environment variable is set: CI must never go green
on skipped service tests. `.ci/run` also greps the skip summary for that phrase.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import pytest

DEFAULT_POSTGRES_DSNS = (
    "postgresql+psycopg2://postgres@127.0.0.1:5432/test",
    "postgresql+psycopg2://root@127.0.0.1:5432/test",
)
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
PROBE_TIMEOUT_S = 3
REVSYNC = str(Path(sys.executable).with_name("revsync"))
DEMO_SEED = 7
DEMO_SCALE = "300"  # customers: the demo's fixed costs dominate; a smaller world keeps the test shorter
DEMO_TIMEOUT_S = 1200


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _unavailable(service: str, detail: str, hint: str) -> NoReturn:
    """Fail in CI, skip loudly elsewhere."""
    message = f"service unavailable: {service} ({detail}). {hint}"
    if _in_ci():
        pytest.fail(f"{message} [CI is set: a missing service fails the run]", pytrace=False)
    pytest.skip(message)


def _probe_postgres(dsn: str) -> str | None:
    """Return None when `select 1` works on `dsn`, else the error text."""
    import sqlalchemy as sa
    from sqlalchemy.pool import NullPool

    engine = sa.create_engine(dsn, poolclass=NullPool, connect_args={"connect_timeout": PROBE_TIMEOUT_S})
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
    except Exception as exc:  # any connection failure means "not usable"
        first_line = (str(exc).strip().splitlines() or [""])[0]
        return f"{type(exc).__name__}: {first_line}"
    finally:
        engine.dispose()
    return None


@pytest.fixture(scope="session")
def postgres_dsn() -> str:
    """SQLAlchemy URL of a reachable PostgreSQL database (env REVSYNC_TEST_POSTGRES_DSN overrides)."""
    override = os.environ.get("REVSYNC_TEST_POSTGRES_DSN")
    candidates = (override,) if override else DEFAULT_POSTGRES_DSNS
    errors = []
    for dsn in candidates:
        error = _probe_postgres(dsn)
        if error is None:
            return dsn
        errors.append(f"{dsn}: {error}")
    _unavailable(
        "PostgreSQL",
        "; ".join(errors),
        "Start PostgreSQL on 127.0.0.1:5432 (trust auth, database `test`) "
        "or set REVSYNC_TEST_POSTGRES_DSN to a SQLAlchemy URL.",
    )


@contextmanager
def _new_database(postgres_dsn: str, prefix: str) -> Iterator[str]:
    import sqlalchemy as sa

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(postgres_dsn, isolation_level="AUTOCOMMIT")
    with admin.connect() as con:
        con.execute(sa.text(f"create database {name}"))
    try:
        yield sa.make_url(postgres_dsn).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as con:
            con.execute(sa.text(f"drop database if exists {name} with (force)"))
        admin.dispose()


@pytest.fixture(scope="session")
def new_postgres_database(postgres_dsn) -> Callable[[str], AbstractContextManager[str]]:
    """`with new_postgres_database(prefix) as url:` a new, empty database on the test server (named
    `<prefix>_<random>`), dropped with its connections when the block ends."""
    return lambda prefix: _new_database(postgres_dsn, prefix)


@pytest.fixture(scope="session")
def redis_url() -> str:
    """URL of a reachable Redis server (env REVSYNC_TEST_REDIS_URL overrides)."""
    import redis

    url = os.environ.get("REVSYNC_TEST_REDIS_URL", DEFAULT_REDIS_URL)
    client = redis.Redis.from_url(url, socket_connect_timeout=PROBE_TIMEOUT_S, socket_timeout=PROBE_TIMEOUT_S)
    try:
        client.ping()
    except Exception as exc:  # any connection failure means "not usable"
        _unavailable(
            "Redis",
            f"{url}: {type(exc).__name__}: {exc}",
            "Start Redis on 127.0.0.1:6379 or set REVSYNC_TEST_REDIS_URL.",
        )
    finally:
        client.close()
    return url


@pytest.fixture(scope="session")
def chromium() -> str:
    """Path of a headless-capable Chromium (Debian's `chromium`; `make browser` installs it)."""
    import shutil

    found = (
        os.environ.get("REVSYNC_TEST_CHROMIUM")
        or shutil.which("chromium")
        or shutil.which("chromium-browser")
    )
    if not found:
        _unavailable(
            "Chromium",
            "no chromium on PATH",
            "Run `make browser` (Debian's chromium) or set REVSYNC_TEST_CHROMIUM.",
        )
    return found


@dataclass
class DemoRun:
    """One `revsync demo` process: its home, its printed output and its --json figures."""

    folder: Path
    home: Path
    port: int
    output: str
    result: dict
    seconds: float


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run_demo(folder: Path, *args: str) -> DemoRun:
    """`revsync demo` on the seed-DEMO_SEED small world in `folder` (free ports, no caller's AIRFLOW_*,
    REVSYNC_* or DBT_* settings); asserts it succeeded."""
    folder.mkdir(parents=True, exist_ok=True)
    home, port = folder / "home", free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "REVSYNC", "DBT_"))}
    argv = [REVSYNC, "demo", "--seed", str(DEMO_SEED), "--scale", DEMO_SCALE, "--home", str(home)]
    argv += ["--airflow-port", str(port)]
    argv += ["--sandbox-port-base", "0", "--json", str(folder / "result.json"), *args]
    started = time.monotonic()
    done = subprocess.run(argv, cwd=folder, env=env, capture_output=True, text=True, timeout=DEMO_TIMEOUT_S)
    seconds = time.monotonic() - started
    print(f"revsync demo {' '.join(args)}: {seconds:.0f}s")
    assert done.returncode == 0, f"stdout:\n{done.stdout[-6000:]}\nstderr:\n{done.stderr[-6000:]}"
    result = json.loads((folder / "result.json").read_text())
    return DemoRun(folder, home, port, done.stdout, result, seconds)


@pytest.fixture(scope="session")
def demo_runner():
    """`run_demo(folder, *args)` as a fixture (the test folders are not packages)."""
    return run_demo


@pytest.fixture(scope="session")
def embedded_demo(tmp_path_factory) -> DemoRun:
    """`make demo`'s run (LocalExecutor, SQLite), once per session: the demo test reads it and the
    distributed-stack test compares its own run with it."""
    return run_demo(tmp_path_factory.mktemp("embedded_demo"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that use a service fixture carry the `services` marker, so `-m "not services"` works."""
    for item in items:
        if {"postgres_dsn", "redis_url"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.services)
