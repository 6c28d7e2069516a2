"""Raw landing in DuckDB: `raw_<source>.<stream>` plus cursor state, quarantine and schema drift in
`revsync_state`.

`land` stages one batch (one `batch_id`) of one stream, then lands it in ONE transaction:
1. it stages the pages in the stream's stage table in chunks of CHUNK_ROWS, each committed on its own
   (DuckDB holds a transaction's appends in memory, so a staged transaction of millions of records
   would grow with the source; committed chunks spill to disk under the memory limit), sending
   records that break the stream's contract (no primary key, unparseable amount or timestamp) to
   `revsync_state.quarantine` with the reason (once per distinct record);
2. compares the batch's top-level fields and JSON types with the stream's known schema and reports new
   fields and changed types in `revsync_state.schema_drift`;
3. inserts, per primary key, the batch's latest version (highest cursor; arrival order breaks ties)
   unless it is identical to the latest version already landed, so overlapping incremental windows
   and lookbacks land nothing twice;
4. advances the stream's cursor (never backwards).
Quarantine and steps 2-4 are one transaction whose insert is a single bulk append (written to disk
as it goes). A crash anywhere leaves at most a stage table, replaced by the next attempt. Nothing
landed is ever deleted: a rerun of a batch (a retry, a cleared task) reads from the cursor its first
attempt left and adds only versions not landed yet, so it neither loses nor duplicates rows,
whichever batch it reruns.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import duckdb
import orjson
import pyarrow as pa

from revsync.connectors.base import Page, Stream
from revsync.connectors.contract import problem

log = logging.getLogger(__name__)

CHUNK_ROWS = int(os.environ.get("REVSYNC_LANDING_CHUNK_ROWS", "20000"))  # rows staged per insert
STATE = "revsync_state"
RAW_COLUMNS = (
    "record JSON, _pk VARCHAR, _loaded_at TIMESTAMP, _batch_id VARCHAR, _source_url VARCHAR,"
    " _cursor_value VARCHAR, _record_hash VARCHAR"
)
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_JSON_TYPES = {dict: "object", list: "array", str: "string", bool: "boolean", int: "number", float: "number"}


@dataclass
class Drift:
    field: str
    change: str  # new_field | type_changed
    was: str | None
    now: str


@dataclass
class LandResult:
    received: int = 0  # records that passed the contract
    rows: int = 0  # versions inserted
    quarantined: int = 0
    duplicates: int = 0  # repeats of a key within the batch
    unchanged: int = 0  # keys whose latest landed version is identical
    cursor: int | None = None
    drift: list[Drift] = field(default_factory=list)
    fields: dict[str, set[str]] = field(default_factory=dict, repr=False)  # top-level field -> JSON types
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
        " reason VARCHAR, record JSON, loaded_at TIMESTAMP, record_hash VARCHAR)"
    )
    con.execute(
        f"create table if not exists {STATE}.stream_schema (source VARCHAR, stream VARCHAR,"
        " field VARCHAR, json_type VARCHAR, first_batch VARCHAR, first_seen_at TIMESTAMP,"
        " primary key (source, stream, field))"
    )
    con.execute(
        f"create table if not exists {STATE}.schema_drift (source VARCHAR, stream VARCHAR, batch_id VARCHAR,"
        " field VARCHAR, change VARCHAR, was_type VARCHAR, now_type VARCHAR, detected_at TIMESTAMP)"
    )


def ensure_raw(con: duckdb.DuckDBPyConnection, source: str, stream: str) -> str:
    con.execute(f"create schema if not exists raw_{source}")
    table = raw_table(source, stream)
    con.execute(f"create table if not exists {table} ({RAW_COLUMNS})")
    return table


def read_cursor(con: duckdb.DuckDBPyConnection, source: str, stream: str) -> int | None:
    ensure_state(con)
    row = con.execute(
        f"select cursor from {STATE}.cursors where source = ? and stream = ?", [source, stream]
    ).fetchall()
    return int(row[0][0]) if row and row[0][0] is not None else None


def land(
    con: duckdb.DuckDBPyConnection,
    source: str,
    stream: Stream,
    pages: Iterable[Page],
    batch_id: str,
    cursor_floor: int | None = None,
) -> LandResult:
    """Land every page of `stream` as batch `batch_id`, atomically and idempotently.

    The stream's cursor becomes the furthest of `cursor_floor` (the previous cursor, or when the
    stream's cursor field is a creation time, the time a full load started) and, when the records'
    cursors are change times, the furthest record cursor.
    """
    ensure_state(con)
    table = ensure_raw(con, source, stream.name)
    loaded_at = datetime.now(UTC).replace(tzinfo=None)
    result = LandResult(cursor=cursor_floor)
    stage = f'{STATE}."stage__{source}__{stream.name}"'
    con.execute(
        f"create or replace table {stage} (record VARCHAR, _pk VARCHAR, _source_url VARCHAR,"
        " _cursor BIGINT, _ord BIGINT)"
    )
    try:
        for chunk in _chunks(pages, stream, result):
            _stage_chunk(con, stage, chunk)
        con.execute("begin transaction")
        try:
            _quarantine(con, source, stream.name, batch_id, loaded_at, result)
            result.drift = _detect_drift(con, source, stream.name, batch_id, loaded_at, result.fields)
            _insert_latest_versions(con, stage, table, stream, batch_id, loaded_at, result)
            _upsert_cursor(con, source, stream.name, batch_id, result.cursor, loaded_at)
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise
    finally:
        con.execute(f"drop table if exists {stage}")
    for d in result.drift:
        log.warning(
            "schema drift in %s.%s: %s %s (%s -> %s)", source, stream.name, d.change, d.field, d.was, d.now
        )
    return result


@dataclass
class _Chunk:
    records: list[str] = field(default_factory=list)
    pks: list[str] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)
    cursors: list[int | None] = field(default_factory=list)
    ords: list[int] = field(default_factory=list)


def _chunks(pages: Iterable[Page], stream: Stream, result: LandResult) -> Iterator[_Chunk]:
    """Group page records into chunks of CHUNK_ROWS; records breaking the contract go to `result.bad`."""
    chunk, ordinal = _Chunk(), 0
    track = stream.cursor_is_change_time
    shapes: set[tuple] = set()  # distinct (field, type) signatures: most records share a handful
    for page in pages:
        for record, cursor in zip(page.records, page.cursors, strict=True):
            reason = problem(stream, record, cursor)
            if reason is not None:
                result.bad.append((reason, record))
                continue
            ordinal += 1
            shape = tuple((k, type(v)) for k, v in record.items())
            if shape not in shapes:
                shapes.add(shape)
                for name, kind in shape:
                    result.fields.setdefault(name, set()).add(_JSON_TYPES.get(kind, "null"))
            chunk.records.append(orjson.dumps(record, option=orjson.OPT_SORT_KEYS).decode())
            chunk.pks.append(str(record[stream.primary_key]))
            chunk.urls.append(page.source_url)
            chunk.cursors.append(cursor)
            chunk.ords.append(ordinal)
            if track and cursor is not None and (result.cursor is None or cursor > result.cursor):
                result.cursor = cursor
            if len(chunk.pks) >= CHUNK_ROWS:
                yield chunk
                chunk = _Chunk()
    result.received = ordinal
    if chunk.pks:
        yield chunk


def _stage_chunk(con: duckdb.DuckDBPyConnection, stage: str, chunk: _Chunk) -> None:
    arrow = pa.table(
        {
            "record": chunk.records,
            "_pk": chunk.pks,
            "_source_url": chunk.urls,
            "_cursor": pa.array(chunk.cursors, pa.int64()),
            "_ord": pa.array(chunk.ords, pa.int64()),
        }
    )
    con.register("_landing_chunk", arrow)
    try:
        con.execute(f"insert into {stage} select * from _landing_chunk")
    finally:
        con.unregister("_landing_chunk")


def _insert_latest_versions(con, stage: str, table: str, stream: Stream, batch_id: str, loaded_at, result):
    """Insert each key's latest version in the batch unless the latest landed version is identical.

    Winners are chosen on narrow columns (key, cursor, arrival) so that no sort or window ever carries
    the records themselves: a batch of millions of large documents stays within the memory limit.
    """
    tie = "-" if stream.newest_first else ""  # equal cursors: the first arrival when newest come first
    con.execute(
        f"create or replace temp table _landing_winners as select _pk,"
        f" arg_max(_ord, (coalesce(_cursor, -1), {tie}_ord)) as _ord from {stage} group by _pk"
    )
    (distinct,) = con.execute("select count(*) from _landing_winners").fetchone()
    (landed_before,) = con.execute(f"select count(*) from (select 1 from {table} limit 1)").fetchone()
    if landed_before:
        con.execute(
            "create or replace temp table _landing_landed as select _pk,"
            f" arg_max(_record_hash, (_loaded_at, _batch_id)) as h from {table}"
            " where _pk in (select _pk from _landing_winners) group by _pk"
        )
        landed_join = (
            " left join _landing_landed landed on landed._pk = b._pk where landed.h is distinct from b.h"
        )
    else:  # the first load of the stream: nothing to compare with
        landed_join = ""
    (added,) = con.execute(
        f"insert into {table} select b.record::JSON, b._pk, ?::TIMESTAMP, ?, b._source_url,"
        " b._cursor::VARCHAR, b.h"
        f" from (select s.*, md5(s.record) as h from {stage} s"
        " semi join _landing_winners w on w._ord = s._ord) b"
        f"{landed_join}",
        [loaded_at, batch_id],
    ).fetchone()
    con.execute("drop table if exists _landing_winners")
    con.execute("drop table if exists _landing_landed")
    result.rows = added
    result.duplicates = result.received - distinct
    result.unchanged = distinct - added


def _quarantine(con, source: str, stream: str, batch_id: str, loaded_at: datetime, result: LandResult):
    bad, result.bad = result.bad, []
    if bad:
        rows = pa.table(
            {
                "reason": [reason for reason, _ in bad],
                "record": [orjson.dumps(rec, option=orjson.OPT_SORT_KEYS).decode() for _, rec in bad],
            }
        )
        con.register("_quarantine_chunk", rows)
        try:
            con.execute(
                f"insert into {STATE}.quarantine select distinct on (md5(record), reason) ?, ?, ?, reason,"
                " record::JSON, ?::TIMESTAMP, md5(record) from _quarantine_chunk q where not exists"
                f" (select 1 from {STATE}.quarantine x where x.source = ? and x.stream = ?"
                " and x.record_hash = md5(q.record) and x.reason = q.reason)",
                [source, stream, batch_id, loaded_at, source, stream],
            )
        finally:
            con.unregister("_quarantine_chunk")
        log.warning("quarantined %d records of %s.%s, e.g.: %s", len(bad), source, stream, bad[0][0])
    result.quarantined = len(bad)


def _detect_drift(con, source: str, stream: str, batch_id: str, at: datetime, fields) -> list[Drift]:
    """Compare the batch's top-level fields and JSON types with the stream's recorded schema."""
    seen = {name: _merged(kinds) for name, kinds in fields.items()}
    known = dict(
        con.execute(
            f"select field, json_type from {STATE}.stream_schema where source = ? and stream = ?",
            [source, stream],
        ).fetchall()
    )
    drift: list[Drift] = []
    for name, kind in seen.items():
        was = known.get(name)
        if was is None:
            if known:
                drift.append(Drift(name, "new_field", None, kind))
        elif "null" not in (was, kind) and was != kind:
            drift.append(Drift(name, "type_changed", was, kind))
        elif was == "null" and kind != "null":
            con.execute(
                f"update {STATE}.stream_schema set json_type = ?"
                " where source = ? and stream = ? and field = ?",
                [kind, source, stream, name],
            )
    fresh = [(source, stream, n, k, batch_id, at) for n, k in seen.items() if n not in known]
    if fresh:
        con.executemany(f"insert into {STATE}.stream_schema values (?, ?, ?, ?, ?, ?)", fresh)
    if drift:
        con.executemany(
            f"insert into {STATE}.schema_drift values (?, ?, ?, ?, ?, ?, ?, ?)",
            [(source, stream, batch_id, d.field, d.change, d.was, d.now, at) for d in drift],
        )
    return drift


def _merged(kinds: set[str]) -> str:
    """One JSON type for a field: nulls do not count; two real types make it `mixed`."""
    real = kinds - {"null"}
    if not real:
        return "null"
    return real.pop() if len(real) == 1 else "mixed"


def _upsert_cursor(con, source: str, stream: str, batch_id: str, cursor: int | None, at: datetime):
    con.execute(
        f"insert into {STATE}.cursors values (?, ?, ?, ?, ?) on conflict (source, stream) do update"
        " set cursor = coalesce(greatest(excluded.cursor::BIGINT, cursors.cursor::BIGINT)::VARCHAR,"
        " excluded.cursor, cursors.cursor), batch_id = excluded.batch_id, updated_at = excluded.updated_at",
        [source, stream, None if cursor is None else str(cursor), batch_id, at],
    )
