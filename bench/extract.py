"""Extraction throughput: the real connector engine landing the sandbox into DuckDB.

`extract_throughput` generates a world per scale in BENCH_EXTRACT_SCALES (default `small,medium`,
seed 42; the harness has no world cache, so each scale is generated once per invocation and reused by
every full-load run), serves it with faults off, and for each core source (stripe, hubspot, zendesk,
netsuite) runs `load_source(..., "b1")` into a fresh DuckDB warehouse file opened as the extract DAGs
open it (`open_warehouse`: revsync's DuckDB memory limit and spill folder), in a fresh spawned process
per source and run so that process's peak RSS and CPU time are the extraction's own (the sandbox
server is another process; its CPU time is read from /proc). Per source and in total (the sum over the
sources, run one after another, as the per-source extract DAGs do) it reports the median of
BENCH_EXTRACT_RUNS runs (default 3) of wall seconds, records landed, records/s, client CPU seconds,
records per client CPU-second (the engine's capacity without waits), seconds spent pacing to the
vendors' advertised rate limits, server CPU seconds and peak RSS. A run must land exactly the world's
rows; a source that fails (or lands other counts) is reported with its error, the seconds and the RSS
it took, is not rerun, and is left out of the total (`<scale>_total_sources` names what it sums), and
`pass` is false. A scale whose first run shows that all runs would exceed BENCH_EXTRACT_BUDGET_S
(default 900) is run once, and `notes` says so.

Last, on the same world: `POST /__sandbox__/advance?minutes=60`, an incremental run of every source
whose full load succeeded into its last full-load warehouse (batch `b2`; it must land the records the
step changed), and a no-change run (`b3`, must land 0). `peak_rss_mib_by_scale` shows side by side
whether memory stays flat in the size of the source.
"""

from __future__ import annotations

import logging
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_context
from pathlib import Path

from bench.sandbox import LARGE_WORLD_START_S, _cpu_seconds
from sandbox.server.background import serve_in_background
from sandbox.world.streams import tables_of

SOURCES = ("stripe", "hubspot", "zendesk", "netsuite")
DEFAULT_SCALES = "small,medium"
DEFAULT_RUNS = 3
DEFAULT_BUDGET_S = 900
SEED = 42
ADVANCE_MINUTES = 60
ADMIN_TIMEOUT_S = 600


def _rss_mib(usage: resource.struct_rusage) -> float:
    return round(usage.ru_maxrss / 1024, 1)  # KiB on Linux


class _WaitLog(logging.Handler):
    """Sums the connector fetcher's pacing and retry waits from its log records (seconds, count)."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.waits = {"pacing": [0.0, 0], "retrying": [0.0, 0]}

    def emit(self, record: logging.LogRecord) -> None:
        kind = str(record.msg).split(" ", 1)[0]
        if kind in self.waits and isinstance(record.args, tuple) and len(record.args) >= 3:
            self.waits[kind][0] += float(record.args[2])
            self.waits[kind][1] += 1


def extract_child(source: str, base_url: str, credentials: dict, warehouse: str, batch_id: str) -> dict:
    """Child process: `load_source` one source into `warehouse`; its own time, CPU and peak RSS.

    A failure (e.g. DuckDB out of memory) is returned as `error`, with the time and RSS it took.
    """
    from revsync.connectors.load import load_source
    from revsync.connectors.registry import CONNECTORS
    from revsync.warehouse.connect import open_warehouse

    waits = _WaitLog()
    http_log = logging.getLogger("revsync.connectors.http")
    http_log.addHandler(waits)
    http_log.setLevel(logging.INFO)
    before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    records, quarantined, error = 0, 0, None
    try:
        with open_warehouse(warehouse) as con:  # as the extract DAGs open it (memory limit, spill dir)
            results = load_source(con, CONNECTORS[source], base_url, credentials, batch_id)
        records = sum(r.rows for r in results.values())
        quarantined = sum(r.quarantined for r in results.values())
    except Exception as exc:
        error = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "records": records,
        "quarantined": quarantined,
        "seconds": seconds,
        "cpu_s": after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime,
        "paced_s": waits.waits["pacing"][0],
        "paced": waits.waits["pacing"][1],
        "retries": waits.waits["retrying"][1],
        "rss_at_start_mib": _rss_mib(before),  # after the imports, before any request
        "peak_rss_mib": _rss_mib(after),
        "error": error,
    }


def _extract(server: subprocess.Popen, endpoints: dict, source: str, warehouse: Path, batch: str) -> dict:
    """Run `extract_child` in a fresh spawned process; add the server's CPU seconds meanwhile."""
    info = endpoints["vendors"][source]
    server_cpu = _cpu_seconds(server.pid)
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
        args = (source, info["base_url"], info["credentials"], str(warehouse), batch)
        try:
            done = pool.submit(extract_child, *args).result()
        except BrokenProcessPool as exc:  # the child died (e.g. killed for memory): no figures of its own
            done = {"records": 0, "seconds": float("nan"), "peak_rss_mib": float("nan"), "error": repr(exc)}
    done["server_cpu_s"] = _cpu_seconds(server.pid) - server_cpu
    return done


def _expected(counts: dict) -> dict[str, int]:
    """source -> rows its full load must land: the world's rows of every stream's table."""
    return {s: sum(counts[t] for t in tables_of(s).values()) for s in SOURCES}


def _remove_warehouse(path: Path) -> None:
    """A warehouse file with its WAL, lock file and spill folder."""
    for extra in (".wal", ".lock"):
        path.with_name(path.name + extra).unlink(missing_ok=True)
    shutil.rmtree(path.with_name(path.name + ".tmp"), ignore_errors=True)
    path.unlink(missing_ok=True)


def _full_run(server, endpoints, expected: dict, work: Path, run: int, sources) -> dict[str, dict]:
    """One full load of each source into a fresh warehouse file `work/<source>_r<run>.duckdb`; a run
    that fails or lands other than the world's rows gets an `error`."""
    out = {}
    for source in sources:
        done = _extract(server, endpoints, source, work / f"{source}_r{run}.duckdb", "b1")
        if done["error"] is None and done["records"] != expected[source]:
            done["error"] = f"landed {done['records']} records, the world has {expected[source]}"
        out[source] = done
        _remove_warehouse(work / f"{source}_r{run - 1}.duckdb")  # the last good run's file stays
        if done["error"] is not None:
            _remove_warehouse(work / f"{source}_r{run}.duckdb")
    return out


def _source_metrics(prefix: str, runs: list[dict]) -> dict[str, object]:
    """Medians over the runs of one source."""
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0] if k != "error"}
    return {
        f"{prefix}_records": int(med["records"]),
        f"{prefix}_s": round(med["seconds"], 2),
        f"{prefix}_rps": round(med["records"] / med["seconds"]),
        f"{prefix}_client_cpu_s": round(med["cpu_s"], 2),
        f"{prefix}_rps_per_client_cpu_s": round(med["records"] / max(med["cpu_s"], 1e-3)),
        f"{prefix}_paced_s": round(med["paced_s"], 1),
        f"{prefix}_server_cpu_s": round(med["server_cpu_s"], 2),
        f"{prefix}_peak_rss_mib": med["peak_rss_mib"],
    }


def _summarise(scale: str, runs: dict[str, list[dict]]) -> dict[str, object]:
    """Per source the medians over its runs, or its first error (with the time and RSS it took to
    fail); the total sums the sources that succeeded, run by run, then takes the median."""
    metrics: dict[str, object] = {}
    good = [s for s in SOURCES if all(r["error"] is None for r in runs[s])]
    for source in SOURCES:
        if source in good:
            metrics.update(_source_metrics(f"{scale}_{source}", runs[source]))
        else:
            failed = next(r for r in runs[source] if r["error"] is not None)
            metrics[f"{scale}_{source}_error"] = failed["error"]
            metrics[f"{scale}_{source}_failed_after_s"] = round(failed["seconds"], 1)
            metrics[f"{scale}_{source}_peak_rss_mib"] = failed["peak_rss_mib"]
    if good:
        keys = ("records", "seconds", "cpu_s", "paced_s", "server_cpu_s")
        totals = [
            {k: sum(r[k] for r in per_run) for k in keys}
            for per_run in zip(*(runs[s] for s in good), strict=True)
        ]
        med = {k: statistics.median(t[k] for t in totals) for k in keys}
        metrics[f"{scale}_total_sources"] = ",".join(good)
        metrics[f"{scale}_total_records"] = int(med["records"])
        metrics[f"{scale}_total_s"] = round(med["seconds"], 2)
        metrics[f"{scale}_total_rps"] = round(med["records"] / med["seconds"])
        metrics[f"{scale}_total_client_cpu_s"] = round(med["cpu_s"], 2)
        metrics[f"{scale}_total_rps_per_client_cpu_s"] = round(med["records"] / max(med["cpu_s"], 1e-3))
        metrics[f"{scale}_total_paced_s"] = round(med["paced_s"], 1)
        metrics[f"{scale}_total_server_cpu_s"] = round(med["server_cpu_s"], 2)
        metrics[f"{scale}_rss_at_start_mib"] = max(r["rss_at_start_mib"] for s in good for r in runs[s])
    metrics[f"{scale}_total_peak_rss_mib"] = max(metrics[f"{scale}_{s}_peak_rss_mib"] for s in SOURCES)
    return metrics


def _admin(endpoints: dict, path: str, method: str = "GET", **params) -> dict:
    import httpx

    url = f"{endpoints['vendors']['stripe']['base_url']}/__sandbox__/{path}"
    response = httpx.request(method, url, params=params, timeout=ADMIN_TIMEOUT_S)
    response.raise_for_status()
    return response.json()


def _incremental(scale: str, server, endpoints: dict, work: Path, run: int, sources) -> dict[str, object]:
    """Advance the world, then an incremental (`b2`) and a no-change (`b3`) run of each source into
    the warehouse of its last full load (`run`)."""
    step_started = int(time.time())
    started = time.perf_counter()
    _admin(endpoints, "advance", "POST", minutes=ADVANCE_MINUTES)
    metrics: dict[str, object] = {f"{scale}_advance_s": round(time.perf_counter() - started, 2)}
    changed = _admin(endpoints, "counts", changed_since=step_started)
    expected = sum(changed[t] for s in sources for t in tables_of(s).values())
    errors = []
    for label, batch in (("incremental", "b2"), ("nochange", "b3")):
        records, seconds = 0, 0.0
        for source in sources:
            done = _extract(server, endpoints, source, work / f"{source}_r{run}.duckdb", batch)
            errors += [f"{label} {source}: {done['error']}"] if done["error"] else []
            metrics[f"{scale}_{label}_{source}_records"] = done["records"]
            metrics[f"{scale}_{label}_{source}_s"] = round(done["seconds"], 2)
            records, seconds = records + done["records"], seconds + done["seconds"]
        metrics[f"{scale}_{label}_records"] = records
        metrics[f"{scale}_{label}_s"] = round(seconds, 2)
    metrics[f"{scale}_incremental_expected_records"] = expected
    metrics[f"{scale}_incremental_ok"] = not errors and (
        metrics[f"{scale}_incremental_records"] == expected and metrics[f"{scale}_nochange_records"] == 0
    )
    if errors:
        metrics[f"{scale}_incremental_errors"] = "; ".join(errors)
    return metrics


def _generate(scale: str, world_dir: Path) -> float:
    started = time.perf_counter()
    command = [sys.executable, "-m", "sandbox", "generate", "--out", str(world_dir), "--scale", scale]
    subprocess.run([*command, "--seed", str(SEED)], check=True, capture_output=True, text=True)
    return time.perf_counter() - started


def _measure(scale: str, server, endpoints: dict, work: Path, runs: int, budget_s: float, since: float):
    """Full-load runs (one when more would exceed the budget; a failed source is not rerun), then the
    incremental ones on the sources whose full loads all succeeded."""
    expected = _expected(_admin(endpoints, "counts"))
    run_started = time.perf_counter()
    first = _full_run(server, endpoints, expected, work, 0, SOURCES)
    per_source = {s: [first[s]] for s in SOURCES}
    projected = time.perf_counter() - since + (runs - 1) * (time.perf_counter() - run_started)
    notes = []
    if runs > 1 and projected > budget_s:
        notes.append(f"{scale}: 1 run ({runs} would take ~{projected:.0f} s > the {budget_s:.0f} s budget)")
        runs = 1
    for run in range(1, runs):
        good = [s for s in SOURCES if per_source[s][-1]["error"] is None]
        for source, done in _full_run(server, endpoints, expected, work, run, good).items():
            per_source[source].append(done)
    good = [s for s in SOURCES if all(r["error"] is None for r in per_source[s])]
    notes += [f"{scale} {s} failed: {per_source[s][-1]['error']}" for s in SOURCES if s not in good]
    metrics: dict[str, object] = {f"{scale}_runs": runs, **_summarise(scale, per_source)}
    if good:
        metrics.update(_incremental(scale, server, endpoints, work, runs - 1, good))
    return metrics, notes


def bench_scale(scale: str, runs: int, budget_s: float) -> tuple[dict[str, object], list[str]]:
    """Every measurement at one scale on one generated world; returns (metrics, notes)."""
    work = Path(tempfile.mkdtemp(prefix=f"bench_extract_{scale}_"))
    try:
        started = time.perf_counter()
        generate_s = _generate(scale, work)
        with serve_in_background(work, 0, "none", start_timeout_s=LARGE_WORLD_START_S) as (endpoints, server):
            metrics, notes = _measure(scale, server, endpoints, work, runs, budget_s, started)
            return {f"{scale}_generate_s": round(generate_s, 1), **metrics}, notes
    finally:
        shutil.rmtree(work, ignore_errors=True)


def extract_throughput() -> dict[str, object]:
    scales = [s.strip() for s in os.environ.get("BENCH_EXTRACT_SCALES", DEFAULT_SCALES).split(",")]
    scales = [s for s in scales if s]
    runs = int(os.environ.get("BENCH_EXTRACT_RUNS", DEFAULT_RUNS))
    budget_s = float(os.environ.get("BENCH_EXTRACT_BUDGET_S", DEFAULT_BUDGET_S))
    metrics: dict[str, object] = {"scales": ",".join(scales)}
    notes: list[str] = []
    for scale in scales:
        scale_metrics, scale_notes = bench_scale(scale, runs, budget_s)
        metrics.update(scale_metrics)
        notes += scale_notes
    peaks = " / ".join(f"{s}={metrics[f'{s}_total_peak_rss_mib']}" for s in scales)
    metrics["peak_rss_mib_by_scale"] = peaks
    metrics["pass"] = all(f"{s}_{src}_error" not in metrics for s in scales for src in SOURCES) and all(
        metrics.get(f"{s}_incremental_ok") for s in scales
    )
    metrics["notes"] = "; ".join(notes) or f"median of {runs} runs at every scale"
    return metrics


if __name__ == "__main__":
    import json

    print(json.dumps(extract_throughput(), indent=2))
