"""Quality gate: the three stages' checkpoints against the dbt build they gate, at one scale.

BENCH_GATE_SCALE (default `medium`) and BENCH_GATE_SEED (42): generate the world, serve it, extract the
four core sources (as bench.reconcile does) and time one `dbt build` of the whole project (models and
its 400-odd data tests). With BENCH_GATE_WAREHOUSE set to an already built warehouse, a copy of it is
rebuilt with `dbt build --full-refresh` instead (the same work, without generating and extracting).
Then `revsync gate` (staging, canonical, sync: every suite, the volume and freshness checks, the
quarantine and the publication of the validated change sets, Data Docs) runs BENCH_GATE_RUNS times
(default 3) in a fresh process each; the median is `gate_s`, with each stage's median and the
process's peak RSS. Target (issue 5): `gate_to_dbt_build` <= 0.25.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.reconcile import BIN, _dbt_build, _extract, _run
from bench.sandbox import LARGE_WORLD_START_S
from sandbox.server.background import serve_in_background

TARGET_RATIO = 0.25
STAGE_LINE = re.compile(r"gate (\w+): passed (\d+)/(\d+) expectations of (\d+) suites in ([\d.]+)s")


def _gate(warehouse: Path, docs: Path) -> tuple[float, float, dict[str, float], int]:
    """One `revsync gate` process: wall seconds, peak RSS MiB, seconds per stage, expectations."""
    argv = [str(BIN / "revsync"), "gate", "--warehouse", str(warehouse), "--docs", str(docs)]
    with tempfile.TemporaryFile("w+") as output:
        started = time.perf_counter()
        child = subprocess.Popen(argv, stdout=output, stderr=subprocess.STDOUT, text=True)
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - started
        output.seek(0)
        text = output.read()
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"revsync gate failed on a clean world: {text[-3000:]}")
    stages = {m.group(1): float(m.group(5)) for m in STAGE_LINE.finditer(text)}
    expectations = sum(int(m.group(3)) for m in STAGE_LINE.finditer(text))
    return seconds, round(usage.ru_maxrss / 1024, 1), stages, expectations


def _rows(warehouse: Path, since: datetime) -> int:
    """Rows of every gated table in the gate runs since `since` (their row_count checks)."""
    import duckdb

    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        (rows,) = con.execute(
            "select sum(observed::bigint) from revsync_state.quality_results "
            "where expectation = 'row_count' and validated_at >= ?",
            [since.replace(tzinfo=None)],
        ).fetchall()[0]
    finally:
        con.close()
    return int(rows or 0)


def _prepare(work: Path, scale: str, seed: int) -> tuple[Path, float, float, str]:
    """A built warehouse in `work`: (path, dbt build seconds, its peak RSS MiB, how it was made)."""
    warehouse = work / "warehouse.duckdb"
    as_of = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    given = os.environ.get("BENCH_GATE_WAREHOUSE")
    if given:
        shutil.copy(given, warehouse)
        if Path(f"{given}.wal").exists():  # committed work DuckDB has not checkpointed into the file yet
            shutil.copy(f"{given}.wal", f"{warehouse}.wal")
        seconds, rss = _dbt_build(warehouse, work, as_of, "--full-refresh")
        return warehouse, seconds, rss, f"copy of {given}, dbt build --full-refresh"
    world = work / "world"
    _run(
        [
            str(BIN / "revsync"),
            "sandbox",
            "generate",
            "--out",
            str(world),
            "--scale",
            scale,
            "--seed",
            str(seed),
        ]
    )
    with serve_in_background(world, 0, "none", start_timeout_s=LARGE_WORLD_START_S) as (_, _server):
        _extract(world, warehouse)
    seconds, rss = _dbt_build(warehouse, work, as_of)
    return warehouse, seconds, rss, f"generated {scale} seed {seed}, extracted, dbt build"


def gate_time() -> dict[str, object]:
    scale = os.environ.get("BENCH_GATE_SCALE", "medium")
    seed = int(os.environ.get("BENCH_GATE_SEED", "42"))
    runs = int(os.environ.get("BENCH_GATE_RUNS", "3"))
    work = Path(tempfile.mkdtemp(prefix=f"bench_gate_{scale}_"))
    try:
        warehouse, dbt_s, dbt_rss, made = _prepare(work, scale, seed)
        measured = [_gate(warehouse, work / "quality") for _ in range(runs - 1)]
        last_started = datetime.now(UTC)
        measured.append(_gate(warehouse, work / "quality"))
        gate_s = statistics.median(m[0] for m in measured)
        rows = _rows(warehouse, last_started)
        metrics: dict[str, object] = {
            "scale": scale,
            "warehouse": made,
            "dbt_build_s": round(dbt_s, 1),
            "dbt_build_peak_rss_mib": dbt_rss,
            "gate_runs": runs,
            "gate_s": round(gate_s, 1),
            "gate_peak_rss_mib": max(m[1] for m in measured),
            "expectations": measured[-1][3],
            "rows_validated": rows,
            "rows_per_s": round(rows / gate_s),
        }
        for stage in measured[0][2]:
            metrics[f"gate_{stage}_s"] = round(statistics.median(m[2].get(stage, 0.0) for m in measured), 1)
        metrics["gate_to_dbt_build"] = round(gate_s / dbt_s, 3)
        metrics["target_gate_to_dbt_build"] = TARGET_RATIO
        metrics["pass"] = metrics["gate_to_dbt_build"] <= TARGET_RATIO
        return metrics
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    print(json.dumps(gate_time(), indent=2))
    sys.exit(0)
