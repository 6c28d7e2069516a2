"""Copy the landed data of a DuckDB warehouse into a PostgreSQL warehouse, for dbt's `postgres` target.

Extraction itself lands in DuckDB only (`revsync.warehouse.landing` is DuckDB SQL: one writer, Arrow
staging, `arg_max`); there is no PostgreSQL landing path. What runs on PostgreSQL is everything after
landing: the dbt project (`dbt build --target postgres`), the quality gate and the push's state. This
module bridges the two: it copies every `raw_<source>` table and the landing's own state (cursors,
quarantine, stream schema, schema drift in `revsync_state`) from a DuckDB warehouse file into a
PostgreSQL database, table by table with PostgreSQL's COPY (DuckDB writes each table as CSV to a
temporary file, which is streamed to `COPY ... FROM STDIN`), then analysed, all in one PostgreSQL
transaction. Each copied table is replaced whole; nothing else in the PostgreSQL database is touched.
DuckDB's own `postgres` extension would do this in one statement, but it is downloaded at run time,
which a machine without network access cannot do.

    python -m revsync.warehouse.postgres_copy --warehouse .revsync/warehouse.duckdb \\
        --postgres postgresql+psycopg2://postgres@127.0.0.1:5432/revsync
"""

from __future__ import annotations

import argparse
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb
import sqlalchemy as sa

from revsync.warehouse.landing import STATE

# the landing's state tables (landing.ensure_state); its stage tables (stage__*) are transient
STATE_TABLES = ("cursors", "quarantine", "stream_schema", "schema_drift")

# DuckDB column type -> PostgreSQL column type, for the types landing writes
_TYPES = {
    "JSON": "json",
    "VARCHAR": "varchar",
    "TIMESTAMP": "timestamp",
    "TIMESTAMP WITH TIME ZONE": "timestamptz",
    "BIGINT": "bigint",
    "INTEGER": "integer",
    "BOOLEAN": "boolean",
    "DOUBLE": "double precision",
    "DATE": "date",
}
_DECIMAL = re.compile(r"^DECIMAL\((\d+),\s*(\d+)\)$")


@dataclass(frozen=True)
class CopiedTable:
    table: str  # "schema.table"
    rows: int


def landed_tables(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    """(schema, table) of every raw landing table and of the landing's state tables, in order."""
    rows = con.execute(
        "select table_schema, table_name from information_schema.tables"
        " where table_type = 'BASE TABLE' and (starts_with(table_schema, 'raw_')"
        " or (table_schema = ? and list_contains(?, table_name))) order by table_schema, table_name",
        [STATE, list(STATE_TABLES)],
    ).fetchall()
    return [(schema, table) for schema, table in rows]


def postgres_type(duckdb_type: str) -> str:
    decimal = _DECIMAL.match(duckdb_type)
    if decimal:
        return f"numeric({decimal[1]}, {decimal[2]})"
    try:
        return _TYPES[duckdb_type]
    except KeyError:
        raise ValueError(f"no PostgreSQL type for DuckDB's {duckdb_type}") from None


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def copy_landed_to_postgres(warehouse: Path | str, postgres_url: str) -> list[CopiedTable]:
    """Copy the raw landing tables and landing state of the DuckDB `warehouse` into the PostgreSQL
    database at `postgres_url` (a SQLAlchemy URL), replacing those tables there; one transaction.

    Read-only on the DuckDB file (take the warehouse lock around it if extraction may be writing)."""
    source = duckdb.connect(str(warehouse), read_only=True)
    engine = sa.create_engine(postgres_url, poolclass=sa.NullPool)
    copied: list[CopiedTable] = []
    try:
        tables = landed_tables(source)
        pg = engine.raw_connection()
        try:
            with tempfile.TemporaryDirectory(prefix="revsync-pgcopy-") as scratch, pg.cursor() as cur:
                for schema, table in tables:
                    columns = source.execute(
                        "select column_name, data_type from information_schema.columns"
                        " where table_schema = ? and table_name = ? order by ordinal_position",
                        [schema, table],
                    ).fetchall()
                    target = f"{_quote(schema)}.{_quote(table)}"
                    ddl = ", ".join(f"{_quote(c)} {postgres_type(t)}" for c, t in columns)
                    cur.execute(f"create schema if not exists {_quote(schema)}")
                    cur.execute(f"drop table if exists {target}")
                    cur.execute(f"create table {target} ({ddl})")
                    csv = Path(scratch) / "table.csv"
                    # CSV: null is an empty unquoted field, an empty text a quoted one, as COPY reads it
                    source.execute(f"copy (select * from {target}) to '{csv}' (format csv, header false)")
                    with csv.open("rb") as data:
                        cur.copy_expert(f"copy {target} from stdin with (format csv)", data)
                    copied.append(CopiedTable(f"{schema}.{table}", cur.rowcount))
                    cur.execute(f"analyze {target}")  # row counts for the planner of the dbt build
            pg.commit()
        except BaseException:
            pg.rollback()
            raise
        finally:
            pg.close()
    finally:
        engine.dispose()
        source.close()
    return copied


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m revsync.warehouse.postgres_copy",
        description="Copy a DuckDB warehouse's raw landing tables and landing state into PostgreSQL "
        "(COPY, one transaction), for `dbt build --target postgres`. Extraction lands in DuckDB only.",
    )
    parser.add_argument("--warehouse", required=True, help="the DuckDB warehouse file extraction landed in")
    parser.add_argument(
        "--postgres", required=True, help="SQLAlchemy URL of the PostgreSQL database, e.g. postgresql://..."
    )
    args = parser.parse_args(argv)
    started = time.monotonic()
    copied = copy_landed_to_postgres(args.warehouse, args.postgres)
    for table in copied:
        print(f"{table.table}: {table.rows} rows")
    rows = sum(t.rows for t in copied)
    print(f"copied {len(copied)} tables, {rows} rows in {time.monotonic() - started:.1f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
