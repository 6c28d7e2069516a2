"""Full load of a source's streams into raw landing: fetch pages, land each stream as one batch."""

from __future__ import annotations

import logging

import duckdb

from revsync.connectors.base import Connector, run_stream
from revsync.connectors.http import RetryPolicy
from revsync.warehouse.landing import LandResult, land

log = logging.getLogger(__name__)


def load_source(
    con: duckdb.DuckDBPyConnection,
    connector: Connector,
    base_url: str,
    credentials: dict[str, str],
    batch_id: str,
    streams: tuple[str, ...] | None = None,
    policy: RetryPolicy | None = None,
) -> dict[str, LandResult]:
    """Land every stream (or the named ones) of `connector` as batch `batch_id`; return per-stream results."""
    chosen = [s for s in connector.streams if streams is None or s.name in streams]
    results: dict[str, LandResult] = {}
    with connector.fetcher(credentials, policy=policy) as fetcher:
        for stream in chosen:
            pages = run_stream(fetcher, base_url, stream)
            results[stream.name] = land(con, connector.name, stream.name, pages, batch_id, stream.primary_key)
            log.info("landed %s.%s: %s", connector.name, stream.name, results[stream.name])
    return results
