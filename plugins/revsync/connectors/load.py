"""Extract streams into raw landing: full or incremental, one landed batch per stream.

A stream without a cursor (first run), or run with `full_refresh`, is read in full from its list
endpoint. Otherwise its incremental strategy asks for what changed since the stored cursor minus the
lookback (or since `start_cursor` when given), up to `until` (the run's data interval end) where the
vendor can bound it. Landing keeps only versions not landed before, so the lookback costs requests,
never duplicate rows.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import duckdb

from revsync.connectors.base import Connector, Stream, run_stream
from revsync.connectors.http import Fetcher, RetryPolicy
from revsync.warehouse.landing import LandResult, land, read_cursor

log = logging.getLogger(__name__)

DEFAULT_LOOKBACK_S = 600


@dataclass(frozen=True)
class Window:
    """What one run asks each stream for."""

    full_refresh: bool = False
    start_cursor: int | None = None  # epoch seconds; overrides the stored cursor (backfills)
    until: int | None = None  # epoch seconds, exclusive, where the vendor supports an upper bound
    lookback_s: int = DEFAULT_LOOKBACK_S
    force: bool = False  # read streams whose refresh interval has not passed yet


@dataclass
class StreamRun:
    mode: str  # full | incremental
    since: int | None
    result: LandResult


@dataclass(frozen=True)
class Plan:
    """How one run reads one stream: the stream to page (the list, or its change feed) and the cursor
    the landing starts from."""

    mode: str  # full | incremental | skipped (refresh interval not passed)
    since: int | None
    stream: Stream
    cursor_floor: int | None


def plan_stream(stream: Stream, stored: int | None, window: Window, now: int | None = None) -> Plan:
    now = int(time.time()) if now is None else now
    if not_due(stream, stored, window, now):
        return Plan("skipped", None, stream, stored)
    if window.start_cursor is not None:
        since: int | None = window.start_cursor
    elif stored is not None and not window.full_refresh:
        since = stored - window.lookback_s
    else:
        since = None
    if since is None or stream.incremental is None:
        floor = stored if stream.cursor_is_change_time else max(stored or 0, now)
        return Plan("full", None, stream, floor)
    changes = stream.incremental.changes(stream, since, window.until)
    if changes.cursor_is_change_time:
        return Plan("incremental", since, changes, stored)
    # Records without a change time (aggregates over a time window): the window was read to `until`.
    read_to = now if window.until is None else min(window.until, now)
    return Plan("incremental", since, changes, max(stored or 0, read_to))


def not_due(stream: Stream, stored: int | None, window: Window, now: int) -> bool:
    """Whether a stream with a refresh interval was read too recently to read again in this run.

    Only aggregates have one; their stored cursor is the time the last read reached (plan_stream)."""
    if stream.refresh_every_s is None or stored is None or stream.cursor_is_change_time:
        return False
    if window.full_refresh or window.force or window.start_cursor is not None:
        return False
    return now - stored < stream.refresh_every_s


def extract_stream(
    con: duckdb.DuckDBPyConnection,
    connector: Connector,
    stream: Stream,
    fetcher: Fetcher,
    base_url: str,
    batch_id: str,
    window: Window = Window(),
) -> StreamRun:
    """Land one stream as batch `batch_id`, in full or incrementally as `window` and its cursor say."""
    stored = read_cursor(con, connector.name, stream.name)
    plan = plan_stream(stream, stored, window)
    if plan.mode == "skipped":
        log.info(
            "%s.%s: read to %s, not due for %d s", connector.name, stream.name, stored, stream.refresh_every_s
        )
        return StreamRun(plan.mode, None, LandResult(cursor=stored))
    log.info("extracting %s.%s (%s since %s)", connector.name, stream.name, plan.mode, plan.since)
    pages = run_stream(fetcher, base_url, plan.stream)
    result = land(con, connector.name, plan.stream, pages, batch_id, cursor_floor=plan.cursor_floor)
    log.info("landed %s.%s: %s", connector.name, stream.name, result)
    return StreamRun(plan.mode, plan.since, result)


def load_source(
    con: duckdb.DuckDBPyConnection,
    connector: Connector,
    base_url: str,
    credentials: dict[str, str],
    batch_id: str,
    streams: tuple[str, ...] | None = None,
    policy: RetryPolicy | None = None,
    window: Window = Window(),
) -> dict[str, LandResult]:
    """Land every stream (or the named ones) of `connector` as batch `batch_id`; return per-stream results."""
    chosen = [s for s in connector.streams if streams is None or s.name in streams]
    results: dict[str, LandResult] = {}
    with connector.fetcher(credentials, policy=policy) as fetcher:
        for stream in chosen:
            run = extract_stream(con, connector, stream, fetcher, base_url, batch_id, window)
            results[stream.name] = run.result
    return results
