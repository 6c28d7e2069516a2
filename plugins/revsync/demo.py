"""`revsync demo` (`make demo`): the whole pipeline on the embedded default, driven by a real Airflow 3.

It generates a sandbox world, serves it, starts Airflow (api-server, scheduler, dag-processor,
triggerer; LocalExecutor; SQLite under `<home>/airflow`), unpauses the revsync DAGs and triggers the
extract DAGs. From there Assets drive everything as in production: the sources' raw Assets schedule
`reconcile` (dbt and the quality gate), its validated change-set Assets schedule `push_erp` and
`push_entitlements`. A second round of extracts then shows what the push fixed: the mismatches that
remain are the ones that need a person (`sync.exceptions`), and the second push writes nothing.

Everything lives in the usual places under `<home>` (default `.revsync`: world/, warehouse.duckdb,
reporting.duckdb, airflow/), so `revsync status`, `revsync sql` and `revsync report` work on it
afterwards. Each demo starts from scratch there; only the migrated Airflow database is kept, as a
template, to save the migration next time.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from revsync.connectors.registry import CONNECTORS
from revsync.observability.report import human_duration
from revsync.orchestration.connections import sandbox_environment
from revsync.orchestration.stack import ADMIN, AirflowClient, AirflowStack, require_free

PUSH_DAGS = ("push_erp", "push_entitlements")
RECONCILE_DAG = "reconcile"
SANDBOX_VENDORS = 6  # the sandbox serves six vendors on consecutive ports
POLL_S = 2.0
FINISHED = ("success", "failed")
# what a demo run leaves in its home: removed before the next one starts
RUN_STATE = (
    "world",
    "airflow",
    "quality",
    "spool",
    "warehouse.duckdb",
    "warehouse.duckdb.wal",
    "warehouse.duckdb.lock",
    "reporting.duckdb",
)


class DemoFailed(RuntimeError):
    """A stage failed or did not finish in time; the message names the DAG, the task and the log."""


@dataclass
class DemoOptions:
    seed: int = 42
    scale: str = "small"
    keep: bool = False
    home: Path = Path(".revsync")
    airflow_port: int = 8080
    sandbox_port_base: int = 12111
    report_dir: Path = Path("build/report")
    timeout_s: float = 900.0
    rounds: int = 2
    # the distributed variant (tests/services): CeleryExecutor, metadata in PostgreSQL, Redis broker
    executor: str = "LocalExecutor"
    metadata_url: str | None = None
    broker_url: str | None = None
    celery_workers: int = 0


@dataclass
class Round:
    """One pass of extract -> reconcile -> gate -> push, as Airflow ran it."""

    extracted: dict[str, dict[str, int]] = field(default_factory=dict)  # source -> landed, quarantined
    mismatches: dict[str, int] = field(default_factory=dict)  # open mismatches by type after reconcile
    exceptions: int = 0
    pushed: dict[str, dict[str, Any]] = field(default_factory=dict)  # push DAG -> its push summary
    seconds: float = 0.0


@dataclass
class DemoResult:
    rounds: list[Round]
    status: dict[str, Any]
    sla: dict[str, Any]
    push_latency: dict[str, dict[str, float]]
    report: Path
    total_s: float


class Watcher:
    """Polls the Airflow API, prints each DAG run's progress once per change."""

    def __init__(
        self, client: AirflowClient, stack: AirflowStack, progress: Callable[[str], None], t0: float
    ):
        self.client, self.stack, self.progress, self.t0 = client, stack, progress, t0
        self.shown: dict[tuple[str, str], str] = {}

    def say(self, text: str) -> None:
        elapsed = int(time.monotonic() - self.t0)
        self.progress(f"[{elapsed // 60}:{elapsed % 60:02d}] {text}")

    def wait_runs(self, wanted: dict[str, int], deadline: float) -> dict[str, dict]:
        """Wait until each DAG in `wanted` (dag -> how many runs it had before) has a new run that
        finished; the newest such run per DAG. A failed run raises DemoFailed naming its failed tasks."""
        done: dict[str, dict] = {}
        while len(done) < len(wanted):
            self.stack.check_alive()
            for dag_id, before in wanted.items():
                if dag_id in done:
                    continue
                runs = self.client.runs(dag_id)[before:]
                if not runs:
                    continue
                run = runs[-1]
                self._show(dag_id, run)
                if run["state"] == "failed":
                    raise DemoFailed(self._failure(dag_id, run))
                if run["state"] == "success":
                    done[dag_id] = run
            if len(done) < len(wanted):
                if time.monotonic() > deadline:
                    waiting = sorted(set(wanted) - set(done))
                    raise DemoFailed(
                        f"timed out waiting for {', '.join(waiting)}; the Airflow UI at {self.stack.url} "
                        f"and the logs in {self.stack.home / 'logs'} show where they are"
                    )
                time.sleep(POLL_S)
        return done

    def _show(self, dag_id: str, run: dict) -> None:
        tasks = self.client.task_instances(dag_id, run["dag_run_id"]) if run["state"] == "running" else []
        finished = sum(t["state"] in ("success", "skipped") for t in tasks)
        running = [t["task_id"] for t in tasks if t["state"] == "running"]
        line = run["state"]
        if run["state"] == "success" and dag_id.startswith("extract_"):
            landed = self.client.xcom(dag_id, run["dag_run_id"], "publish") or {}
            line += (
                f" ({landed.get('landed', 0):,} rows landed, {landed.get('quarantined', 0):,} quarantined)"
            )
        if tasks:
            line += f": {finished}/{len(tasks)} tasks done" + (
                f", now {', '.join(running[:3])}" if running else ""
            )
        key = (dag_id, run["dag_run_id"])
        if self.shown.get(key) != line:
            self.shown[key] = line
            self.say(f"{dag_id:<20} {line}")

    def _failure(self, dag_id: str, run: dict) -> str:
        failed = [
            t
            for t in self.client.task_instances(dag_id, run["dag_run_id"])
            if t["state"] in ("failed", "upstream_failed")
        ]
        names = ", ".join(f"{t['task_id']} ({t['state']})" for t in failed) or "no task failed"
        return (
            f"{dag_id} run {run['dag_run_id']} failed: {names}. Task logs: {self.stack.home / 'logs'} "
            f"(dag_id={dag_id}/run_id=...); rerun with KEEP=1 to inspect it in the UI."
        )


def _fresh_home(home: Path) -> None:
    home.mkdir(parents=True, exist_ok=True)
    for name in RUN_STATE:
        path = home / name
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


def _migrated_template(home: Path) -> Path:
    return home / f"airflow-{metadata.version('apache-airflow')}-migrated.db"


def _open_mismatches(home: Path) -> tuple[dict[str, int], int]:
    from revsync.warehouse.reporting import query_reporting

    warehouse = home / "warehouse.duckdb"
    by_type = query_reporting(
        "select mismatch_type, count(*) as n from reconciliation.mismatches group by 1 order by 2 desc, 1",
        warehouse,
    )
    exceptions = query_reporting("select count(*) as n from sync.exceptions", warehouse)
    return dict(zip(by_type["mismatch_type"], (int(n) for n in by_type["n"]), strict=True)), int(
        exceptions["n"][0]
    )


def run_round(watcher: Watcher, extract_dags: list[str], home: Path, deadline: float) -> Round:
    """Trigger every extract DAG; wait for them, the reconcile run their Assets schedule, and the push
    runs its validated Assets schedule."""
    client, started = watcher.client, time.monotonic()
    before = {dag: len(client.runs(dag)) for dag in [*extract_dags, RECONCILE_DAG, *PUSH_DAGS]}
    for dag_id in extract_dags:
        client.trigger(dag_id)
    watcher.say(f"triggered {', '.join(extract_dags)}")
    result = Round()
    for dag_id, run in watcher.wait_runs({d: before[d] for d in extract_dags}, deadline).items():
        result.extracted[dag_id.removeprefix("extract_")] = client.xcom(dag_id, run["dag_run_id"], "publish")
    watcher.wait_runs({RECONCILE_DAG: before[RECONCILE_DAG]}, deadline)
    result.mismatches, result.exceptions = _open_mismatches(home)
    for dag_id, run in watcher.wait_runs({d: before[d] for d in PUSH_DAGS}, deadline).items():
        result.pushed[dag_id] = client.xcom(dag_id, run["dag_run_id"], "push")
    result.seconds = time.monotonic() - started
    return result


def run_demo(options: DemoOptions, progress: Callable[[str], None] = print) -> DemoResult:
    from revsync.observability.report import build_report
    from revsync.observability.status import warehouse_status
    from revsync.orchestration.extract import enabled_sources
    from revsync.orchestration.reconcile import manifest_path, refresh_manifest
    from sandbox.server.background import serve_in_background
    from sandbox.world.generator import generate, parse_scale

    t0 = time.monotonic()
    signal.signal(signal.SIGTERM, _interrupted)
    home = options.home.absolute()
    customers = parse_scale(options.scale)
    ports = {"Airflow api-server": options.airflow_port}
    if options.sandbox_port_base:  # 0: the sandbox picks free ports
        ports |= {f"sandbox vendor {n + 1}": options.sandbox_port_base + n for n in range(SANDBOX_VENDORS)}
    require_free(ports, "Stop what holds it, or pick other ports: --airflow-port / --sandbox-port-base.")
    _fresh_home(home)
    os.environ["REVSYNC_HOME"] = str(home)  # the manifest and dbt's work folder of this process
    if not manifest_path().exists():
        progress("dbt: parsing the project for the reconcile DAG's tasks")
        refresh_manifest()
    progress(f"sandbox: generating a world of {customers:,} customers (seed {options.seed})")
    generate(home / "world", customers, options.seed)
    with serve_in_background(home / "world", options.sandbox_port_base) as (endpoints, _):
        served = ", ".join(f"{v} {i['base_url']}" for v, i in endpoints["vendors"].items())
        progress(f"sandbox: serving {served}")
        warehouse = home / "warehouse.duckdb"
        stack = AirflowStack(
            home / "airflow",
            port=options.airflow_port,
            executor=options.executor,
            sql_alchemy_conn=options.metadata_url,
            broker_url=options.broker_url,
            celery_workers=options.celery_workers,
            env={
                "REVSYNC_HOME": str(home),
                "REVSYNC_WAREHOUSE": str(warehouse),
                "REVSYNC_QUALITY_DOCS": str(home / "quality"),
                "REVSYNC_EXTRACT_SCHEDULE": "none",  # the demo triggers the rounds
                "REVSYNC_EXTRACT_GRAIN": "source",  # 4 extract tasks a round, not 19: start-ups paid once
                "REVSYNC_RECONCILE_ON": "all",  # one reconcile per round, once every source landed
                "REVSYNC_RECONCILE_GRAIN": "project",  # one dbt task, one gate task: start-ups paid once
                # the core sources: the optional ones (Chargebee, Freshdesk) feed no reconciliation yet
                **sandbox_environment({"vendors": {v: endpoints["vendors"][v] for v in CONNECTORS}}),
            },
        )
        progress("airflow: preparing the metadata database")
        stack.migrate(_migrated_template(home))
        with stack.start(progress):
            client = stack.client()
            sources = enabled_sources(stack.environment())
            extract_dags = [f"extract_{s}" for s in sources]
            dags = [*extract_dags, RECONCILE_DAG, *PUSH_DAGS, "replay_dead_letters"]
            client.wait_for_dags(dags)
            for dag_id in dags:
                client.unpause(dag_id)
            watcher = Watcher(client, stack, progress, t0)
            deadline = t0 + options.timeout_s
            rounds = []
            for n in range(1, options.rounds + 1):
                watcher.say(f"round {n}: extract -> reconcile -> gate -> push")
                rounds.append(run_round(watcher, extract_dags, home, deadline))
            status = warehouse_status(warehouse)
            report = build_report(warehouse, options.report_dir, home / "quality", Path("build/dbt-docs"))
            metrics = json.loads((report.parent / "metrics.json").read_text())
            push_latency = {
                r["target"]: {"p50_s": r["p50"], "p95_s": r["p95"]}
                for r in metrics["push_latency"]
                if r["record_type"] is None
            }
            elapsed = time.monotonic() - t0
            result = DemoResult(rounds, status, metrics["sla"], push_latency, report.absolute(), elapsed)
            progress(summary(result))
            if options.keep:
                progress(
                    f"\nKEEP: Airflow UI at {stack.url} (user {ADMIN}, password {stack.password}); "
                    f"the sandbox and Airflow keep running. Ctrl-C stops everything."
                )
                _wait_for_interrupt()
    return result


def _interrupted(*_: Any) -> None:
    raise KeyboardInterrupt  # SIGTERM unwinds like Ctrl-C: every `finally` stops what it started


def _wait_for_interrupt() -> None:
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        pass


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    cells = [
        [str(c) for c in headers],
        *[[f"{c:,}" if isinstance(c, int) else str(c) for c in r] for r in rows],
    ]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = [
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _latencies(by_target: dict[str, dict[str, float]]) -> str:
    return (
        "; ".join(
            f"{target} p50 {human_duration(v.get('p50_s'))}, p95 {human_duration(v.get('p95_s'))}"
            for target, v in sorted(by_target.items())
        )
        or "no writes"
    )


def summary(result: DemoResult) -> str:
    first, second = result.rounds[0], result.rounds[-1]
    out = ["", "revsync demo: summary", ""]
    out.append(
        _table(
            ["source", "rows extracted", "quarantined", "round 2 rows (incl. revsync's writes)"],
            [
                [s, v.get("landed", 0), v.get("quarantined", 0), second.extracted.get(s, {}).get("landed", 0)]
                for s, v in sorted(first.extracted.items())
            ],
        )
    )
    kinds = sorted(set(first.mismatches) | set(second.mismatches), key=lambda k: -first.mismatches.get(k, 0))
    out += [
        "",
        _table(
            ["mismatch type", "before push", "after push"],
            [[k, first.mismatches.get(k, 0), second.mismatches.get(k, 0)] for k in kinds]
            + [["total", sum(first.mismatches.values()), sum(second.mismatches.values())]],
        ),
    ]
    pushes = []
    for dag_id in PUSH_DAGS:
        one, two = first.pushed.get(dag_id) or {}, second.pushed.get(dag_id) or {}
        pushes.append(
            [dag_id, one.get("acknowledged", 0), one.get("dead_lettered", 0), two.get("requests", 0)]
        )
    out += ["", _table(["push DAG", "writes acknowledged", "dead-lettered", "round 2 requests"], pushes)]
    dead = sum(states.get("dead_lettered", 0) for states in result.status.get("outbox", {}).values())
    out += [
        "",
        f"exceptions for a person (sync.exceptions): {second.exceptions:,}",
        f"dead letters: {dead:,}",
        f"end to end, round 1 (extracts triggered -> every write acknowledged): {first.seconds:.0f}s; "
        f"round 2: {second.seconds:.0f}s; the whole demo: {result.total_s:.0f}s",
        "outbox -> acknowledged: " + _latencies(result.push_latency),
        "source change -> acknowledged (the world's discrepancies are old): "
        + _latencies(result.sla.get("change_to_push") or {}),
        f"report: {result.report}",
        'then: `revsync status`, `revsync sql "select * from sync.exceptions limit 5"`',
    ]
    return "\n".join(out)
