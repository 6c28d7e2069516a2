"""Reconciliation: the dbt project's full and incremental build on an extracted world, and its score.

For each scale in BENCH_RECONCILE_SCALES (default `small,medium`) and seed in BENCH_RECONCILE_SEEDS
(default `42`): generate the world, serve it (faults off), extract the four core sources with
`revsync extract` (one process per source, in parallel, as the per-source extract DAGs run; landing is
serialised by the warehouse lock; streams with a refresh interval, i.e. Stripe usage, are left out:
bench.extract measures them), then
- `dbt build` of the whole project (models and tests) at the extraction's as-of: the first build on
  the fresh warehouse, then BENCH_RECONCILE_RUNS - 1 (default 2) `--full-refresh` rebuilds; the median
  of the runs is `full_build_s`;
- `revsync sandbox score`'s numbers against the world's ground truth: the lowest precision and recall
  over the 14 types, and the types that are off;
- a change step (`POST /__sandbox__/advance?minutes=60`, the sandbox's lifecycle events: sign-ups,
  upgrades, payment failures, renewals, cancellations, refunds), an incremental extract, and an
  incremental `dbt build` (`incremental_build_s`, and its ratio to the full build), scored again.
Each build's peak RSS is the dbt process's own (it runs as a child). `pass` is true when every score
is 1.00 for every type.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

from bench.sandbox import LARGE_WORLD_START_S
from sandbox.server.background import serve_in_background

SOURCES = ("stripe", "hubspot", "zendesk", "netsuite")
PROJECT = Path(__file__).resolve().parent.parent / "dbt_project"
BIN = Path(sys.executable).parent
ADVANCE_MINUTES = 60
TIMEOUT_S = 3600


def _run(argv: list[str], env: dict | None = None) -> tuple[float, float]:
    """Run a child to completion; (wall seconds, the child's own peak RSS in MiB, from wait4).
    Raises with the tail of its output when it fails."""
    with tempfile.TemporaryFile("w+") as output:
        started = time.perf_counter()
        child = subprocess.Popen(argv, env=env, stdout=output, stderr=subprocess.STDOUT, text=True)
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        if child.returncode != 0:
            output.seek(0)
            raise RuntimeError(f"{' '.join(argv[:3])} failed ({child.returncode}): {output.read()[-3000:]}")
    return seconds, round(usage.ru_maxrss / 1024, 1)


def _streams(source: str) -> list[str]:
    """`--stream` options for the source's streams read every micro-batch: those with a refresh
    interval (Stripe usage, a request per customer) are left to bench.extract."""
    from revsync.connectors.registry import get

    chosen = [s.name for s in get(source).streams if s.refresh_every_s is None]
    return [arg for name in chosen for arg in ("--stream", name)]


def _extract(world: Path, warehouse: Path) -> float:
    """Every core source in parallel, one `revsync extract` process each; the wall seconds."""
    started = time.perf_counter()
    argv = [str(BIN / "revsync"), "extract", "--sandbox", str(world), "--warehouse", str(warehouse)]
    with ThreadPoolExecutor(len(SOURCES)) as pool:
        list(pool.map(lambda source: _run([*argv, source, *_streams(source)]), SOURCES))
    return time.perf_counter() - started


def _dbt_build(warehouse: Path, work: Path, as_of: str, *flags: str) -> tuple[float, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REVSYNC_", "DBT_"))}
    env |= {"REVSYNC_WAREHOUSE": str(warehouse), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    argv = [str(BIN / "dbt"), "build", "--project-dir", str(PROJECT), "--profiles-dir", str(PROJECT)]
    argv += ["--target-path", str(work / "target"), "--log-path", str(work / "logs")]
    argv += ["--vars", json.dumps({"as_of": as_of}), *flags]
    return _run(argv, env)


def _score(world: Path, warehouse: Path) -> dict[str, object]:
    from revsync.score import score

    result = score(world / "ground_truth.jsonl", warehouse)
    off = [s.mismatch_type for s in result.types.values() if (s.precision, s.recall) != (1.0, 1.0)]
    return {
        "expected": sum(s.expected for s in result.types.values()),
        "min_precision": round(min(s.precision for s in result.types.values()), 4),
        "min_recall": round(min(s.recall for s in result.types.values()), 4),
        "types_off": ",".join(off) or "none",
    }


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _admin(endpoints: dict, path: str, method: str = "POST", **params) -> dict:
    import httpx

    url = f"{endpoints['vendors']['stripe']['base_url']}/__sandbox__/{path}"
    response = httpx.request(method, url, params=params, timeout=TIMEOUT_S)
    response.raise_for_status()
    return response.json()


def _measure(scale: str, seed: int, runs: int, work: Path) -> dict[str, object]:
    prefix = f"{scale}_s{seed}"
    world, warehouse = work / "world", work / "warehouse.duckdb"
    started = time.perf_counter()
    generate = [str(BIN / "revsync"), "sandbox", "generate", "--out", str(world), "--scale", scale]
    _run([*generate, "--seed", str(seed)])
    metrics: dict[str, object] = {f"{prefix}_generate_s": round(time.perf_counter() - started, 1)}
    with serve_in_background(world, 0, "none", start_timeout_s=LARGE_WORLD_START_S) as (endpoints, _server):
        metrics[f"{prefix}_extract_s"] = round(_extract(world, warehouse), 1)
        as_of = _now()
        builds = [_dbt_build(warehouse, work, as_of)]
        builds += [_dbt_build(warehouse, work, as_of, "--full-refresh") for _ in range(runs - 1)]
        metrics[f"{prefix}_full_build_runs"] = runs
        metrics[f"{prefix}_full_build_s"] = round(statistics.median(s for s, _ in builds), 1)
        metrics[f"{prefix}_full_build_peak_rss_mib"] = max(r for _, r in builds)
        metrics.update({f"{prefix}_full_{k}": v for k, v in _score(world, warehouse).items()})

        step_started = time.perf_counter()
        _admin(endpoints, "advance", minutes=ADVANCE_MINUTES)
        metrics[f"{prefix}_advance_s"] = round(time.perf_counter() - step_started, 1)
        metrics[f"{prefix}_incremental_extract_s"] = round(_extract(world, warehouse), 1)
        seconds, rss = _dbt_build(warehouse, work, _now())
        metrics[f"{prefix}_incremental_build_s"] = round(seconds, 1)
        metrics[f"{prefix}_incremental_build_peak_rss_mib"] = rss
        metrics[f"{prefix}_incremental_to_full_build"] = round(seconds / metrics[f"{prefix}_full_build_s"], 3)
        metrics.update({f"{prefix}_after_advance_{k}": v for k, v in _score(world, warehouse).items()})
    return metrics


def reconcile_build() -> dict[str, object]:
    scales = [s for s in os.environ.get("BENCH_RECONCILE_SCALES", "small,medium").split(",") if s]
    seeds = [int(s) for s in os.environ.get("BENCH_RECONCILE_SEEDS", "42").split(",") if s]
    runs = int(os.environ.get("BENCH_RECONCILE_RUNS", "3"))
    metrics: dict[str, object] = {"scales": ",".join(scales), "seeds": ",".join(map(str, seeds))}
    for scale in scales:
        for seed in seeds:
            work = Path(tempfile.mkdtemp(prefix=f"bench_reconcile_{scale}_{seed}_"))
            try:
                metrics.update(_measure(scale, seed, runs, work))
            except Exception as exc:  # one failed world is reported, the others still run
                metrics[f"{scale}_s{seed}_error"] = str(exc)[-1500:]
            finally:
                shutil.rmtree(work, ignore_errors=True)
    scores = [v for k, v in metrics.items() if k.endswith(("_min_precision", "_min_recall"))]
    metrics["pass"] = (
        bool(scores) and all(v == 1.0 for v in scores) and not any(k.endswith("_error") for k in metrics)
    )
    return metrics


if __name__ == "__main__":
    print(json.dumps(reconcile_build(), indent=2))
