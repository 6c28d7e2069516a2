"""Push: NetSuite write throughput against the sandbox's rate-limited ERP, and the sandbox's own ceiling.

BENCH_PUSH_SCALE (default 20000 customers) and BENCH_PUSH_SEED (42): generate the world, serve it
(faults off), extract the four core sources, `dbt build`, `revsync gate` (as tests/integration/
test_push.py prepares a gated warehouse). With BENCH_PUSH_WAREHOUSE (a gated warehouse) and
BENCH_PUSH_WORLD (the world directory it was extracted from, never pushed to) set, copies of those are
used instead; BENCH_PUSH_KEEP=DIR keeps the prepared pair there for such reuse.

Then BENCH_PUSH_RUNS times (default 3), each on a fresh copy of the gated warehouse and of the world
(the push writes to both), served with `--faults netsuite=realistic` (BENCH_PUSH_FAULTS): the sandbox
admits 15 concurrent NetSuite requests, each holding its slot 0.05 s, so the ERP's allowed rate is
15 / 0.05 = 300 requests/s. One `revsync push netsuite` process per run; the median run's delivery
seconds give `writes_per_s` and `to_allowed_rate` (target >= 0.90), with the change-to-acknowledgement
latency from the outbox (acknowledged_at - enqueued_at; and acknowledged_at - source_changed_at,
which includes the world's own age, so it is only indicative), requests, 429s, dead letters (must be
0), the push process's peak RSS and the server's CPU seconds.

The ceiling: on another fresh world, a plain asyncio httpx client (the same OAuth 1.0 signing, 15 in
flight, nothing else: no outbox, no warehouse) PUTs the same change set in the same order. That is
what this machine and sandbox can do; `push_to_ceiling` is the push's share of it.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.reconcile import BIN, _dbt_build, _extract, _run
from bench.sandbox import LARGE_WORLD_START_S, _cpu_seconds
from sandbox.server.background import serve_in_background

ALLOWED_RATE = 15 / 0.05  # sandbox.server.faults: NETSUITE_CONCURRENCY / NETSUITE_SERVICE_TIME
TARGET_RATIO = 0.90
WORLD_FILES = ("world.duckdb", "ground_truth.jsonl")


def _prepare(work: Path, scale: str, seed: int) -> tuple[Path, Path, str]:
    """(gated warehouse, pristine world dir, how they were made)."""
    given_wh, given_world = os.environ.get("BENCH_PUSH_WAREHOUSE"), os.environ.get("BENCH_PUSH_WORLD")
    if given_wh and given_world:
        return Path(given_wh), Path(given_world), f"copies of {given_wh} and {given_world}"
    keep = os.environ.get("BENCH_PUSH_KEEP")
    home = Path(keep) if keep else work / "prepared"
    home.mkdir(parents=True, exist_ok=True)
    warehouse, world = home / "warehouse.duckdb", home / "world"
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
    pristine = home / "pristine"
    pristine.mkdir(exist_ok=True)
    for name in WORLD_FILES:  # the world before extraction touched it (serving does not change it)
        shutil.copy(world / name, pristine / name)
    with serve_in_background(world, 0, "none", start_timeout_s=LARGE_WORLD_START_S) as (_, _server):
        _extract(world, warehouse)
    as_of = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    _dbt_build(warehouse, home, as_of)
    _run([str(BIN / "revsync"), "gate", "--warehouse", str(warehouse), "--docs", str(home / "quality")])
    shutil.rmtree(world, ignore_errors=True)
    return warehouse, pristine, f"generated {scale} seed {seed}, extracted, dbt build, gated"


def _fresh(warehouse: Path, world: Path, into: Path) -> tuple[Path, Path]:
    into.mkdir(parents=True)
    copy = into / "warehouse.duckdb"
    shutil.copy(warehouse, copy)
    if Path(f"{warehouse}.wal").exists():
        shutil.copy(f"{warehouse}.wal", f"{copy}.wal")
    (into / "world").mkdir()
    for name in WORLD_FILES:
        shutil.copy(world / name, into / "world" / name)
    return copy, into / "world"


def _percentiles(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    values = sorted(values)
    return (
        round(statistics.median(values), 3),
        round(values[min(len(values) - 1, int(0.95 * len(values)))], 3),
    )


def _outbox_stats(warehouse: Path) -> dict[str, object]:
    import duckdb

    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        enq, src = con.execute(
            "select list(epoch(acknowledged_at) - epoch(enqueued_at)), "
            "list(epoch(acknowledged_at) - epoch(source_changed_at)) "
            "filter (where source_changed_at is not null) "
            "from revsync_state.outbox where target = 'netsuite' and state = 'acknowledged'"
        ).fetchone()
        states = dict(
            con.execute(
                "select state, count(*) from revsync_state.outbox where target = 'netsuite' group by 1"
            ).fetchall()
        )
    finally:
        con.close()
    p50, p95 = _percentiles(enq or [])
    s50, s95 = _percentiles(src or [])
    return {
        "enqueue_to_ack_p50_s": p50,
        "enqueue_to_ack_p95_s": p95,
        "source_change_to_ack_p50_s": s50,
        "source_change_to_ack_p95_s": s95,
        "states": states,
    }


def _push_once(warehouse: Path, world: Path, work: Path, faults: str, run: int) -> dict[str, object]:
    """One `revsync push netsuite` on fresh copies, against a freshly started sandbox."""
    wh, wd = _fresh(warehouse, world, work / f"run{run}")
    with serve_in_background(wd, 0, faults, start_timeout_s=LARGE_WORLD_START_S) as (_, server):
        cpu_before = _cpu_seconds(server.pid)
        argv = [str(BIN / "revsync"), "push", "netsuite", "--sandbox", str(wd), "--warehouse", str(wh)]
        argv += ["--run-id", f"bench-push-{run}"]
        with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
            started = time.perf_counter()
            child = subprocess.Popen(argv, stdout=out, stderr=err, text=True)
            _, status, usage = os.wait4(child.pid, 0)
            wall = time.perf_counter() - started
            out.seek(0)
            err.seek(0)
            stdout, stderr = out.read(), err.read()
        server_cpu = _cpu_seconds(server.pid) - cpu_before
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"revsync push failed ({status}): {stderr[-3000:]}")
    summary = json.loads(stdout.strip().splitlines()[-1])
    stats = _outbox_stats(wh)
    shutil.rmtree(work / f"run{run}", ignore_errors=True)
    return {
        **summary,
        **stats,
        "process_wall_s": wall,
        "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "server_cpu_s": server_cpu,
    }


def _changes(warehouse: Path) -> list[tuple[str, str, str]]:
    import duckdb

    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return con.execute(
            "select http_method, http_path, payload::varchar from validated.erp_changes "
            "order by sequence nulls first, idempotency_key"
        ).fetchall()
    finally:
        con.close()


async def _blast(base_url: str, credentials: dict, changes: list, concurrency: int) -> tuple[float, dict]:
    """Every change PUT with `concurrency` in flight, nothing else; (seconds, responses per status)."""
    import httpx

    from revsync.connectors.netsuite import auth

    root = base_url.rstrip("/") + "/services/rest"
    statuses: dict[int, int] = {}
    pending = iter(changes)
    async with httpx.AsyncClient(
        auth=auth(credentials),
        headers={"Content-Type": "application/json", "Accept": "application/json"},
        timeout=30,
        limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
    ) as client:

        async def worker() -> None:
            for method, path, payload in pending:
                response = await client.request(method, root + path, content=payload)
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - started, statuses


def _ceiling(warehouse: Path, world: Path, work: Path, faults: str) -> dict[str, object]:
    wh, wd = _fresh(warehouse, world, work / "ceiling")
    changes = _changes(wh)
    try:
        with serve_in_background(wd, 0, faults, start_timeout_s=LARGE_WORLD_START_S) as (endpoints, server):
            info = endpoints["vendors"]["netsuite"]
            cpu_before = _cpu_seconds(server.pid)
            seconds, statuses = asyncio.run(_blast(info["base_url"], info["credentials"], changes, 15))
            server_cpu = _cpu_seconds(server.pid) - cpu_before
    finally:
        shutil.rmtree(work / "ceiling", ignore_errors=True)
    ok = sum(n for s, n in statuses.items() if 200 <= s < 300)
    return {
        "requests": len(changes),
        "ok": ok,
        "seconds": seconds,
        "rps": len(changes) / seconds,
        "statuses": statuses,
        "server_cpu_s": server_cpu,
    }


def push_throughput() -> dict[str, object]:
    scale = os.environ.get("BENCH_PUSH_SCALE", "20000")
    seed = int(os.environ.get("BENCH_PUSH_SEED", "42"))
    runs = int(os.environ.get("BENCH_PUSH_RUNS", "3"))
    faults = os.environ.get("BENCH_PUSH_FAULTS", "netsuite=realistic")
    work = Path(tempfile.mkdtemp(prefix="bench_push_"))
    try:
        warehouse, world, made = _prepare(work, scale, seed)
        measured = [_push_once(warehouse, world, work, faults, run) for run in range(runs)]
        median = sorted(measured, key=lambda m: m["seconds"])[len(measured) // 2]
        ceiling = _ceiling(warehouse, world, work, faults)
        writes_per_s = median["acknowledged"] / median["seconds"]
        metrics: dict[str, object] = {
            "scale": scale,
            "faults": faults,
            "world": made,
            "runs": runs,
            "netsuite_writes": median["acknowledged"],
            "seconds": round(median["seconds"], 2),
            "seconds_all_runs": ",".join(str(round(m["seconds"], 1)) for m in measured),
            "writes_per_s": round(writes_per_s, 1),
            "allowed_rate": ALLOWED_RATE,
            "to_allowed_rate": round(writes_per_s / ALLOWED_RATE, 3),
            "target_to_allowed_rate": TARGET_RATIO,
            "enqueue_to_ack_p50_s": median["enqueue_to_ack_p50_s"],
            "enqueue_to_ack_p95_s": median["enqueue_to_ack_p95_s"],
            "source_change_to_ack_p50_s": median["source_change_to_ack_p50_s"],
            "source_change_to_ack_p95_s": median["source_change_to_ack_p95_s"],
            "requests": median["requests"],
            "rate_limited_429": median["rate_limited"],
            "dead_lettered": max(m["dead_lettered"] for m in measured),
            "failed": max(m["failed"] for m in measured),
            "held": median["held"],
            "push_process_wall_s": round(median["process_wall_s"], 1),
            "push_cpu_s": round(median["cpu_s"], 1),
            "push_peak_rss_mib": max(m["peak_rss_mib"] for m in measured),
            "server_cpu_s": round(median["server_cpu_s"], 1),
            "ceiling_requests": ceiling["requests"],
            "ceiling_ok": ceiling["ok"],
            "ceiling_statuses": json.dumps(ceiling["statuses"], sort_keys=True),
            "ceiling_s": round(ceiling["seconds"], 2),
            "ceiling_rps": round(ceiling["rps"], 1),
            "ceiling_to_allowed_rate": round(ceiling["rps"] / ALLOWED_RATE, 3),
            "ceiling_server_cpu_s": round(ceiling["server_cpu_s"], 1),
            "push_to_ceiling": round(writes_per_s / ceiling["rps"], 3),
        }
        metrics["pass"] = metrics["to_allowed_rate"] >= TARGET_RATIO and metrics["dead_lettered"] == 0
        return metrics
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    print(json.dumps(push_throughput(), indent=2))
    sys.exit(0)
