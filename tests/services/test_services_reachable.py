"""The real services the project depends on answer and keep what we write.

These are the smoke tests behind `.ci/run`'s rule that CI never skips a service test.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
import redis
import sqlalchemy as sa
from sqlalchemy.pool import NullPool


@pytest.fixture
def pg_engine(postgres_dsn: str) -> Iterator[sa.Engine]:
    engine = sa.create_engine(postgres_dsn, poolclass=NullPool)
    yield engine
    engine.dispose()


@pytest.fixture
def scratch_schema(pg_engine: sa.Engine) -> Iterator[str]:
    """A uniquely named schema that is dropped, with everything in it, after the test."""
    name = f"revsync_test_{uuid.uuid4().hex[:12]}"
    with pg_engine.begin() as conn:
        conn.execute(sa.text(f'create schema "{name}"'))
    try:
        yield name
    finally:
        with pg_engine.begin() as conn:
            conn.execute(sa.text(f'drop schema if exists "{name}" cascade'))


def test_postgres_round_trip(pg_engine: sa.Engine, scratch_schema: str) -> None:
    metadata = sa.MetaData(schema=scratch_schema)
    invoices = sa.Table(
        "invoices",
        metadata,
        sa.Column("invoice_id", sa.Text, primary_key=True),
        sa.Column("amount_cents", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.Text, nullable=False),
    )
    rows = [
        {"invoice_id": "in_001", "amount_cents": 129_900, "currency": "usd"},
        {"invoice_id": "in_002", "amount_cents": 5, "currency": "eur"},
    ]
    with pg_engine.begin() as conn:
        metadata.create_all(conn)
        conn.execute(sa.insert(invoices), rows)

    with pg_engine.connect() as conn:
        got = conn.execute(sa.select(invoices).order_by(invoices.c.invoice_id)).mappings().all()
    assert [dict(r) for r in got] == rows

    with pg_engine.begin() as conn:
        invoices.drop(conn)
        tables = sa.inspect(conn).get_table_names(schema=scratch_schema)
    assert tables == []


def test_redis_set_get_expire(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url, socket_timeout=5)
    key = f"revsync:test:{uuid.uuid4().hex}"
    try:
        assert client.set(key, "acknowledged") is True
        assert client.get(key) == b"acknowledged"

        assert client.expire(key, 60) is True
        assert 0 < client.ttl(key) <= 60

        assert client.pexpire(key, 50) is True
        deadline = time.monotonic() + 5
        while client.exists(key) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert client.get(key) is None, "key outlived its 50 ms expiry"
    finally:
        client.delete(key)
        client.close()
