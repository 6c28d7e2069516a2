"""A real Airflow 3 deployment on this machine: api-server, scheduler, dag-processor and triggerer (plus
Celery workers with the CeleryExecutor), each its own process, with the project's DAG folder.

`make demo` runs it on the embedded default (LocalExecutor, SQLite metadata under `.revsync/`), the
services test on PostgreSQL and Redis with Celery workers: the same code, other settings. Everything
listens on 127.0.0.1; a port already taken fails at once, naming the port and how to choose another.
The REST API client logs in as the admin user the stack creates (Simple auth manager).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[3]
DAGS_FOLDER = ROOT / "dags"
AIRFLOW = str(Path(sys.executable).with_name("airflow"))
ADMIN = "admin"
START_TIMEOUT_S = 180
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")


class StackError(RuntimeError):
    """The stack cannot start or a component died; the message says which and where its log is."""


def port_taken(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


def require_free(ports: dict[str, int], hint: str) -> None:
    """Fail before starting anything when one of `ports` (what -> port) is in use on 127.0.0.1."""
    taken = [f"{port} ({what})" for what, port in ports.items() if port_taken(port)]
    if taken:
        raise StackError(f"port {', '.join(taken)} on 127.0.0.1 is already in use. {hint}")


@dataclass
class AirflowStack:
    """The settings of one deployment under `home`; `start()` runs it until the block ends."""

    home: Path
    port: int = 8080
    executor: str = "LocalExecutor"
    sql_alchemy_conn: str | None = None  # default: SQLite in `home`
    broker_url: str | None = None  # Celery only
    celery_workers: int = 0
    parallelism: int = 8
    env: dict[str, str] = field(default_factory=dict)  # the tasks' settings (REVSYNC_*, connections)
    password: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    _processes: dict[str, subprocess.Popen] = field(default_factory=dict, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def logs(self) -> Path:
        return self.home / "logs" / "services"

    def environment(self) -> dict[str, str]:
        """Every component's environment: the caller's minus its AIRFLOW_* settings, then the stack's."""
        base = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
        stack = {
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "AIRFLOW__CORE__EXECUTOR": self.executor,
            "AIRFLOW__CORE__PARALLELISM": str(self.parallelism),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.home / "passwords.json"),
            "AIRFLOW__API__BASE_URL": self.url,
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.port),
            # the components must agree on the secret that signs the tasks' execution-API tokens
            "AIRFLOW__API_AUTH__JWT_SECRET": self._secret("jwt"),
            "AIRFLOW__CORE__FERNET_KEY": "",
            # pick up new DAG runs and Asset events quickly: a demo's and a test's latency
            "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.5",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "600",
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.home / "logs"),
        }
        if self.sql_alchemy_conn:
            stack["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = self.sql_alchemy_conn
        if self.executor == "CeleryExecutor":
            stack["AIRFLOW__CELERY__BROKER_URL"] = self.broker_url or "redis://127.0.0.1:6379/0"
            stack["AIRFLOW__CELERY__WORKER_CONCURRENCY"] = str(max(2, self.parallelism // 2))
        return {**base, **self.env, **stack}

    def _secret(self, name: str) -> str:
        path = self.home / f".{name}_secret"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_hex(32))
        return path.read_text().strip()

    def airflow(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
        """Run an `airflow` CLI command in this deployment; raise with its output when it fails."""
        done = subprocess.run(
            [AIRFLOW, *args],
            env=self.environment(),
            cwd=self.home,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if done.returncode != 0:
            raise StackError(f"airflow {' '.join(args)} failed:\n{(done.stdout + done.stderr)[-4000:]}")
        return done

    def migrate(self, template: Path | None = None) -> None:
        """Create the metadata database: a copy of `template` (an SQLite database `airflow db migrate`
        made with the same Airflow) when given and present, else `airflow db migrate` (which then fills
        `template` for the next time)."""
        self.home.mkdir(parents=True, exist_ok=True)
        if self.sql_alchemy_conn is None and template is not None and template.exists():
            shutil.copy(template, self.home / "airflow.db")
            return
        self.airflow("db", "migrate")
        if self.sql_alchemy_conn is None and template is not None:
            template.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(self.home / "airflow.db", template)

    def _command(self, component: str) -> list[str]:
        if component == "api-server":
            return [AIRFLOW, "api-server", "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1"]
        if component in ("scheduler", "triggerer"):
            return [AIRFLOW, component, "--skip-serve-logs"]  # task logs are local files: no log server
        if component.startswith("celery-worker"):
            name = component.removeprefix("celery-")
            return [AIRFLOW, "celery", "worker", "--celery-hostname", f"{name}@%h", "--skip-serve-logs"]
        return [AIRFLOW, component]

    def components(self) -> list[str]:
        return [*COMPONENTS, *(f"celery-worker-{n}" for n in range(1, self.celery_workers + 1))]

    @contextmanager
    def start(self, progress=print) -> Iterator[AirflowStack]:
        """Start every component, wait until the API answers and the scheduler, DAG processor and
        triggerer report healthy; stop them all when the block ends (or on an error)."""
        require_free({"Airflow api-server": self.port}, "Stop what holds it, or choose another port.")
        (self.home / "passwords.json").write_text(json.dumps({ADMIN: self.password}))
        self.logs.mkdir(parents=True, exist_ok=True)
        env = self.environment()
        try:
            for component in self.components():
                log = (self.logs / f"{component}.log").open("w")
                self._processes[component] = subprocess.Popen(
                    self._command(component),
                    env=env,
                    cwd=self.home,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # stopped as a group: a component's own children go too
                )
                log.close()
            self.wait_healthy(progress)
            yield self
        finally:
            self.stop()

    def check_alive(self) -> None:
        for component, process in self._processes.items():
            if process.poll() is not None:
                tail = (self.logs / f"{component}.log").read_text(errors="replace")[-3000:]
                raise StackError(
                    f"airflow {component} exited with status {process.returncode}; its log "
                    f"({self.logs / f'{component}.log'}) ends:\n{tail}"
                )

    def wait_healthy(self, progress=print, timeout: float = START_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        wanted = ("metadatabase", "scheduler", "triggerer", "dag_processor")
        status: dict[str, Any] = {}
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                status = httpx.get(f"{self.url}/api/v2/monitor/health", timeout=5).json()
            except (httpx.TransportError, ValueError):
                status = {}
            healthy = bool(status) and all((status.get(p) or {}).get("status") == "healthy" for p in wanted)
            if healthy and all(self._worker_ready(w) for w in self.components() if w.startswith("celery")):
                workers = f" and {self.celery_workers} Celery workers" if self.celery_workers else ""
                progress(
                    f"airflow: api-server, scheduler, dag-processor, triggerer{workers} up at {self.url}"
                )
                return
            time.sleep(1)
        raise StackError(f"Airflow did not become healthy in {timeout:.0f}s: {status}; logs in {self.logs}")

    def _worker_ready(self, component: str) -> bool:
        """A Celery worker logs `<name> ready.` once it consumes its queue."""
        return " ready." in (self.logs / f"{component}.log").read_text(errors="replace")

    def stop(self, grace_s: float = 20) -> None:
        """SIGTERM every component's process group, SIGKILL what is left after `grace_s`. A second
        Ctrl-C or SIGTERM meanwhile is ignored: an interrupted stop would leave components running."""
        ignored = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            for process in self._processes.values():
                if process.poll() is None:
                    os.killpg(process.pid, signal.SIGTERM)
            deadline = time.monotonic() + grace_s
            for process in self._processes.values():
                with suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=max(0.1, deadline - time.monotonic()))
                with suppress(ProcessLookupError):  # the group too: its task processes may outlive it
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            self._processes.clear()
        finally:
            for sig, handler in ignored.items():
                signal.signal(sig, handler)

    def client(self) -> AirflowClient:
        return AirflowClient(self.url, ADMIN, self.password)


class AirflowClient:
    """The handful of Airflow 3 REST API calls a deployment driver needs (api/v2, JWT from /auth/token)."""

    def __init__(self, url: str, username: str, password: str):
        token = httpx.post(f"{url}/auth/token", json={"username": username, "password": password}, timeout=30)
        if token.status_code >= 300:
            raise StackError(f"Airflow refused the login of {username!r}: {token.status_code} {token.text}")
        self.http = httpx.Client(
            base_url=f"{url}/api/v2",
            headers={"Authorization": f"Bearer {token.json()['access_token']}"},
            timeout=60,
        )

    def _json(self, method: str, path: str, **kwargs) -> Any:
        response = self.http.request(method, path, **kwargs)
        if response.status_code >= 300:
            raise StackError(f"Airflow API {method} {path}: {response.status_code} {response.text[:500]}")
        return response.json()

    def dag_ids(self) -> set[str]:
        return {d["dag_id"] for d in self._json("GET", "/dags", params={"limit": 1000})["dags"]}

    def wait_for_dags(self, wanted: Iterable[str], timeout: float = 180) -> None:
        wanted, deadline = set(wanted), time.monotonic() + timeout
        while not wanted <= (found := self.dag_ids()):
            if time.monotonic() > deadline:
                errors = self._json("GET", "/importErrors")["import_errors"]
                raise StackError(f"DAGs not parsed after {timeout:.0f}s: {sorted(wanted - found)}; {errors}")
            time.sleep(1)

    def unpause(self, dag_id: str) -> None:
        self._json("PATCH", f"/dags/{dag_id}", json={"is_paused": False})

    def trigger(self, dag_id: str, conf: dict | None = None) -> str:
        run = self._json("POST", f"/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": conf or {}})
        return run["dag_run_id"]

    def runs(self, dag_id: str) -> list[dict]:
        """The DAG's runs, oldest first."""
        return self._json("GET", f"/dags/{dag_id}/dagRuns", params={"order_by": "run_after", "limit": 100})[
            "dag_runs"
        ]

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        return self._json("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 1000})[
            "task_instances"
        ]

    def xcom(self, dag_id: str, run_id: str, task_id: str) -> Any:
        entry = self._json(
            "GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/return_value"
        )
        return entry.get("value")
