"""Raw landing in DuckDB: `raw_<source>.<stream>` plus cursor state and quarantine in `revsync_state`.

`land` writes one batch (one `batch_id`) in ONE transaction: it deletes whatever an earlier attempt
of the same batch left, inserts the pages in chunks of CHUNK_ROWS, quarantines records without a
primary key, and upserts the stream's cursor. A crash rolls all of it back, so a rerun of the batch
neither loses nor duplicates rows. A record repeated across pages lands once per batch.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import duckdb
import orjson
import pyarrow as pa

from revsync.connectors.base import Page

CHUNK_ROWS = 5000
STATE = "revsync_state"
RAW_COLUMNS = (
    "record JSON, _pk VARCHAR, _loaded_at TIMESTAMP, _batch_id VARCHAR, _source_url VARCHAR,"
    " _cursor_value VARCHAR"
)
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass
class LandResult:
    rows: int = 0
    quarantined: int = 0
    duplicates: int = 0
    cursor: str | None = None
    bad: list[tuple[str, dict]] = field(default_factory=list, repr=False)  # (reason, record) to quarantine


def raw_table(source: str, stream: str) -> str:
    for name in (source, stream):
        if not _IDENT.match(name):
            raise ValueError(f"not a plain identifier: {name!r}")
    return f'raw_{source}."{stream}"'


def ensure_state(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(f"create schema if not exists {STATE}")
    con.execute(
        f"create table if not exists {STATE}.cursors (source VARCHAR, stream VARCHAR, cursor VARCHAR,"
        " batch_id VARCHAR, updated_at TIMESTAMP, primary key (source, stream))"
    )
    con.execute(
        f"create table if not exists {STATE}.quarantine (source VARCHAR, stream VARCHAR, batch_id VARCHAR,"
        " reason VARCHAR, record JSON, loaded_at TIMESTAMP)"
    )


def ensure_raw(con: duckdb.DuckDBPyConnection, source: str, stream: str) -> str:
    con.execute(f"create schema if not exists raw_{source}")
    table = raw_table(source, stream)
    con.execute(f"create table if not exists {table} ({RAW_COLUMNS})")
    return table


def land(
    con: duckdb.DuckDBPyConnection,
    source: str,
    stream: str,
    pages: Iterable[Page],
    batch_id: str,
    primary_key: str = "id",
) -> LandResult:
    """Land every page of one stream as batch `batch_id`, atomically and idempotently."""
    ensure_state(con)
    table = ensure_raw(con, source, stream)
    loaded_at = datetime.now(UTC).replace(tzinfo=None)
    result = LandResult()
    con.execute("begin transaction")
    try:
        con.execute(f"delete from {table} where _batch_id = ?", [batch_id])
        con.execute(
            f"delete from {STATE}.quarantine where source = ? and stream = ? and batch_id = ?",
            [source, stream, batch_id],
        )
        for chunk in _chunks(pages, primary_key, result):
            _insert_chunk(con, table, chunk, loaded_at, batch_id, result)
        _quarantine(con, source, stream, batch_id, loaded_at, result)
        _upsert_cursor(con, source, stream, batch_id, result.cursor, loaded_at)
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    return result


@dataclass
class _Chunk:
    records: list[str]
    pks: list[str]
    urls: list[str]
    cursors: list[str | None]


def _chunks(pages: Iterable[Page], primary_key: str, result: LandResult) -> Iterator[_Chunk]:
    """Group page records into chunks of CHUNK_ROWS; records without a key go to `result.bad`."""
    chunk = _Chunk([], [], [], [])
    for page in pages:
        for record in page.records:
            pk = record.get(primary_key)
            if pk is None or pk == "":
                result.bad.append((f"missing primary key {primary_key!r}", record))
                continue
            chunk.records.append(orjson.dumps(record).decode())
            chunk.pks.append(str(pk))
            chunk.urls.append(page.source_url)
            chunk.cursors.append(page.cursor_value)
            if len(chunk.pks) >= CHUNK_ROWS:
                yield chunk
                chunk = _Chunk([], [], [], [])
        if page.cursor_value is not None:
            result.cursor = page.cursor_value
    if chunk.pks:
        yield chunk


def _insert_chunk(con, table: str, chunk: _Chunk, loaded_at: datetime, batch_id: str, result: LandResult):
    """Insert a chunk through Arrow, skipping keys this batch already holds (repeated records)."""
    arrow = pa.table(
        {"record": chunk.records, "_pk": chunk.pks, "_source_url": chunk.urls, "_cursor_value": chunk.cursors}
    )
    con.register("_landing_chunk", arrow)
    try:
        (added,) = con.execute(
            f"insert into {table} select record::JSON, _pk, ?::TIMESTAMP, ?, _source_url, _cursor_value"
            " from (select *, row_number() over (partition by _pk) as _n from _landing_chunk)"
            f" where _n = 1 and _pk not in (select _pk from {table} where _batch_id = ?)",
            [loaded_at, batch_id, batch_id],
        ).fetchone()
    finally:
        con.unregister("_landing_chunk")
    result.rows += added
    result.duplicates += len(chunk.pks) - added


def _quarantine(con, source: str, stream: str, batch_id: str, loaded_at: datetime, result: LandResult):
    bad, result.bad = result.bad, []
    if bad:
        con.executemany(
            f"insert into {STATE}.quarantine values (?, ?, ?, ?, ?::JSON, ?)",
            [
                (source, stream, batch_id, reason, orjson.dumps(rec).decode(), loaded_at)
                for reason, rec in bad
            ],
        )
    result.quarantined = len(bad)


def _upsert_cursor(con, source: str, stream: str, batch_id: str, cursor: str | None, at: datetime):
    con.execute(
        f"insert into {STATE}.cursors values (?, ?, ?, ?, ?) on conflict (source, stream) do update"
        " set cursor = excluded.cursor, batch_id = excluded.batch_id, updated_at = excluded.updated_at",
        [source, stream, cursor, batch_id, at],
    )
