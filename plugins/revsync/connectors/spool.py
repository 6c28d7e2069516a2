"""A stream's pages on local disk between fetching and landing, one JSON line per page.

Tasks fetch concurrently without holding the warehouse (DuckDB has one writer), then land from the
spool under the warehouse lock. Memory stays one page on both sides.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson

from revsync.connectors.base import Page


@dataclass
class SpoolStats:
    pages: int = 0
    records: int = 0


def write_spool(path: Path, pages: Iterable[Page], progress_every: int = 50, log=None) -> SpoolStats:
    """Write `pages` to `path` (replacing it); complete only when the iterator finished."""
    stats = SpoolStats()
    partial = path.with_name(path.name + ".partial")
    partial.parent.mkdir(parents=True, exist_ok=True)
    with partial.open("wb") as out:
        for page in pages:
            out.write(orjson.dumps({"u": page.source_url, "c": page.cursors, "r": page.records}))
            out.write(b"\n")
            stats.pages += 1
            stats.records += len(page.records)
            if log is not None and stats.pages % progress_every == 0:
                log.info("fetched %d pages, %d records so far", stats.pages, stats.records)
    partial.replace(path)
    return stats


def read_spool(path: Path) -> Iterator[Page]:
    with path.open("rb") as spool:
        for line in spool:
            page = orjson.loads(line)
            yield Page(page["r"], page["u"], page["c"])
