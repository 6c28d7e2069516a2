"""The quality gate on the PostgreSQL warehouse: the built small world's canonical marts and change sets,
copied into a fresh PostgreSQL database, pass the canonical and sync stages with the same suites (GX's
SQL datasource as is, types spelled PostgreSQL's way) and the sync stage publishes `validated.*`; a
duplicate key blocks and a negative amount is quarantined with its dependents, written through the same
SQLAlchemy code as on DuckDB."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest
import sqlalchemy as sa

from revsync.quality.gate import QUARANTINE_TABLE, GateBlocked, GateSettings, run_gate

pytestmark = [pytest.mark.integration, pytest.mark.services]

TABLES = [
    *(
        f"canonical.{t}"
        for t in (
            "customers",
            "subscriptions",
            "invoices",
            "payments",
            "credit_notes",
            "entitlements",
            "support_cases",
            "deals",
            "usage",
        )
    ),
    "sync.erp_changes",
    "sync.entitlement_changes",
]


def _pg_type(duckdb_type: str) -> str:
    return {"DOUBLE": "double precision", "HUGEINT": "numeric(38, 0)", "VARCHAR[]": "varchar[]"}.get(
        duckdb_type, duckdb_type.replace("DECIMAL", "numeric")
    )


def _copy(source: Path, engine: sa.Engine) -> None:
    con = duckdb.connect(str(source), read_only=True)
    try:
        with engine.begin() as pg:
            for table in TABLES:
                schema, name = table.split(".")
                columns = con.execute(
                    "select column_name, data_type from information_schema.columns "
                    "where table_schema = ? and table_name = ? order by ordinal_position",
                    [schema, name],
                ).fetchall()
                pg.execute(sa.text(f"create schema if not exists {schema}"))
                ddl = ", ".join(f'"{c}" {_pg_type(t)}' for c, t in columns)
                pg.execute(sa.text(f"create table {table} ({ddl})"))
                rows = con.execute(f"select * from {table}").fetchall()
                if rows:
                    names = [c for c, _ in columns]
                    values = ", ".join(
                        f"cast(:p{i} as json)" if t == "JSON" else f":p{i}"
                        for i, (_, t) in enumerate(columns)
                    )
                    insert = sa.text(f"insert into {table} ({', '.join(names)}) values ({values})")
                    pg.execute(insert, [{f"p{i}": v for i, v in enumerate(row)} for row in rows])
    finally:
        con.close()


@pytest.fixture
def pg_warehouse(new_postgres_database, small_built):
    """A fresh PostgreSQL database holding the small world's canonical marts and change sets."""
    with new_postgres_database("revsync_gate") as url:
        engine = sa.create_engine(url)
        try:
            _copy(small_built.warehouse, engine)
            yield url, engine
        finally:
            engine.dispose()


def test_the_gate_runs_on_postgres(pg_warehouse, tmp_path, change_queries):
    url, engine = pg_warehouse
    settings = GateSettings(docs_dir=tmp_path / "quality")
    canonical = run_gate("canonical", url, settings=settings)
    assert canonical.passed and len(canonical.results) == 9
    assert all(o.success for r in canonical.results for o in r.outcomes), canonical.message()
    sync = run_gate("sync", url, settings=settings)
    assert sync.passed and sync.quarantined == {"sync.erp_changes": {}, "sync.entitlement_changes": {}}
    with engine.connect() as con:
        built = con.execute(sa.text("select count(*) from sync.erp_changes")).scalar_one()
        published = con.execute(sa.text("select count(*) from validated.erp_changes")).scalar_one()
    assert published == built == sync.validated_rows["sync.erp_changes"] > 0

    # a negative amount is quarantined with the payment that depends on it
    with engine.begin() as con:
        invoice, payment = con.execute(sa.text(change_queries["dependent_invoice"])).one()
        con.execute(
            sa.text("update sync.erp_changes set amount = -3 where idempotency_key = :k"), {"k": invoice}
        )
    held = run_gate("sync", url, settings=settings)
    assert set(held.quarantined["sync.erp_changes"]) == {invoice, payment}
    with engine.connect() as con:
        rows = con.execute(sa.text(f"select idempotency_key, row_data from {QUARANTINE_TABLE}")).all()
        published = con.execute(sa.text("select count(*) from validated.erp_changes")).scalar_one()
    assert {k for k, _ in rows} == {invoice, payment} and published == built - 2
    stored = {k: v if isinstance(v, dict) else json.loads(v) for k, v in rows}
    assert float(stored[invoice]["amount"]) == -3

    # a duplicate key blocks, naming the table and the row, and empties what the push reads
    with engine.begin() as con:
        con.execute(
            sa.text("insert into sync.erp_changes select * from sync.erp_changes where idempotency_key = :k"),
            {"k": payment},
        )
    with pytest.raises(GateBlocked) as blocked:
        run_gate("sync", url, settings=settings)
    assert "expect_column_values_to_be_unique on sync.erp_changes.idempotency_key" in str(blocked.value)
    assert payment in str(blocked.value)
    with engine.connect() as con:
        assert con.execute(sa.text("select count(*) from validated.erp_changes")).scalar_one() == 0
        failed = con.execute(
            sa.text(
                "select count(*) from revsync_state.quality_results where not success and policy = 'block'"
            )
        ).scalar_one()
    assert failed == 1
