"""Run the registered benchmarks and write build/bench/results.{json,md}.

Usage: `python -m bench` runs every benchmark in bench.BENCHMARKS; `python -m bench NAME...` only
those whose spec contains one of the names; `python -m bench --list` lists them.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from bench import BENCHMARKS

OUT_DIR = Path(__file__).resolve().parent.parent / "build" / "bench"
KEY_PACKAGES = (
    "revsync",
    "apache-airflow",
    "dbt-core",
    "dbt-duckdb",
    "great-expectations",
    "duckdb",
    "fastapi",
    "uvicorn",
    "httptools",
    "httpx",
    "orjson",
    "pandas",
    "pyarrow",
)
CHILD_FLAG = "--run-one"


def machine_info() -> dict[str, object]:
    """What the numbers were measured on."""
    mem_total_kib = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_total_kib = int(line.split()[1])
    except OSError:
        pass
    versions = {}
    for name in KEY_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "memory_total_mib": round(mem_total_kib / 1024) if mem_total_kib else None,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "git_commit": _git_commit(),
        "packages": versions,
    }


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def _resolve(spec: str):
    module_name, _, func_name = spec.partition(":")
    return getattr(importlib.import_module(module_name), func_name)


def run_one(spec: str, out_file: Path) -> None:
    """Child process: run one benchmark, write its record to `out_file`."""
    started = time.perf_counter()
    record: dict[str, object] = {"name": spec.partition(":")[2], "spec": spec}
    try:
        metrics = _resolve(spec)()
        if not isinstance(metrics, dict):
            raise TypeError(f"{spec} returned {type(metrics).__name__}, expected a dict of metrics")
        record.update(ok=True, metrics=metrics, error=None)
    except Exception as exc:  # reported in the results, and makes the harness exit non-zero
        record.update(ok=False, metrics={}, error=f"{type(exc).__name__}: {exc}")
    record["wall_s"] = round(time.perf_counter() - started, 4)
    # ru_maxrss is in KiB on Linux. RUSAGE_CHILDREN covers processes this benchmark waited for.
    record["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    record["peak_rss_children_mib"] = round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1)
    out_file.write_text(json.dumps(record))


def run_isolated(spec: str) -> dict[str, object]:
    """Run one benchmark in a fresh interpreter and return its record."""
    with tempfile.TemporaryDirectory() as tmp:
        out_file = Path(tmp) / "record.json"
        proc = subprocess.run([sys.executable, "-m", "bench", CHILD_FLAG, spec, str(out_file)])
        if out_file.exists():
            return json.loads(out_file.read_text())
    name = spec.partition(":")[2]
    return {"name": name, "spec": spec, "ok": False, "metrics": {}, "error": f"exit {proc.returncode}"}


def to_markdown(results: dict) -> str:
    """A table per run: one row per benchmark, metrics as key=value."""
    m = results["machine"]
    lines = [
        "# Benchmark results",
        "",
        f"{results['started_at']} · {m['cpu_count']} CPUs · {m['memory_total_mib']} MiB · "
        f"Python {m['python']} · commit {(m['git_commit'] or 'unknown')[:12]}",
        "",
        "| benchmark | ok | wall s | peak RSS MiB | children peak RSS MiB | metrics |",
        "|---|---|---:|---:|---:|---|",
    ]
    for r in results["benchmarks"]:
        metrics = ", ".join(f"{k}={v}" for k, v in r["metrics"].items()) or (r["error"] or "")
        lines.append(
            f"| {r['name']} | {'yes' if r['ok'] else 'NO'} | {r.get('wall_s', '')} | "
            f"{r.get('peak_rss_mib', '')} | {r.get('peak_rss_children_mib', '')} | {metrics} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == [CHILD_FLAG]:
        run_one(argv[1], Path(argv[2]))
        return 0
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("only", nargs="*", help="run only benchmarks whose name contains one of these")
    parser.add_argument("--list", action="store_true", help="list the registered benchmarks and exit")
    args = parser.parse_args(argv)

    if args.list:
        print("\n".join(BENCHMARKS))
        return 0
    selected = [s for s in BENCHMARKS if not args.only or any(o in s for o in args.only)]
    if not selected:
        print(f"bench: nothing matches {args.only}; registered: {BENCHMARKS}", file=sys.stderr)
        return 2

    results = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "benchmarks": [],
    }
    for spec in selected:
        print(f"bench: {spec} ...", flush=True)
        record = run_isolated(spec)
        print(f"bench: {spec} -> {'ok' if record['ok'] else 'FAILED'} {record['metrics'] or record['error']}")
        results["benchmarks"].append(record)

    OUT_DIR.mkdir(parents=True, exist_ok=True)
    (OUT_DIR / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (OUT_DIR / "results.md").write_text(to_markdown(results))
    print(f"bench: wrote {OUT_DIR / 'results.json'} and {OUT_DIR / 'results.md'}")
    return 0 if all(r["ok"] for r in results["benchmarks"]) else 1


if __name__ == "__main__":
    sys.exit(main())
