"""Run `python -m sandbox serve` as a child process until a block ends: the demo's and the tests' sandbox.

The server writes `endpoints.json` just before its sockets accept, so the wait ends only when every
vendor answers its health check; a server that exits early (a port taken, a bad world) raises with the
end of its log, which says why.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from sandbox.server.runner import ENDPOINTS_FILE, read_endpoints

START_TIMEOUT_S = 60


class SandboxFailed(RuntimeError):
    pass


@contextmanager
def serve_in_background(
    world_dir: Path,
    port_base: int = 0,
    faults: str = "none",
    log_path: Path | None = None,
    start_timeout_s: float = START_TIMEOUT_S,
) -> Iterator[tuple[dict, subprocess.Popen]]:
    """Serve `world_dir` (ports from `port_base`; 0: free ports) and yield (its endpoints, the process);
    stopped with SIGTERM when the block ends."""
    world_dir = Path(world_dir)
    (world_dir / ENDPOINTS_FILE).unlink(missing_ok=True)
    log_path = log_path or world_dir / "serve.log"
    log = log_path.open("w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sandbox",
            "serve",
            str(world_dir),
            "--port-base",
            str(port_base),
            "--faults",
            faults,
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        deadline = time.monotonic() + start_timeout_s
        while not (world_dir / ENDPOINTS_FILE).exists():
            if process.poll() is not None or time.monotonic() > deadline:
                raise SandboxFailed(
                    f"the sandbox did not start; {log_path} ends:\n{log_path.read_text()[-3000:]}"
                )
            time.sleep(0.05)
        endpoints = read_endpoints(world_dir)
        for info in endpoints["vendors"].values():
            while True:
                try:
                    httpx.get(f"{info['base_url']}/__sandbox__/health", timeout=2)
                    break
                except httpx.TransportError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
        yield endpoints, process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
