"""One micro-batch cycle for the push tests, with real parts: extract from a running sandbox into the
warehouse (incremental after the first load), `dbt build`, the three gate stages, and the push; plus
readers of the sandbox's write log and the warehouse's outbox."""

from __future__ import annotations

import shutil
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import httpx

from revsync.connectors.load import Window, load_source
from revsync.connectors.registry import CONNECTORS
from revsync.push.delivery import DeliveryReport, DeliverySettings, TargetUnavailable
from revsync.push.run import push
from revsync.push.targets import TARGETS
from revsync.quality.gate import STAGES, GateSettings, run_gate

CORE_SOURCES = ("stripe", "hubspot", "zendesk", "netsuite")
WRITE_VENDORS = ("netsuite", "zendesk")


def extract(warehouse: Path, sandbox, batch_id: str) -> None:  # noqa: ANN001 - conftest's Sandbox
    """Land every core source's changes since the stored cursors (every stream, whatever its interval)."""
    con = duckdb.connect(str(warehouse))
    try:
        for name in CORE_SOURCES:
            load_source(
                con,
                CONNECTORS[name],
                sandbox.base_url(name),
                sandbox.creds(name),
                batch_id,
                window=Window(force=True),
            )
    finally:
        con.close()


def as_of_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def gated_copy(built: Path, folder: Path) -> Path:
    """A copy of the built warehouse `built` in `folder`, after the three gate stages (docs in folder)."""
    folder.mkdir(parents=True, exist_ok=True)
    warehouse = folder / "warehouse.duckdb"
    shutil.copy(built, warehouse)
    gate(warehouse, folder / "docs")
    return warehouse


def private_copy(warehouse: Path, world: Path, folder: Path) -> tuple[Path, Path]:
    """(warehouse, world dir): copies in `folder` of a warehouse and of the world it was landed from, for a
    test that pushes (the push writes to both)."""
    copied = folder / "warehouse.duckdb"
    shutil.copy(warehouse, copied)
    target = folder / "world"
    target.mkdir(parents=True, exist_ok=True)
    for name in ("world.duckdb", "ground_truth.jsonl"):
        shutil.copy(world / name, target / name)
    return copied, target


def gate(warehouse: Path, docs: Path) -> None:
    settings = GateSettings.from_env(docs_dir=docs)
    for stage in STAGES:
        run_gate(stage, warehouse, settings=settings)


def push_all(
    warehouse: Path,
    sandbox,
    run_id: str,
    settings: DeliverySettings | None = None,  # noqa: ANN001
) -> dict[str, tuple[dict, DeliveryReport]]:
    """Push both targets; a target that reports maintenance is pushed again once it says it is back."""
    done = {}
    for name, target in TARGETS.items():
        while True:
            try:
                done[name] = push(
                    warehouse,
                    target,
                    sandbox.base_url(target.source),
                    sandbox.creds(target.source),
                    run_id,
                    settings,
                )
                break
            except TargetUnavailable as down:
                time.sleep(max((down.until or time.time() + 1) - time.time(), 0.5))
    return done


def writes(sandbox, vendor: str | None = None) -> list[dict]:  # noqa: ANN001
    """The sandbox's write log (every write request that reached a vendor's handler), oldest first."""
    out, after = [], 0
    while True:
        params = {"after": after, "limit": 100_000, **({"vendor": vendor} if vendor else {})}
        page = httpx.get(f"{sandbox.base_url('stripe')}/__sandbox__/writes", params=params, timeout=60).json()
        out += page["writes"]
        if page["count"] < 100_000:
            return out
        after = page["writes"][-1]["seq"]


def successful(log: list[dict]) -> list[dict]:
    return [w for w in log if 200 <= w["status"] < 300 and w["vendor"] in WRITE_VENDORS]


def duplicates(log: list[dict]) -> dict[str, int]:
    """Records written successfully more than once: (method path) -> times."""
    counts = Counter(f"{w['method']} {w['path']}" for w in successful(log))
    return {k: n for k, n in counts.items() if n > 1}


def outbox_states(warehouse: Path) -> dict[tuple[str, str], int]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        rows = con.execute("select target, state, count(*) from revsync_state.outbox group by all").fetchall()
    finally:
        con.close()
    return {(t, s): n for t, s, n in rows}


def query(warehouse: Path, sql: str, params: list | None = None) -> list[tuple]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()
