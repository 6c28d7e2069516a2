"""The served world: one DuckDB connection owned by the server process, plus a block cache of rendered
records so list pages do not scan the table.

All four vendor apps run in one event loop and share this object; DuckDB calls are synchronous and
short, so the loop thread is the only user of the connection and no lock is needed.
"""

from __future__ import annotations

import re
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import orjson

BLOCK = 1024  # rows rendered per cache block: one DuckDB round trip serves ~10 pages of 100

# Formatting macros shared by the vendor renderers (timestamps are stored as epoch seconds).
_MACROS = [
    "create or replace temp macro iso_z(ts) as "
    "case when ts is null then null else strftime(make_timestamp(ts * 1000000), '%Y-%m-%dT%H:%M:%SZ') end",
    "create or replace temp macro iso_ms_z(ts) as "
    "case when ts is null then null "
    "else strftime(make_timestamp(ts * 1000000), '%Y-%m-%dT%H:%M:%S.000Z') end",
    # NetSuite serves datetimes in the account's zone (a fixed Pacific offset here) and dates bare.
    "create or replace temp macro iso_pacific(ts) as "
    "case when ts is null then null "
    "else strftime(make_timestamp((ts - 8 * 3600) * 1000000), '%Y-%m-%dT%H:%M:%S') || '-08:00' end",
    "create or replace temp macro date_pacific(ts) as "
    "case when ts is null then null else strftime(make_timestamp((ts - 8 * 3600) * 1000000), '%Y-%m-%d') end",
    "create or replace temp macro epoch_ms_str(ts) as "
    "case when ts is null then null else (ts * 1000)::varchar end",
]


_CALLS = ("json_object(", "json_array(")
_KEY = re.compile(r"^'((?:[^']|'')*)'$")


def _call_end(sql: str, open_paren: int) -> tuple[list[str], int]:
    """The top-level arguments of the call whose '(' is at `open_paren`, and the index after its ')'."""
    args, depth, start, i = [], 0, open_paren + 1, open_paren
    while i < len(sql):
        char = sql[i]
        if char == "'":
            i = sql.index("'", i + 1)
            while i + 1 < len(sql) and sql[i + 1] == "'":  # '' inside a literal
                i = sql.index("'", i + 2)
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                args.append(sql[start:i])
                return [a.strip() for a in args if a.strip()], i + 1
        elif char == "," and depth == 1:
            args.append(sql[start:i])
            start = i + 1
        i += 1
    raise ValueError(f"unbalanced parentheses in {sql[open_paren : open_paren + 80]!r}")


def _next_call(sql: str, at: int) -> int:
    lowered = sql.lower()
    found = [p for p in (lowered.find(name, at) for name in _CALLS) if p >= 0]
    return min(found, default=-1)


def _as_literals(sql: str, wrap: bool) -> str:
    """json_object/json_array calls in `sql` as STRUCT/LIST literals (outermost wrapped in to_json)."""
    out, i = [], 0
    while (start := _next_call(sql, i)) >= 0:
        args, end = _call_end(sql, sql.index("(", start))
        if sql[start:].lower().startswith("json_object("):
            keys = args[0::2]
            if not all(_KEY.match(k) for k in keys):  # computed keys: leave the call to DuckDB
                out += [sql[i:end]]
                i = end
                continue
            literal = "{" + ", ".join(
                f"{k}: {_as_literals(v, False)}" for k, v in zip(keys, args[1::2], strict=True)
            )
            literal += "}"
        else:
            literal = "[" + ", ".join(_as_literals(a, False) for a in args) + "]"
        out += [sql[i:start], f"to_json({literal})" if wrap else literal]
        i = end
    return "".join(out) + sql[i:]


def struct_json(sql: str) -> str:
    """Rewrite the json_object(...)/json_array(...) documents in `sql` as one to_json(STRUCT literal).

    Nested json_object calls each build and serialize a JSON value that their parent parses again;
    for wide vendor documents that cost ~60 µs a row. DuckDB serializes a STRUCT in one pass, with
    byte-identical output.
    """
    return _as_literals(sql, True)


@dataclass(frozen=True)
class Resource:
    """One listable object type: how to render a window of rows of `table` as vendor JSON.

    `select` is a SQL query returning (seq, doc, *extra) for rows with ``t.seq between $lo and $hi``
    (`t` aliases `table`); `doc` is the record's JSON text exactly as the vendor serves it. `extra`
    columns are named in `extras` and can be filtered on in Python without leaving the cache.
    """

    name: str
    table: str
    select: str
    extras: tuple[str, ...] = ()


@dataclass
class Row:
    seq: int
    doc: str
    extra: dict[str, Any] = field(default_factory=dict)


class World:
    def __init__(self, path: Path | str, *, read_only: bool = False) -> None:
        self.path = Path(path)
        self.con = duckdb.connect(str(self.path), read_only=read_only)
        self.con.execute("set TimeZone = 'UTC'")
        for macro in _MACROS:
            self.con.execute(macro)
        self._versions: dict[str, int] = {}
        self._blocks: OrderedDict[tuple[str, int, int], list[Row]] = OrderedDict()
        self._max_blocks = 128  # ~1 block per stream being paged is enough; a block of invoices is ~2 MB
        self._tops: dict[str, tuple[int, int]] = {}
        self._fast_sql: dict[str, str] = {}  # Resource.select -> its struct_json rewrite
        self._columns: dict[str, list[str]] = {}  # table -> its column names, in order

    # -- plain SQL ----------------------------------------------------------------------------
    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        return self.con.execute(sql, list(params)).fetchall()

    def scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        found = self.con.execute(sql, list(params)).fetchall()
        return found[0][0] if found else None

    def meta(self, key: str, default: str | None = None) -> str | None:
        value = self.scalar("select value from meta where key = ?", [key])
        return default if value is None else value

    def max_seq(self, table: str) -> int:
        version = self._versions.get(table, 0)
        cached = self._tops.get(table)
        if cached is None or cached[0] != version:
            cached = (version, int(self.scalar(f"select coalesce(max(seq), 0) from {table}")))
            self._tops[table] = cached
        return cached[1]

    def next_seq(self, table: str) -> int:
        return self.max_seq(table) + 1

    def version(self, table: str) -> int:
        """A number that changes whenever `table` is written (for caches keyed on table contents)."""
        return self._versions.get(table, 0)

    def changed(self, *tables: str) -> None:
        """Invalidate cached blocks of `tables` after a write to them."""
        for table in tables:
            self._versions[table] = self._versions.get(table, 0) + 1

    def appended(self, table: str, seq: int) -> None:
        """`changed(table)` after inserting the row `seq` = `next_seq(table)`: the new top is known, so
        the next `max_seq` need not ask DuckDB for it."""
        self.changed(table)
        self._tops[table] = (self._versions[table], seq)

    def updated(self, table: str) -> None:
        """`changed(table)` after updating rows of `table` in place: no row was added or removed, so a
        cached top (`max_seq`) stays valid."""
        top = self._tops.get(table)
        version = self._versions.get(table, 0)
        self.changed(table)
        if top is not None and top[0] == version:
            self._tops[table] = (self._versions[table], top[1])

    def changed_all(self) -> None:
        tables = [r[0] for r in self.rows("select table_name from information_schema.tables")]
        self._columns.clear()
        self.changed(*tables)

    def columns(self, table: str) -> list[str]:
        """`table`'s column names in order (the world's schema does not change while it is served)."""
        found = self._columns.get(table)
        if found is None:
            found = self._columns[table] = [r[0] for r in self.rows(f"describe {table}")]
        return found

    # -- rendered, cached windows -------------------------------------------------------------
    def _block(self, resource: Resource, number: int) -> list[Row]:
        key = (resource.name, number, self._versions.get(resource.table, 0))
        cached = self._blocks.get(key)
        if cached is not None:
            self._blocks.move_to_end(key)
            return cached
        lo, hi = number * BLOCK + 1, (number + 1) * BLOCK
        fast = self._fast_sql.get(resource.select)
        if fast is None:
            fast = self._fast_sql[resource.select] = struct_json(resource.select)
        sql = fast.replace("$lo", str(lo)).replace("$hi", str(hi)) + " order by t.seq"
        rendered = [Row(r[0], r[1], dict(zip(resource.extras, r[2:], strict=True))) for r in self.rows(sql)]
        self._blocks[key] = rendered
        if len(self._blocks) > self._max_blocks:
            self._blocks.popitem(last=False)
        return rendered

    def scan(
        self,
        resource: Resource,
        *,
        after: int = 0,
        before: int | None = None,
        descending: bool = False,
        limit: int,
        keep: Callable[[Row], bool] | None = None,
    ) -> tuple[list[Row], bool]:
        """Up to `limit` rows with after < seq < before in seq order; returns (rows, has_more).

        `keep` filters rows in Python (for cheap filters on `extras`); selective filters belong in
        SQL instead, since this walks blocks until `limit` rows pass.
        """
        top = self.max_seq(resource.table)
        hi = top if before is None else min(before - 1, top)
        lo = max(after + 1, 1)
        found: list[Row] = []
        if hi < lo:
            return found, False
        numbers = (
            range((hi - 1) // BLOCK, (lo - 1) // BLOCK - 1, -1)
            if descending
            else range((lo - 1) // BLOCK, (hi - 1) // BLOCK + 1)
        )
        for number in numbers:
            block = self._block(resource, number)
            for row in reversed(block) if descending else block:
                if row.seq < lo or row.seq > hi or (keep is not None and not keep(row)):
                    continue
                if len(found) == limit:
                    return found, True
                found.append(row)
        return found, False

    def get(self, resource: Resource, seq: int | None) -> Row | None:
        if seq is None or seq < 1:
            return None
        for row in self._block(resource, (seq - 1) // BLOCK):
            if row.seq == seq:
                return row
        return None

    def seq_at_or_after(self, table: str, column: str, value: int) -> int:
        """Smallest seq whose `column` >= value; seq order is creation order for *_at columns."""
        found = self.scalar(f"select min(seq) from {table} where {column} >= ?", [value])
        return int(found) if found is not None else self.max_seq(table) + 1

    # -- write log ----------------------------------------------------------------------------
    def record_write(
        self,
        *,
        vendor: str,
        method: str,
        path: str,
        status: int,
        idempotency_key: str | None = None,
        principal: str | None = None,
        body: Any = None,
        response: Any = None,
        replayed: bool = False,
    ) -> None:
        seq = self.next_seq("writes")
        self.con.execute(
            "insert into writes values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                seq,
                vendor,
                method,
                path,
                status,
                idempotency_key,
                principal,
                None if body is None else orjson.dumps(body).decode(),
                None if response is None else orjson.dumps(response).decode(),
                replayed,
                int(time.time()),
            ],
        )
        self.appended("writes", seq)

    def close(self) -> None:
        self.con.close()
