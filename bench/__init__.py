"""Benchmark harness: `python -m bench` (or `make bench`).

A benchmark is a function that takes no arguments, does its work and returns a flat dict of
metrics (numbers or short strings), e.g. ``{"records": 120000, "records_per_s": 41000.0}``.
Register it by appending ``"module:function"`` to BENCHMARKS below. Each one runs in its own
Python process so its peak memory is its own; servers it starts count as its children once
it has waited for them. Results go to build/bench/results.json and build/bench/results.md.
"""

from __future__ import annotations

BENCHMARKS: list[str] = [
    "bench.cli:cli_startup",
    "bench.sandbox:sandbox_list_throughput",
    "bench.sandbox:sandbox_generate",
    "bench.extract:extract_throughput",
    "bench.peers:extract_vs_peers",
    "bench.reconcile:reconcile_build",
    "bench.gate:gate_time",
    "bench.push:push_throughput",
]
