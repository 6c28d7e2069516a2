"""The same quality engine and erp_changes suite on the PostgreSQL warehouse: GX's SQL datasource as is
(no DuckDB patch involved), types spelled PostgreSQL's way. A clean change set passes; a duplicate
idempotency key and a negative amount fail with the table and the failing rows named."""

from __future__ import annotations

import dataclasses
import json
import uuid
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from revsync.quality.engine import run_suites
from revsync.quality.suites import load_suites

pytestmark = pytest.mark.services

DDL = """
create table {t} (
    idempotency_key varchar, target varchar, record_type varchar, operation varchar,
    target_external_id varchar, target_internal_id varchar, customer_key varchar, sequence integer,
    depends_on_idempotency_key varchar, correlation_id varchar, currency varchar,
    source_changed_at timestamp, source_id varchar, payload json, amount numeric(18, 3),
    http_method varchar, http_path varchar, source_system varchar, payload_hash varchar, reason varchar
)
"""


def _row(i: int, changed: datetime) -> dict:
    return {
        "k": f"key{i:04d}",
        "ext": f"in_{i}",
        "cust": f"cus_{i % 7}",
        "corr": f"stripe:invoice:in_{i}:1767225600",
        "changed": changed,
        "payload": json.dumps({"externalId": f"in_{i}"}),
        "amount": 10 + i,
        "path": f"/record/v1/invoice/eid:in_{i}",
    }


INSERT = sa.text(
    "insert into {t} values (:k, 'netsuite', 'invoice', 'create', :ext, null, :cust, 3, null, :corr, 'usd', "
    ":changed, :ext, cast(:payload as json), :amount, 'PUT', :path, 'stripe', :k, 'not_yet_synced')"
)


@pytest.fixture
def pg_changes(postgres_dsn):
    """(dsn, the erp_changes suite pointed at a fresh PostgreSQL table of 20 clean change rows)."""
    schema = f"gx_{uuid.uuid4().hex[:10]}"
    table = f"{schema}.erp_changes"
    engine = sa.create_engine(postgres_dsn)
    now = datetime.now()
    with engine.begin() as con:
        con.execute(sa.text(f"create schema {schema}"))
        con.execute(sa.text(DDL.format(t=table)))
        con.execute(
            sa.text(INSERT.text.format(t=table)), [_row(i, now - timedelta(hours=i)) for i in range(20)]
        )
    spec = dataclasses.replace(load_suites()["sync.erp_changes"], table=table)
    try:
        yield postgres_dsn, spec, engine
    finally:
        with engine.begin() as con:
            con.execute(sa.text(f"drop schema {schema} cascade"))
        engine.dispose()


def test_clean_change_set_passes_on_postgres(pg_changes):
    dsn, spec, _ = pg_changes
    [result] = run_suites(dsn, [spec])
    assert result.success, [o.describe() for o in result.failures]
    unique = next(o for o in result.outcomes if o.expectation == "expect_column_values_to_be_unique")
    assert unique.observed["element_count"] == 20


def test_defects_fail_on_postgres(pg_changes):
    dsn, spec, engine = pg_changes
    with engine.begin() as con:
        con.execute(
            sa.text(f"insert into {spec.table} select * from {spec.table} where idempotency_key = 'key0003'")
        )
        con.execute(sa.text(f"update {spec.table} set amount = -1 where idempotency_key = 'key0005'"))
    [result] = run_suites(dsn, [spec])
    failed = {(o.expectation, o.column): o for o in result.failures}
    assert set(failed) == {
        ("expect_column_values_to_be_unique", "idempotency_key"),
        ("expect_column_values_to_be_between", "amount"),
    }
    duplicate = failed["expect_column_values_to_be_unique", "idempotency_key"]
    assert duplicate.table == spec.table and duplicate.policy == "block"
    assert [r["idempotency_key"] for r in duplicate.sample_rows] == ["key0003", "key0003"]
    negative = failed["expect_column_values_to_be_between", "amount"]
    assert negative.policy == "quarantine"
    assert [(r["idempotency_key"], float(r["amount"])) for r in negative.sample_rows] == [("key0005", -1.0)]
