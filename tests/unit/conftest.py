"""Unit fixtures: the dbt project's manifest, produced the way `make manifest` does (`dbt parse`)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def reconcile_home(tmp_path_factory) -> Path:
    """A REVSYNC_HOME holding the dbt project's `dbt/manifest.json` (the reconcile DAG's input)."""
    home = tmp_path_factory.mktemp("revsync_home")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REVSYNC_", "DBT_"))}
    env |= {"REVSYNC_HOME": str(home), "REVSYNC_WAREHOUSE": str(home / "warehouse.duckdb")}
    done = subprocess.run(
        [sys.executable, "-m", "revsync.orchestration.reconcile", "manifest"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert (home / "dbt" / "manifest.json").exists()
    return home
