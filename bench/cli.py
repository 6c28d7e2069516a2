"""How long `revsync --help` takes to start: the cost every CLI call and CI step pays."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

RUNS = 5


def cli_startup() -> dict[str, float | int]:
    """Median and worst wall time of `python -m revsync.cli --help` in a fresh interpreter."""
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "revsync.cli", "--help"], check=True, capture_output=True, timeout=120
        )
        times.append(time.perf_counter() - started)
    return {"runs": RUNS, "median_s": round(statistics.median(times), 4), "max_s": round(max(times), 4)}
