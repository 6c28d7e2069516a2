"""Extraction against its peers, side by side in one run on the same sandbox, endpoints and pages.

`extract_vs_peers` generates a world of BENCH_PEERS_CUSTOMERS customers (default 20,000, seed 42), serves
it with faults off and, for every list stream of Stripe, HubSpot and Zendesk (child streams and
NetSuite's SuiteQL POSTs excepted: see the notes), measures three clients, each BENCH_PEERS_RUNS times
(default 3, the median kept), one after another:

- **revsync**: `load_source` into a fresh DuckDB warehouse, as an extract task runs it (contracts,
  quarantine, incremental state, retries and rate-limit pacing on);
- **dlt**: dlt's `rest_api` source into DuckDB with dlt's defaults (bench/peer_dlt.py, in the virtualenv
  of bench/requirements-peers.txt, which `make bench` builds: dlt's pins must not touch revsync's);
- **ceiling**: read and discard: httpx + orjson following the same paging protocol, nothing else.

Every client must return exactly the world's records per stream, else the benchmark fails. Reported per
client: wall seconds, records and records/s (sum over the sources), and the ratios revsync/dlt and
revsync/ceiling against the targets (>= 10x dlt, >= 0.6 of the ceiling).
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
from pathlib import Path

import duckdb
import httpx
import orjson

from bench.sandbox import LARGE_WORLD_START_S
from revsync.connectors.base import HubSpotAfter, Request, StripeCursor, ZendeskCursor
from revsync.connectors.load import load_source
from revsync.connectors.registry import CONNECTORS
from sandbox.server.background import serve_in_background

ROOT = Path(__file__).resolve().parent.parent
PEERS_VENV = ROOT / "build" / "bench" / "peers-venv"
PEERS_PYTHON = Path(os.environ.get("BENCH_PEERS_PYTHON", PEERS_VENV / "bin" / "python"))
SOURCES = ("stripe", "hubspot", "zendesk")
PROTOCOLS = {StripeCursor: "stripe", HubSpotAfter: "hubspot", ZendeskCursor: "zendesk"}
TARGET_VS_DLT = 10.0
TARGET_VS_CEILING = 0.6


def _streams(source: str) -> list:
    """The source's streams both peers can read as revsync does: GET lists without parent fan-out."""
    return [s for s in CONNECTORS[source].streams if not s.parents and type(s.paginator) in PROTOCOLS]


def _revsync(source: str, info: dict, work: Path) -> tuple[float, dict[str, int]]:
    warehouse = work / f"revsync_{source}.duckdb"
    warehouse.unlink(missing_ok=True)
    names = tuple(s.name for s in _streams(source))
    con = duckdb.connect(str(warehouse))
    try:
        started = time.perf_counter()
        results = load_source(con, CONNECTORS[source], info["base_url"], info["credentials"], "b1", names)
        seconds = time.perf_counter() - started
    finally:
        con.close()
    return seconds, {name: results[name].received + results[name].quarantined for name in names}


def _ceiling(source: str, info: dict) -> tuple[float, dict[str, int]]:
    connector = CONNECTORS[source]
    counts: dict[str, int] = {}
    started = time.perf_counter()
    with httpx.Client(headers=connector.auth(info["credentials"]), timeout=60) as client:
        for stream in _streams(source):
            request: Request | None = stream.paginator.first(info["base_url"] + stream.path, stream)
            counts[stream.name] = 0
            while request is not None:
                response = client.request(request.method, request.url, params=request.params)
                response.raise_for_status()
                body = orjson.loads(response.content)
                records = body[stream.record_path] if stream.record_path else body
                counts[stream.name] += len(records)
                request = stream.paginator.next(request, body, records, response.headers)
    return time.perf_counter() - started, counts


def _dlt(source: str, info: dict, work: Path) -> tuple[float, dict[str, int]]:
    folder = work / f"dlt_{source}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    connector = CONNECTORS[source]
    config = {
        "source": source,
        "work": str(folder),
        "base_url": info["base_url"],
        "headers": connector.auth(info["credentials"]),
        "streams": [
            {
                "name": s.name,
                "path": s.path,
                "params": {**s.paginator.first("", s).params},
                "record_path": s.record_path,
                "protocol": PROTOCOLS[type(s.paginator)],
            }
            for s in _streams(source)
        ],
    }
    (folder / "config.json").write_text(json.dumps(config))
    env = {**os.environ, "RUNTIME__LOG_LEVEL": "WARNING", "DLT_TELEMETRY_DISABLED": "1"}
    env["RUNTIME__DLTHUB_TELEMETRY"] = "false"
    started = time.perf_counter()
    done = subprocess.run(
        [str(PEERS_PYTHON), str(ROOT / "bench" / "peer_dlt.py"), str(folder / "config.json")],
        capture_output=True,
        text=True,
        env=env,
        timeout=3600,
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"dlt peer failed on {source}: {done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return seconds, result["rows"]


def extract_vs_peers() -> dict[str, object]:
    if not PEERS_PYTHON.exists():
        raise RuntimeError(f"{PEERS_PYTHON} is missing: `make bench` builds the peers' virtualenv")
    customers = int(os.environ.get("BENCH_PEERS_CUSTOMERS", "20000"))
    runs = int(os.environ.get("BENCH_PEERS_RUNS", "3"))
    work = Path(tempfile.mkdtemp(prefix="bench_peers_"))
    try:
        world = work / "world"
        subprocess.run(
            [sys.executable, "-m", "sandbox", "generate", "--out", str(world), "--scale", str(customers)]
            + ["--seed", "42"],
            check=True,
            capture_output=True,
            text=True,
        )
        with serve_in_background(world, 0, "none", start_timeout_s=LARGE_WORLD_START_S) as (endpoints, _):
            clients = {
                "revsync": lambda s, i: _revsync(s, i, work),
                "dlt": lambda s, i: _dlt(s, i, work),
                "ceiling": _ceiling,
            }
            seconds: dict[str, list[float]] = {name: [] for name in clients}
            records: dict[str, int] = {}
            for _ in range(runs):
                for name, client in clients.items():
                    total_s, counts_by_stream = 0.0, {}
                    for source in SOURCES:
                        took, counts = client(source, endpoints["vendors"][source])
                        total_s += took
                        counts_by_stream |= {f"{source}.{k}": v for k, v in counts.items()}
                    if records and counts_by_stream != records:
                        raise AssertionError(f"{name} read {counts_by_stream}, the others {records}")
                    records = counts_by_stream
                    seconds[name].append(total_s)
        total = sum(records.values())
        metrics: dict[str, object] = {"customers": customers, "runs": runs, "records": total}
        metrics["streams"] = len(records)
        rates = {}
        for name, values in seconds.items():
            median = statistics.median(values)
            rates[name] = total / median
            metrics[f"{name}_s"] = round(median, 2)
            metrics[f"{name}_records_per_s"] = round(rates[name])
        metrics["revsync_vs_dlt"] = round(rates["revsync"] / rates["dlt"], 2)
        metrics["revsync_vs_ceiling"] = round(rates["revsync"] / rates["ceiling"], 3)
        metrics["target_vs_dlt"] = TARGET_VS_DLT
        metrics["target_vs_ceiling"] = TARGET_VS_CEILING
        metrics["pass"] = (
            metrics["revsync_vs_dlt"] >= TARGET_VS_DLT and metrics["revsync_vs_ceiling"] >= TARGET_VS_CEILING
        )
        return metrics
    finally:
        shutil.rmtree(work, ignore_errors=True)
