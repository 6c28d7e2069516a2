"""Integration fixtures: a generated world served by a real sandbox process on loopback ports.

`sandbox` is one server for the whole session on a small world; tests that change the world in ways
others would notice (faults, `advance`) start their own server on a private copy with `start_sandbox`.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from sandbox.server.runner import ENDPOINTS_FILE, read_endpoints
from sandbox.world.generator import generate

SMALL_CUSTOMERS = 1000
SEED = 7
START_TIMEOUT_S = 60


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
    (world_dir / ENDPOINTS_FILE).unlink(missing_ok=True)
    log = (world_dir / "serve.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "sandbox", "serve", str(world_dir), "--port-base", "0", "--faults", faults],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not (world_dir / ENDPOINTS_FILE).exists():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"sandbox did not start: {(world_dir / 'serve.log').read_text()}")
            time.sleep(0.05)
        endpoints = read_endpoints(world_dir)
        for info in endpoints["vendors"].values():  # the file is written just before the servers listen
            while True:
                try:
                    httpx.get(f"{info['base_url']}/__sandbox__/health", timeout=2)
                    break
                except httpx.TransportError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
        yield Sandbox(world_dir, endpoints, process)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


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
