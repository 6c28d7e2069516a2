"""The `reconcile` DAG: the dbt project as Airflow tasks, scheduled on the sources' raw Assets.

Any enabled source's `revsync://raw/<source>` Asset (emitted by its extract DAG) triggers a run, or with
`REVSYNC_RECONCILE_ON=all` every source's (one run per round of extracts). The tasks
come from dbt's `manifest.json`, nothing per model is written here: one task per model (or seed or
snapshot) running `dbt build --select <model>`, i.e. the model and its tests, with the dependencies of
dbt's graph; the staging views of one source (`models/staging/<source>/`) share a task, because a view
builds in milliseconds while each dbt invocation costs about 5 s and the tasks run one at a time
(`REVSYNC_RECONCILE_GRAIN=layer` goes further: one task per schema; `project`: one dbt task and one
gate task, what the demo uses). A failed task can be cleared and rerun from the UI on its own; its
successful neighbours are not rebuilt.
When every task succeeded, `publish` swaps in the analysts' read-only snapshot (`reporting.duckdb`,
revsync.warehouse.reporting) and emits `revsync://warehouse/reconciled`.

The quality gate follows in the same run, one task per stage (`gate_staging`, `gate_canonical`,
`gate_sync`, each after the dbt tasks of its schema and the stage before; logic in
`revsync.quality.gate`). Only when all three pass does `publish_changes` emit the validated change-set
Assets (`revsync://validated/erp_changes`, `revsync://validated/entitlement_changes`) that schedule the
push DAGs; a blocking failure fails its task at once (no retry: the data would not change) with the
suite, expectation, table and sample rows, and nothing downstream runs.

DuckDB has one writer: each task holds the warehouse lock (`<warehouse>.lock`, the flock extract tasks
take while landing) for its whole dbt invocation, and the dbt process shares it, so a landing and a
model never write at once; a task waits for the lock instead of failing. `max_active_tasks=1` keeps
the run's tasks from holding worker slots while they wait on each other for that lock.

The manifest is read at parse time from `$REVSYNC_HOME/dbt/manifest.json` (no dbt import, no database):
`make manifest` produces it with `dbt parse`, and every task republishes the one its dbt run wrote.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from revsync.orchestration.extract import asset_uri, enabled_sources, task_defaults
from revsync.warehouse.connect import warehouse_lock, warehouse_path
from revsync.warehouse.reporting import publish_reporting
from revsync.warehouse.state import is_postgres

log = logging.getLogger(__name__)

DAG_ID = "reconcile"
RECONCILED_URI = "revsync://warehouse/reconciled"
GATE_STAGES = ("staging", "canonical", "sync")
VALIDATED_CHANGE_SETS = ("erp_changes", "entitlement_changes")
BUILT_TYPES = ("model", "seed", "snapshot")
GRAINS = ("model", "layer", "project")
PROJECT_TASK = "dbt_build"
ROOT = Path(__file__).resolve().parents[3]
LOCK_WAIT_S = float(os.environ.get("REVSYNC_DBT_LOCK_WAIT_S", "3600"))


class ManifestMissing(ImportError):
    pass


def revsync_home() -> Path:
    return Path(os.environ.get("REVSYNC_HOME", ".revsync")).absolute()


def dbt_project_dir() -> Path:
    return Path(os.environ.get("REVSYNC_DBT_PROJECT", ROOT / "dbt_project")).absolute()


def manifest_path() -> Path:
    return revsync_home() / "dbt" / "manifest.json"


def load_manifest(path: Path | None = None) -> dict[str, Any]:
    path = path or manifest_path()
    if not path.exists():
        raise ManifestMissing(
            f"reconcile DAG: no dbt manifest at {path}. Produce it with `make manifest` (`dbt parse` via "
            "`python -m revsync.orchestration.reconcile manifest`) under the REVSYNC_HOME Airflow uses."
        )
    return json.loads(path.read_text())


@dataclass
class DbtTask:
    """One Airflow task: the dbt nodes it builds (with their tests) and the tasks it waits for."""

    task_id: str
    nodes: list[str] = field(default_factory=list)  # unique ids
    select: list[str] = field(default_factory=list)  # node names, then tests spanning tasks run here
    upstream: set[str] = field(default_factory=set)
    tests: int = 0


def reconcile_grain(environ: dict[str, str] | None = None) -> str:
    """`REVSYNC_RECONCILE_GRAIN`: `model` (the default: a task per model, each rerunnable alone), `layer`
    (a task per schema: staging, intermediate, canonical, reconciliation, sync) or `project` (one
    `dbt build` task and one task for the three gate stages). Each task pays a start-up (dbt's ~5 s, the
    gate's Great Expectations import ~8 s), so on small data the coarser grains finish a run sooner."""
    grain = (
        (os.environ if environ is None else environ).get("REVSYNC_RECONCILE_GRAIN", "model").strip().lower()
    )
    if grain not in GRAINS:
        raise ValueError(f"REVSYNC_RECONCILE_GRAIN={grain!r}: use {' or '.join(GRAINS)}")
    return grain


def task_id_of(node: dict[str, Any], grain: str = "model") -> str:
    """At the model grain `staging_<source>` for the staging views of `models/staging/<source>/`, else
    the node's name; at the layer grain the node's schema; at the project grain one task for all."""
    if grain == "project":
        return PROJECT_TASK
    if grain == "layer":
        return node["schema"]
    fqn = node["fqn"]
    if len(fqn) >= 4 and fqn[1] == "staging" and node["config"].get("materialized") == "view":
        return f"staging_{fqn[2]}"
    return node["name"]


def plan(manifest: dict[str, Any], grain: str = "model") -> list[DbtTask]:
    """The tasks for `manifest` at `grain` (see reconcile_grain), upstream first (ties by task id).

    A test runs in the task of its models under `--indirect-selection cautious`; a test spanning tasks
    or touching a source is selected by name in the latest of those tasks, which then waits for all."""
    nodes: dict[str, Any] = {**manifest["nodes"], **manifest.get("unit_tests", {})}
    built = {
        uid: n
        for uid, n in nodes.items()
        if n["resource_type"] in BUILT_TYPES and n["config"].get("materialized") != "ephemeral"
    }
    owner = {uid: task_id_of(n, grain) for uid, n in built.items()}

    def parents(uid: str) -> set[str]:  # built parents and sources, looking through ephemeral models
        found: set[str] = set()
        for parent in nodes.get(uid, {}).get("depends_on", {}).get("nodes", []):
            if parent in built or parent.startswith("source."):
                found.add(parent)
            elif parent in nodes and nodes[parent]["resource_type"] == "model":
                found |= parents(parent)
        return found

    tasks: dict[str, DbtTask] = {}
    readers: dict[str, set[str]] = {}  # source -> tasks of the models reading it
    for uid in sorted(built, key=lambda u: built[u]["name"]):
        task = tasks.setdefault(owner[uid], DbtTask(owner[uid]))
        task.nodes.append(uid)
        task.select.append(built[uid]["name"])
        for parent in parents(uid):
            if parent in owner:
                task.upstream.add(owner[parent])
            else:
                readers.setdefault(parent, set()).add(task.task_id)
    for task in tasks.values():
        task.upstream.discard(task.task_id)
    if "publish" in tasks:
        raise ValueError("a dbt node named `publish` would clash with the reconcile DAG's publish task")
    rank = {task_id: i for i, task_id in enumerate(_topological(tasks))}
    for uid, test in sorted(nodes.items()):
        if test["resource_type"] not in ("test", "unit_test"):
            continue
        found = parents(uid)
        owners = {owner[p] for p in found if p in owner} | {t for p in found for t in readers.get(p, ())}
        if not owners:
            continue  # a test of a source no model reads: `dbt build` of a selection never runs it
        target = tasks[max(owners, key=rank.__getitem__)]
        target.tests += 1
        if len(owners) > 1 or any(p not in owner for p in test["depends_on"]["nodes"]):
            target.select.append(test["name"])
            target.upstream |= owners - {target.task_id}
    return [tasks[task_id] for task_id in _topological(tasks)]


def _topological(tasks: dict[str, DbtTask]) -> list[str]:
    waiting = {task_id: set(task.upstream) for task_id, task in tasks.items()}
    order: list[str] = []
    while waiting:
        ready = sorted(task_id for task_id, ups in waiting.items() if not ups)
        if not ready:
            raise ValueError(
                f"the dbt tasks form a cycle among {sorted(waiting)} (check task_id_of's grouping)"
            )
        order += ready
        for task_id in ready:
            del waiting[task_id]
        for ups in waiting.values():
            ups.difference_update(ready)
    return order


def validated_uri(change_set: str) -> str:
    return f"revsync://validated/{change_set}"


def gate_upstreams(tasks: list[DbtTask], manifest: dict[str, Any]) -> dict[str, list[str]]:
    """Per gate stage, the dbt tasks building a relation in the schema of that name."""
    nodes = manifest["nodes"]
    return {
        stage: [t.task_id for t in tasks if any(nodes.get(uid, {}).get("schema") == stage for uid in t.nodes)]
        for stage in GATE_STAGES
    }


def dbt_executable() -> str:
    beside = Path(sys.executable).with_name("dbt")
    return str(beside) if beside.exists() else (shutil.which("dbt") or "dbt")


def dbt_argv(command: str, *args: str, target: str = "target") -> list[str]:
    """`dbt <command>` on revsync's project with target and logs under `$REVSYNC_HOME/dbt`."""
    project, work = dbt_project_dir(), revsync_home() / "dbt"
    return [
        *(dbt_executable(), command, *args),
        *("--project-dir", str(project), "--profiles-dir", str(project)),
        *("--target-path", str(work / target), "--log-path", str(work / "logs")),
        *("--partial-parse", "--no-use-colors"),
    ]


def publish_manifest(written: Path) -> None:
    """Replace the manifest the DAG reads with `written`, atomically (the DAG processor may be reading)."""
    if written.exists():
        tmp = manifest_path().with_name(f".manifest.{os.getpid()}.json")
        shutil.copyfile(written, tmp)
        os.replace(tmp, manifest_path())


def run_dbt(argv: list[str], env: dict[str, str], pass_fds: tuple[int, ...] = ()) -> tuple[int, list[str]]:
    """Run dbt, its output into this task's log (returned: exit code, last lines); stop it if the task is."""
    process = subprocess.Popen(
        argv, env=env, cwd=revsync_home() / "dbt", stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, pass_fds=pass_fds,
    )  # fmt: skip
    try:
        tail: deque[str] = deque(maxlen=30)
        for line in process.stdout:  # type: ignore[union-attr]
            log.info("dbt: %s", line.rstrip())
            tail.append(line.rstrip())
        return process.wait(), list(tail)
    except BaseException:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
        raise


def dbt_build(
    task: DbtTask,
    dbt_vars: dict[str, Any],
    full_refresh: bool = False,
    warehouse: Path | None = None,
    lock_wait_s: float = LOCK_WAIT_S,
) -> dict[str, Any]:
    """`dbt build` of one task's selection under the warehouse lock; raises unless all of it passed."""
    warehouse = warehouse or warehouse_path()
    work = revsync_home() / "dbt"
    work.mkdir(parents=True, exist_ok=True)
    argv = dbt_argv("build", "--select", *task.select, "--indirect-selection", "cautious")
    argv += ["--vars", json.dumps(dbt_vars, sort_keys=True)] + (["--full-refresh"] if full_refresh else [])
    env = {k: v for k, v in os.environ.items() if not k.startswith("DBT_")}
    env |= {"REVSYNC_WAREHOUSE": str(warehouse), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    results_file = work / "target" / "run_results.json"
    started = time.monotonic()
    with warehouse_lock(warehouse, lock_wait_s) as lock:
        waited = time.monotonic() - started
        log.info("holding the warehouse lock on %s (waited %.1fs): %s", warehouse, waited, " ".join(argv))
        results_file.unlink(missing_ok=True)
        code, tail = run_dbt(argv, env, pass_fds=(lock.fileno(),))
        results = json.loads(results_file.read_text())["results"] if results_file.exists() else []
        publish_manifest(work / "target" / "manifest.json")
    statuses = {r["unique_id"]: r["status"] for r in results}
    failed = {uid: s for uid, s in statuses.items() if s not in ("success", "pass", "warn")}
    if code != 0 or failed:
        detail = failed or "\n".join(tail)
        raise RuntimeError(f"dbt build of {task.task_id} exited {code}; failed: {detail}")
    gone = [uid for uid in task.nodes if uid not in statuses]
    if gone:
        raise RuntimeError(
            f"{gone} are no longer in the dbt project: the DAG is older than the project; run `make manifest`"
        )
    summary = {
        "task": task.task_id,
        "built": sum(uid in statuses for uid in task.nodes),
        "tests": sum(uid.startswith(("test.", "unit_test.")) for uid in statuses),
        "waited_s": round(waited, 1),
        "seconds": round(time.monotonic() - started, 1),
    }
    log.info("%s", summary)
    return summary


def run_as_of(params: dict[str, Any], run_after: datetime | None) -> str:
    """The `as_of` dbt var: the param (ISO 8601 with a zone), else the run's time, so every task of a
    run (and a rerun of one of them later) evaluates the rules at the same instant."""
    text = str(params.get("as_of") or "").strip()
    if text:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
        if when.tzinfo is None:
            raise ValueError(f"as_of {text!r} has no time zone; add Z or an offset")
    else:
        when = run_after or datetime.now(UTC)
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def reconcile_schedule(sources: list[str], environ: dict[str, str] | None = None):  # noqa: ANN201
    """The sources' raw Assets, any of them (`REVSYNC_RECONCILE_ON=any`, the default: a source's new data
    reconciles at once) or all of them (`all`: one run once every source landed since the last run, a
    consistent cut across systems when the extracts run together)."""
    from airflow.sdk import Asset, AssetAll, AssetAny

    mode = (os.environ if environ is None else environ).get("REVSYNC_RECONCILE_ON", "any").strip().lower()
    if mode not in ("any", "all"):
        raise ValueError(f"REVSYNC_RECONCILE_ON={mode!r}: use any or all")
    return (AssetAll if mode == "all" else AssetAny)(*(Asset(asset_uri(source)) for source in sources))


def build_reconcile_dag(manifest: dict[str, Any] | None = None, sources: list[str] | None = None):
    """The `reconcile` DAG for `manifest` (default: the published one) and the enabled sources."""
    from airflow.sdk import DAG, Asset, Param, get_current_context, task

    manifest = load_manifest() if manifest is None else manifest
    grain = reconcile_grain()
    tasks = plan(manifest, grain)
    validated = [Asset(validated_uri(name)) for name in VALIDATED_CHANGE_SETS]
    sources = enabled_sources() if sources is None else sources
    reconciled = Asset(RECONCILED_URI)
    with DAG(
        dag_id=DAG_ID,
        schedule=reconcile_schedule(sources),
        start_date=datetime(2026, 1, 1),
        catchup=False,
        max_active_runs=1,
        max_active_tasks=1,
        tags=["revsync", "reconcile", "dbt"],
        doc_md=__doc__ + f"\n\nTriggered by {', '.join(f'`{asset_uri(s)}`' for s in sources)}; "
        f"{len(tasks)} dbt tasks: {', '.join(t.task_id for t in tasks)}; emits `{RECONCILED_URI}`.",
        default_args=task_defaults(),
        params={
            "full_refresh": Param(False, type="boolean", description="dbt build --full-refresh."),
            "as_of": Param(
                "",
                type="string",
                description="Evaluate the rules at this time (ISO 8601 with a zone); empty: the run's time.",
            ),
            "dbt_vars": Param({}, type="object", description="More dbt vars (thresholds, tiers)."),
            "gate_volume_band": Param(
                None,
                type=["null", "number"],
                description="Quality gate: allowed row-count swing against the previous run, 0-1 (0.5: "
                "half to double); empty: REVSYNC_GATE_VOLUME_BAND or 0.5. Raise it to accept a real jump.",
            ),
            "gate_freshness_hours": Param(
                None,
                type=["null", "number"],
                description="Quality gate: a source stream landed longer ago than this blocks; empty: "
                "REVSYNC_GATE_FRESHNESS_HOURS or 24.",
            ),
        },
    ) as dag:
        built = {}
        for spec in tasks:

            @task(
                task_id=spec.task_id,
                multiple_outputs=False,
                doc_md=f"`dbt build --select {' '.join(spec.select)}`: builds {len(spec.nodes)} "
                f"node(s) and runs their {spec.tests} test(s), under the warehouse lock.",
            )
            def build(spec: DbtTask = spec) -> dict[str, Any]:
                context = get_current_context()
                params = context["params"]
                dbt_vars = {**(params.get("dbt_vars") or {})}
                dbt_vars["as_of"] = run_as_of(params, context["dag_run"].run_after)
                return dbt_build(spec, dbt_vars, bool(params.get("full_refresh")))

            built[spec.task_id] = build()
        for spec in tasks:
            for upstream in sorted(spec.upstream):
                built[upstream] >> built[spec.task_id]

        @task(
            task_id="publish",
            outlets=[reconciled],
            multiple_outputs=False,
            doc_md=f"Emit `{RECONCILED_URI}`.",
        )
        def publish(summaries: list[dict[str, Any]]) -> dict[str, Any]:
            context = get_current_context()
            as_of = run_as_of(context["params"], context["dag_run"].run_after)
            totals = {"as_of": as_of, "tasks": len(summaries)}
            totals |= {k: sum(s[k] for s in summaries) for k in ("built", "tests")}
            if not is_postgres(warehouse_path()):  # analysts read a snapshot, never the live DuckDB file
                totals["reporting"] = publish_reporting(warehouse_path())
            context["outlet_events"][reconciled].extra = totals
            log.info("reconciled: %s", totals)
            return totals

        publish(list(built.values()))

        if grain == "project":

            @task(
                task_id="gate",
                multiple_outputs=False,
                doc_md="Quality gate checkpoints `staging`, `canonical` and `sync`, in that order, in one "
                "task (revsync.quality.gate); the first block fails the task and nothing after it runs.",
            )
            def gate_all() -> dict[str, Any]:
                context = get_current_context()
                params, run_id, try_number = context["params"], context["run_id"], context["ti"].try_number
                passed = {stage: run_gate_task(stage, params, run_id, try_number) for stage in GATE_STAGES}
                return {**passed["sync"], "stages": passed}

            sync_gate = gate_all()
            for built_task in built.values():
                built_task >> sync_gate
        else:
            gates = {}
            for stage, upstream in gate_upstreams(tasks, manifest).items():

                @task(
                    task_id=f"gate_{stage}",
                    multiple_outputs=False,
                    doc_md=f"Quality gate checkpoint `{stage}`: every suite of the `{stage}` tables "
                    "(revsync.quality.gate); blocks or quarantines as each expectation's policy says.",
                )
                def gate(stage: str = stage) -> dict[str, Any]:
                    context = get_current_context()
                    ti = context["ti"]
                    return run_gate_task(stage, context["params"], context["run_id"], ti.try_number)

                gates[stage] = gate()
                for task_id in upstream:
                    built[task_id] >> gates[stage]
            for before, after in zip(GATE_STAGES, GATE_STAGES[1:], strict=False):
                gates[before] >> gates[after]
            sync_gate = gates["sync"]

        @task(
            task_id="publish_changes",
            outlets=validated,
            multiple_outputs=False,
            doc_md="Emit the validated change-set Assets (the push DAGs' schedule): every gate passed.",
        )
        def publish_changes(sync_gate: dict[str, Any]) -> dict[str, Any]:
            context = get_current_context()
            for asset, name in zip(validated, VALIDATED_CHANGE_SETS, strict=True):
                table = f"sync.{name}"
                context["outlet_events"][asset].extra = {
                    "gate_run_id": sync_gate["gate_run_id"],
                    "table": f"validated.{name}",
                    "rows": sync_gate["validated_rows"].get(table, 0),
                    "quarantined": sync_gate["quarantined"].get(table, 0),
                }
            return sync_gate

        publish_changes(sync_gate)
    return dag


def run_gate_task(stage: str, params: dict[str, Any], run_id: str, try_number: int) -> dict[str, Any]:
    """A gate task's body: the stage's checkpoint; a block fails the task without retries."""
    from airflow.sdk.exceptions import AirflowFailException

    from revsync.quality.gate import GateBlocked, GateSettings, run_gate

    settings = GateSettings.from_env(
        volume_band=params.get("gate_volume_band"), freshness_hours=params.get("gate_freshness_hours")
    )
    try:
        report = run_gate(stage, run_id=f"{run_id}/{stage}/{try_number}", settings=settings)
    except GateBlocked as blocked:
        raise AirflowFailException(str(blocked)) from None
    summary = report.summary()
    log.info("gate %s passed: %s", stage, summary)
    return summary


def refresh_manifest() -> Path:
    """`dbt parse` into `$REVSYNC_HOME/dbt/parse`, then publish its manifest for the DAG."""
    work = revsync_home() / "dbt"
    work.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DBT_")}
    env |= {"DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "REVSYNC_WAREHOUSE": str(warehouse_path())}
    done = subprocess.run(
        dbt_argv("parse", target="parse"), env=env, cwd=work, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"dbt parse failed:\n{done.stdout[-4000:]}{done.stderr[-4000:]}")
    publish_manifest(work / "parse" / "manifest.json")
    return manifest_path()


if __name__ == "__main__":
    if sys.argv[1:] != ["manifest"]:
        raise SystemExit("usage: python -m revsync.orchestration.reconcile manifest")
    path = refresh_manifest()
    tasks = plan(load_manifest(path))
    print(f"{path}: {len(tasks)} reconcile tasks ({sum(len(t.nodes) for t in tasks)} dbt nodes)")
