"""Extraction throughput: the real connector engine landing the sandbox into DuckDB.

`extract_throughput` generates a world per scale in BENCH_EXTRACT_SCALES (default `small,medium`,
seed 42; the harness has no world cache, so each scale is generated once per invocation and reused by
every full-load run), serves it with faults off, and for each core source (stripe, hubspot, zendesk,
netsuite) runs `load_source(..., "b1")` into a fresh DuckDB warehouse file, in a fresh spawned process
per source and run so that process's peak RSS and CPU time are the extraction's own (the sandbox
server is another process; its CPU time is read from /proc). Per source and in total (the sum over the
sources, run one after another, as the per-source extract DAGs do) it reports the median of
BENCH_EXTRACT_RUNS runs (default 3) of wall seconds, records landed, records/s, client CPU seconds and
peak RSS; a run must land exactly the world's rows. A scale whose first run shows that all runs would
exceed BENCH_EXTRACT_BUDGET_S (default 900) is run once, and `notes` says so.

Last, on the same world: `POST /__sandbox__/advance?minutes=60`, an incremental run of every source
into its last full-load warehouse (batch `b2`; it must land the records the step changed), and a
no-change run (`b3`, must land 0). `<scale>_total_peak_rss_mib` side by side shows whether memory stays
flat in the size of the source.
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

from bench.sandbox import _cpu_seconds, _start_server

SOURCES = ("stripe", "hubspot", "zendesk", "netsuite")
DEFAULT_SCALES = "small,medium"
DEFAULT_RUNS = 3
DEFAULT_BUDGET_S = 900
SEED = 42
ADVANCE_MINUTES = 60
ADMIN_TIMEOUT_S = 600


def world_table(source: str, stream: str) -> str:
    """The world table a stream lists: `netsuite` + `salesOrder` -> `netsuite_sales_orders`."""
    snake = re.sub(r"(?<!^)(?=[A-Z])", "_", stream).lower()
    return f"{source}_{snake if snake.endswith('s') else snake + 's'}"


def _rss_mib(usage: resource.struct_rusage) -> float:
    return round(usage.ru_maxrss / 1024, 1)  # KiB on Linux


def extract_child(source: str, base_url: str, credentials: dict, warehouse: str, batch_id: str) -> dict:
    """Child process: `load_source` one source into `warehouse`; its own time, CPU and peak RSS."""
    import duckdb

    from revsync.connectors.load import load_source
    from revsync.connectors.registry import CONNECTORS

    before = resource.getrusage(resource.RUSAGE_SELF)
    con = duckdb.connect(warehouse)
    started = time.perf_counter()
    results = load_source(con, CONNECTORS[source], base_url, credentials, batch_id)
    seconds = time.perf_counter() - started
    con.close()
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return {
        "records": sum(r.rows for r in results.values()),
        "quarantined": sum(r.quarantined for r in results.values()),
        "seconds": seconds,
        "cpu_s": cpu,
        "rss_at_start_mib": _rss_mib(before),  # after the imports, before any request
        "peak_rss_mib": _rss_mib(after),
    }


def _extract(server: subprocess.Popen, endpoints: dict, source: str, warehouse: Path, batch: str) -> dict:
    """Run `extract_child` in a fresh spawned process; add the server's CPU seconds meanwhile."""
    info = endpoints["vendors"][source]
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
        server_cpu = _cpu_seconds(server.pid)
        future = pool.submit(
            extract_child, source, info["base_url"], info["credentials"], str(warehouse), batch
        )
        done = future.result()
        done["server_cpu_s"] = _cpu_seconds(server.pid) - server_cpu
    return done


def _expected(counts: dict) -> dict[str, int]:
    """source -> rows its full load must land: the world's rows of every stream's table."""
    from revsync.connectors.registry import CONNECTORS

    return {s: sum(counts[world_table(s, stream.name)] for stream in CONNECTORS[s].streams) for s in SOURCES}


def _full_run(server, endpoints, expected: dict, work: Path, run: int) -> dict[str, dict]:
    """One full load of every source, each into a fresh warehouse file `work/<source>_r<run>.duckdb`."""
    out = {}
    for source in SOURCES:
        warehouse = work / f"{source}_r{run}.duckdb"
        done = _extract(server, endpoints, source, warehouse, "b1")
        if done["records"] != expected[source]:
            raise AssertionError(
                f"{source} run {run}: landed {done['records']}, world has {expected[source]}"
            )
        out[source] = done
        if run > 0:  # keep run 0's file only until a later run replaces it; the last one stays
            (work / f"{source}_r{run - 1}.duckdb").unlink(missing_ok=True)
    return out


def _summarise(scale: str, runs: list[dict[str, dict]]) -> dict[str, object]:
    """Medians over runs per source, and the total (sum over sources per run, then the median)."""
    metrics: dict[str, object] = {}
    for source in SOURCES:
        med = {k: statistics.median(r[source][k] for r in runs) for k in runs[0][source]}
        metrics[f"{scale}_{source}_records"] = int(med["records"])
        metrics[f"{scale}_{source}_s"] = round(med["seconds"], 2)
        metrics[f"{scale}_{source}_rps"] = round(med["records"] / med["seconds"])
        metrics[f"{scale}_{source}_client_cpu_s"] = round(med["cpu_s"], 2)
        metrics[f"{scale}_{source}_server_cpu_s"] = round(med["server_cpu_s"], 2)
        metrics[f"{scale}_{source}_peak_rss_mib"] = med["peak_rss_mib"]
    totals = [
        {k: sum(r[s][k] for s in SOURCES) for k in ("records", "seconds", "cpu_s", "server_cpu_s")}
        for r in runs
    ]
    med = {k: statistics.median(t[k] for t in totals) for k in totals[0]}
    metrics[f"{scale}_total_records"] = int(med["records"])
    metrics[f"{scale}_total_s"] = round(med["seconds"], 2)
    metrics[f"{scale}_total_rps"] = round(med["records"] / med["seconds"])
    metrics[f"{scale}_total_client_cpu_s"] = round(med["cpu_s"], 2)
    metrics[f"{scale}_total_server_cpu_s"] = round(med["server_cpu_s"], 2)
    metrics[f"{scale}_total_peak_rss_mib"] = max(metrics[f"{scale}_{s}_peak_rss_mib"] for s in SOURCES)
    metrics[f"{scale}_rss_at_start_mib"] = max(r[s]["rss_at_start_mib"] for r in runs for s in SOURCES)
    return metrics


def _admin(endpoints: dict, path: str, method: str = "GET", **params) -> dict:
    import httpx

    url = f"{endpoints['vendors']['stripe']['base_url']}/__sandbox__/{path}"
    response = httpx.request(method, url, params=params, timeout=ADMIN_TIMEOUT_S)
    response.raise_for_status()
    return response.json()


def _incremental(scale: str, server, endpoints: dict, work: Path, last_run: int) -> dict[str, object]:
    """Advance the world, then an incremental (`b2`) and a no-change (`b3`) run of every source."""
    from revsync.connectors.registry import CONNECTORS

    step_started = int(time.time())
    started = time.perf_counter()
    _admin(endpoints, "advance", "POST", minutes=ADVANCE_MINUTES)
    metrics: dict[str, object] = {f"{scale}_advance_s": round(time.perf_counter() - started, 2)}
    changed = _admin(endpoints, "counts", changed_since=step_started)
    expected = sum(changed[world_table(s, t.name)] for s in SOURCES for t in CONNECTORS[s].streams)
    for label, batch in (("incremental", "b2"), ("nochange", "b3")):
        records, seconds = 0, 0.0
        for source in SOURCES:
            done = _extract(server, endpoints, source, work / f"{source}_r{last_run}.duckdb", batch)
            metrics[f"{scale}_{label}_{source}_records"] = done["records"]
            metrics[f"{scale}_{label}_{source}_s"] = round(done["seconds"], 2)
            records, seconds = records + done["records"], seconds + done["seconds"]
        metrics[f"{scale}_{label}_records"] = records
        metrics[f"{scale}_{label}_s"] = round(seconds, 2)
    metrics[f"{scale}_incremental_expected_records"] = expected
    metrics[f"{scale}_incremental_ok"] = (
        metrics[f"{scale}_incremental_records"] == expected and metrics[f"{scale}_nochange_records"] == 0
    )
    return metrics


def _generate(scale: str, world_dir: Path) -> float:
    started = time.perf_counter()
    command = [sys.executable, "-m", "sandbox", "generate", "--out", str(world_dir), "--scale", scale]
    command += ["--seed", str(SEED)]
    subprocess.run(command, check=True, capture_output=True, text=True)
    return time.perf_counter() - started


def bench_scale(scale: str, runs: int, budget_s: float) -> tuple[dict[str, object], str]:
    """Every measurement at one scale; returns (metrics, a note when fewer runs than asked were made)."""
    work = Path(tempfile.mkdtemp(prefix=f"bench_extract_{scale}_"))
    try:
        scale_started = time.perf_counter()
        metrics: dict[str, object] = {f"{scale}_generate_s": round(_generate(scale, work), 1)}
        server, endpoints = _start_server(work)
        try:
            expected = _expected(_admin(endpoints, "counts"))
            run_started = time.perf_counter()
            done = [_full_run(server, endpoints, expected, work, 0)]
            run_s = time.perf_counter() - run_started
            projected = time.perf_counter() - scale_started + (runs - 1) * run_s
            note = ""
            if runs > 1 and projected > budget_s:
                note = f"{scale}: 1 run ({runs} would take ~{projected:.0f} s > {budget_s:.0f} s budget)"
                runs = 1
            done += [_full_run(server, endpoints, expected, work, run) for run in range(1, runs)]
            metrics[f"{scale}_runs"] = runs
            metrics.update(_summarise(scale, done))
            metrics.update(_incremental(scale, server, endpoints, work, runs - 1))
            return metrics, note
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def extract_throughput() -> dict[str, object]:
    scales = [
        s.strip() for s in os.environ.get("BENCH_EXTRACT_SCALES", DEFAULT_SCALES).split(",") if s.strip()
    ]
    runs = int(os.environ.get("BENCH_EXTRACT_RUNS", DEFAULT_RUNS))
    budget_s = float(os.environ.get("BENCH_EXTRACT_BUDGET_S", DEFAULT_BUDGET_S))
    metrics: dict[str, object] = {"scales": ",".join(scales)}
    notes = []
    for scale in scales:
        scale_metrics, note = bench_scale(scale, runs, budget_s)
        metrics.update(scale_metrics)
        notes += [note] if note else []
    peaks = [metrics[f"{s}_total_peak_rss_mib"] for s in scales]
    metrics["peak_rss_mib_by_scale"] = " / ".join(f"{s}={p}" for s, p in zip(scales, peaks, strict=True))
    metrics["notes"] = "; ".join(notes) or f"median of {runs} runs at every scale"
    return metrics


if __name__ == "__main__":
    import json

    print(json.dumps(extract_throughput(), indent=2))
