"""Generate a seeded sandbox world: `DIR/world.duckdb` plus `DIR/ground_truth.jsonl`.

Customers are planned and emitted in fixed-size chunks, each with its own random stream derived from
the seed, so memory stays flat in the world's size and the same seed and size give the same world.
Wall-clock time anchors the world (ARCHITECTURE.md, "Time"): timestamps are relative to generation.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from importlib import resources
from pathlib import Path

import duckdb
import pyarrow as pa

from sandbox.world import finalize
from sandbox.world.catalog import DAY, PLANS, SUBSIDIARIES
from sandbox.world.emit import PRICE_KEYS, PRODUCT_KEYS, Emitter
from sandbox.world.plan import MISMATCH_TYPES, Planner, price_minor
from sandbox.world.truth import export_truth

SCALES = {"small": 1_000, "medium": 100_000, "large": 1_000_000}
CHUNK = 10_000  # customers planned at a time: bounds memory, independent of the scale
PROSPECT_SHARE = 0.1  # HubSpot-only companies per customer
WORLD_FILE = "world.duckdb"
GENERATE_MEMORY_LIMIT = "4GB"
TRUTH_FILE = "ground_truth.jsonl"


def parse_scale(scale: str | int) -> int:
    """`small|medium|large` or a positive customer count; ValueError with the accepted forms."""
    if isinstance(scale, int) or str(scale).isdigit():
        count = int(scale)
        if count < 1:
            raise ValueError("scale must be at least 1 customer")
        return count
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}: use small, medium, large or a number of customers")
    return SCALES[scale]


def credentials(seed: int) -> dict[str, str]:
    def token(label: str, size: int = 24) -> str:
        return hashlib.blake2b(f"{seed}:{label}".encode(), digest_size=size).hexdigest()

    return {
        "cred.stripe.api_key": f"sk_test_{token('stripe')}",
        "cred.hubspot.token": f"pat-na1-{token('hubspot', 16)}",
        "cred.zendesk.subdomain": "revsync-demo",
        "cred.zendesk.email": "admin@revsync-demo.test",
        "cred.zendesk.token": token("zendesk", 20),
        "cred.netsuite.account": "1234567_SB1",
        "cred.netsuite.consumer_key": token("ns-ck", 32),
        "cred.netsuite.consumer_secret": token("ns-cs", 32),
        "cred.netsuite.token_id": token("ns-tid", 32),
        "cred.netsuite.token_secret": token("ns-ts", 32),
        "cred.netsuite.bearer": token("ns-bearer", 32),
    }


def _catalog_rows(now: int) -> dict[str, list[tuple]]:
    origin = now - 800 * DAY
    rows: dict[str, list[tuple]] = {"stripe_products": [], "stripe_prices": [], "netsuite_subsidiaries": []}
    for plan, key in PRODUCT_KEYS.items():
        rows["stripe_products"].append((key, plan.title(), PLANS[plan][0], origin + key, origin + key))
    for (plan, interval, currency), key in PRICE_KEYS.items():
        rows["stripe_prices"].append(
            (
                key,
                PRODUCT_KEYS[plan],
                currency,
                price_minor(plan, interval, currency),
                interval,
                f"{plan} {interval}ly {currency}",
                origin + 10 + key,
                origin + 10 + key,
            )
        )
    for sub_id, (name, currency) in SUBSIDIARIES.items():
        at = origin + int(sub_id)
        rows["netsuite_subsidiaries"].append((int(sub_id), name, currency.upper(), at, at))
    return rows


def _chunk(seed: int, chunk: int, customers: int, now: int, rates: dict[str, float]) -> dict[str, pa.Table]:
    """Plan and emit one chunk of customers; returns its staging rows per table as Arrow tables."""
    first = chunk * CHUNK
    count = min(CHUNK, customers - first)
    prospects = max(1, round(count * PROSPECT_SHARE))
    # customers and prospects of all chunks share one 1-based key space
    first_key = first + round(first * PROSPECT_SHARE) + 1
    plans = Planner(seed, chunk, now, rates).customers(first_key, count, prospects)
    emitter = Emitter(seed, chunk, now)
    for customer in plans:
        emitter.customer(customer)
    return {table: finalize.to_arrow(table, rows) for table, rows in emitter.rows.items() if rows}


def generate(
    out_dir: Path,
    customers: int,
    seed: int,
    *,
    rates: dict[str, float] | None = None,
    now: int | None = None,
    progress: Callable[[str], None] = lambda message: None,
) -> Path:
    """Write a new world for `customers` customers into `out_dir`; returns the world file's path.

    `rates` overrides the injection rate per mismatch type (fraction of eligible records).
    """
    unknown = set(rates or {}) - set(MISMATCH_TYPES)
    if unknown:
        raise ValueError(f"unknown mismatch types in rates: {sorted(unknown)}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / WORLD_FILE
    for stale in (path, out_dir / f"{WORLD_FILE}.wal", out_dir / TRUTH_FILE):
        stale.unlink(missing_ok=True)
    now = int(time.time()) if now is None else now
    started = time.monotonic()
    chunks = (customers + CHUNK - 1) // CHUNK
    workers = min(chunks, os.cpu_count() or 1)
    # Chunks are independent random streams, so planning them in parallel keeps the world deterministic.
    # The pool forks before DuckDB opens, so no worker inherits a database handle; pyarrow's lazy
    # import of pandas (~2 s) happens once here instead of once in every worker.
    pa.array([0])
    pool = (
        ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) if workers > 1 else None
    )
    con = duckdb.connect(str(path))
    # finalize's joins and sorts spill to disk past this, instead of growing to most of the machine's
    # memory at large scale (8.2 GiB peak without it)
    con.execute(f"set memory_limit = '{GENERATE_MEMORY_LIMIT}'")
    con.execute(resources.files("sandbox.world").joinpath("schema.sql").read_text())
    finalize.create_staging(con)
    for table, rows in _catalog_rows(now).items():
        finalize.append(con, table, finalize.to_arrow(table, rows))

    args = [(seed, chunk, customers, now, rates or {}) for chunk in range(chunks)]
    results = pool.map(_chunk, *zip(*args, strict=True)) if pool else (_chunk(*a) for a in args)
    try:
        for chunk, tables in enumerate(results):
            for table, batch in tables.items():
                finalize.append(con, table, batch)
            done = min((chunk + 1) * CHUNK, customers)
            progress(f"planned {done:,}/{customers:,} customers ({time.monotonic() - started:.1f}s)")
    finally:
        if pool:
            pool.shutdown()

    finalize.finalize(con, now, progress)
    meta = {
        "seed": str(seed),
        "customers": str(customers),
        "generated_at": str(now),
        "world_version": "1",
        **credentials(seed),
    }
    con.executemany("insert into meta values (?, ?)", list(meta.items()))
    con.execute("checkpoint")
    export_truth(con, out_dir / TRUTH_FILE)
    con.close()
    progress(f"world written to {path} in {time.monotonic() - started:.1f}s")
    return path
