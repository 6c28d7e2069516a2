"""SQLAlchemy access to the warehouse for revsync's own state (gate results, outbox, audit log).

The same code serves a DuckDB file and a PostgreSQL database; DuckDB allows one writing process at a
time, so writers hold the warehouse's advisory lock for the block (PostgreSQL has transactions)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

from revsync.warehouse.connect import MEMORY_LIMIT, retry_lock_conflict, warehouse_lock

# where the gate publishes what passed: the only tables the push reads
VALIDATED_SCHEMA = "validated"


def connection_url(warehouse: Path | str) -> str:
    """A SQLAlchemy URL: a PostgreSQL URL passes through; anything else is a DuckDB file path."""
    text = str(warehouse)
    if text.startswith(("postgresql", "postgres://")):
        return text
    return f"duckdb:///{Path(text).absolute()}"


def is_postgres(warehouse: Path | str) -> bool:
    return connection_url(warehouse).startswith("postgres")


def state_engine(warehouse: Path | str) -> sa.Engine:
    """A read-write SQLAlchemy engine on the warehouse (DuckDB with revsync's memory limit)."""
    url = connection_url(warehouse)
    if url.startswith("duckdb"):
        config = {"memory_limit": MEMORY_LIMIT}
        engine = sa.create_engine(url, connect_args={"config": config}, poolclass=sa.NullPool)

        @sa.event.listens_for(engine, "do_connect")
        def _wait_out_a_closing_holder(dialect, record, cargs, cparams):  # noqa: ANN001, ANN202
            return retry_lock_conflict(lambda: dialect.connect(*cargs, **cparams))

        return engine
    return sa.create_engine(url, poolclass=sa.NullPool)


def table_exists(connection: sa.Connection, schema: str, table: str) -> bool:
    """Whether `schema.table` exists (information_schema: DuckDB and PostgreSQL alike)."""
    found = connection.execute(
        sa.text("select count(*) from information_schema.tables where table_schema = :s and table_name = :t"),
        {"s": schema, "t": table},
    ).scalar_one()
    return bool(found)


@contextmanager
def writer_lock(warehouse: Path | str) -> Iterator[None]:
    """The DuckDB warehouse's writer lock for the block (PostgreSQL has transactions for writers)."""
    if is_postgres(warehouse):
        yield
    else:
        with warehouse_lock(warehouse):
            yield
