"""Pacing from rate-limit headers against the sandbox under `--faults hubspot=realistic`.

HubSpot allows 100 requests per rolling 10 s and says how many remain in `X-HubSpot-RateLimit-*` on
every response; the realistic profile answers 429 past that. Pages of 25 make a full load ~190
requests, about two windows' worth. The same load runs on two fresh sandboxes, paced and unpaced; the
server's `/__sandbox__/faults` counters say how many 429s each run ran into.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace

import duckdb
import pytest

from revsync.connectors import hubspot
from revsync.connectors.base import Connector, HubSpotAfter
from revsync.connectors.http import RetryPolicy
from revsync.connectors.load import load_source
from revsync.warehouse.landing import raw_table
from sandbox.world.streams import tables_of

pytestmark = pytest.mark.integration

PAGE, BURST = 25, 100  # records per page; HubSpot requests per 10 s in the sandbox
SMALL_PAGES = Connector(
    "hubspot",
    tuple(replace(s, paginator=HubSpotAfter(limit=PAGE)) for s in hubspot.CONNECTOR.streams),
    hubspot.auth,
)
WORLD_TABLES = tables_of("hubspot")


def _full_load(start_sandbox_factory, world_dir, warehouse, policy, caplog) -> dict:
    """Load HubSpot on a fresh realistic-faults sandbox; return counts, 429s, paced waits and seconds."""
    caplog.clear()
    con = duckdb.connect(str(warehouse))
    started = time.monotonic()
    with start_sandbox_factory(world_dir, faults="hubspot=realistic") as served:
        load_source(
            con, SMALL_PAGES, served.base_url("hubspot"), served.creds("hubspot"), "b1", policy=policy
        )
        seconds = time.monotonic() - started
        expected = served.admin("counts")
        injected = served.admin("faults")["injected"].get("hubspot", {})
    sql = "select count(*), count(distinct _pk) from {} where _batch_id = 'b1'"
    landed = {s: con.execute(sql.format(raw_table("hubspot", s))).fetchone() for s in WORLD_TABLES}
    con.close()
    return {
        "landed": landed,
        "expected": {s: (expected[t], expected[t]) for s, t in WORLD_TABLES.items()},
        "429s": injected.get("rate_limit", 0),
        "paced": sum("pacing GET" in r.getMessage() for r in caplog.records),
        "seconds": seconds,
    }


def test_pacing_avoids_hubspot_429s_under_realistic_faults(
    start_sandbox_factory, world_copy, tmp_path, caplog
):
    caplog.set_level(logging.INFO, logger="revsync.connectors.http")
    paced = _full_load(start_sandbox_factory, world_copy, tmp_path / "paced.duckdb", RetryPolicy(), caplog)
    unpaced = _full_load(
        start_sandbox_factory, world_copy, tmp_path / "unpaced.duckdb", RetryPolicy(pace=False), caplog
    )
    print(f"paced: {paced}\nunpaced: {unpaced}")
    assert paced["landed"] == paced["expected"] and unpaced["landed"] == unpaced["expected"]
    pages = sum(-(-n // PAGE) for n, _ in paced["landed"].values())
    assert pages > 1.5 * BURST  # the load needs more than one window's budget
    assert unpaced["429s"] > 0 and unpaced["paced"] == 0  # without pacing the burst limit is hit
    assert paced["429s"] == 0 and paced["paced"] >= 1  # with it, the load waits instead
    assert paced["seconds"] < 40
