"""Two minimal patches that make Great Expectations' SQL path truly validate DuckDB (duckdb-engine).

1. The empty metric bundle (IndexError in `resolve_metric_bundle`; great_expectations issues #10738 and
   #11579, still open in 1.24). Root cause: `SqlAlchemyExecutionEngine.execute_query` runs the query in
   `with engine.connect()` and returns the un-fetched `CursorResult` after that block has closed the
   connection. Closing returns the DBAPI connection to the pool, whose reset-on-return calls
   `rollback()` on it. duckdb-engine's cursor is not a cursor of its own: every `CursorWrapper`
   executes on the one `DuckDBPyConnection` (see its "single cursor for all queries" note), and a
   DuckDB connection holds one pending result at a time, so the ROLLBACK discards the result and the
   caller's `fetchall()` gets `[]` -> `res[0]` IndexError, every expectation "fails" with observed
   value None, whatever the data. (PostgreSQL's psycopg2 buffers rows at execute, so it never shows.)
   Patch: for the duckdb dialect only, buffer the rows while the connection is still open
   (`result.freeze()()`: the same `Result` interface, rows already in memory). Every query GX sends
   through here is an aggregate or a bounded sample, so buffering costs nothing at scale.

2. Column reflection. duckdb-engine 0.17 reflects columns with SQLAlchemy's PostgreSQL query, which
   on SQLAlchemy 2.1 joins `pg_catalog.pg_collation` (absent in DuckDB): `get_columns` raises, GX falls
   back to `SELECT * FROM <table> LIMIT 1` *without the schema* ("Table with name erp_changes does not
   exist") and the column-type metrics have no types. Patch: reflect from DuckDB's
   `information_schema.columns`, mapping DuckDB type names to SQLAlchemy types.

`apply()` is idempotent and changes nothing for other dialects (PostgreSQL goes through GX unchanged).
"""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa

_APPLIED = False

# DuckDB `information_schema.columns.data_type` base names -> SQLAlchemy types (GX compares with isinstance).
_TYPES: dict[str, Any] = {
    "VARCHAR": sa.VARCHAR,
    "TEXT": sa.TEXT,
    "BOOLEAN": sa.BOOLEAN,
    "TINYINT": sa.SMALLINT,
    "SMALLINT": sa.SMALLINT,
    "INTEGER": sa.INTEGER,
    "BIGINT": sa.BIGINT,
    "HUGEINT": sa.NUMERIC,
    "FLOAT": sa.FLOAT,
    "REAL": sa.REAL,
    "DOUBLE": sa.DOUBLE,
    "DATE": sa.DATE,
    "TIME": sa.TIME,
    "TIMESTAMP": sa.TIMESTAMP,
    "JSON": sa.JSON,
    "UUID": sa.UUID,
    "BLOB": sa.LargeBinary,
}


def duckdb_type(data_type: str) -> sa.types.TypeEngine:
    """The SQLAlchemy type for a DuckDB type name such as `DECIMAL(18,3)` or `TIMESTAMP WITH TIME ZONE`."""
    name = data_type.strip().upper()
    decimal = re.fullmatch(r"(?:DECIMAL|NUMERIC)\((\d+),\s*(\d+)\)", name)
    if decimal:
        return sa.NUMERIC(int(decimal.group(1)), int(decimal.group(2)))
    if name in ("TIMESTAMP WITH TIME ZONE", "TIMESTAMPTZ"):
        return sa.TIMESTAMP(timezone=True)
    if name.startswith("TIMESTAMP"):
        return sa.TIMESTAMP()
    base = _TYPES.get(name)
    return base() if base is not None else sa.types.NullType()


def _get_columns(self, connection, table_name, schema=None, **kw):  # noqa: ANN001, ANN202 (SQLAlchemy's signature)
    rows = connection.execute(
        sa.text(
            "select column_name, data_type, is_nullable, column_default from information_schema.columns "
            "where table_name = :table and table_schema = coalesce(:schema, current_schema()) "
            "order by ordinal_position"
        ),
        {"table": str(table_name), "schema": schema},
    ).fetchall()
    if not rows:
        raise sa.exc.NoSuchTableError(f"{schema}.{table_name}" if schema else str(table_name))
    return [
        {"name": name, "type": duckdb_type(dtype), "nullable": nullable == "YES", "default": default}
        for name, dtype, nullable, default in rows
    ]


def apply() -> None:
    """Install both patches (once per process)."""
    global _APPLIED
    if _APPLIED:
        return
    import duckdb_engine
    from great_expectations.execution_engine import sqlalchemy_execution_engine as gx_sql

    original = gx_sql.SqlAlchemyExecutionEngine.execute_query

    def execute_query(self, query):  # noqa: ANN001, ANN202
        if self.dialect_name != "duckdb":
            return original(self, query)
        with self.get_connection() as connection:
            # fetch before the pool's reset-on-return ROLLBACK discards DuckDB's pending result
            return self._execute_query_with_recovery(connection, query).freeze()()

    execute_query.__doc__ = original.__doc__
    gx_sql.SqlAlchemyExecutionEngine.execute_query = execute_query
    duckdb_engine.Dialect.get_columns = _get_columns
    _APPLIED = True
