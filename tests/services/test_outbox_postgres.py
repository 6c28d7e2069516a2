"""The push outbox on PostgreSQL, through the same SQLAlchemy code as on DuckDB: a fresh database, a
change enqueued twice lands once, it moves pending -> sent -> failed -> sent -> acknowledged with every
step recorded, and a repeated step is refused without changing anything."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from revsync.push.outbox import EVENTS, OUTBOX, IllegalTransition, enqueue, states, transition

pytestmark = pytest.mark.services


@pytest.fixture
def pg(new_postgres_database):
    with new_postgres_database("revsync_outbox") as url:
        engine = sa.create_engine(url, poolclass=sa.NullPool)
        try:
            yield engine
        finally:
            engine.dispose()


def test_the_outbox_on_postgres(pg):
    change = {
        "idempotency_key": "k1",
        "target": "zendesk",
        "record_type": "organization",
        "operation": "update",
        "http_method": "PUT",
        "http_path": "/api/v2/organizations/1.json",
        "payload": {"organization": {"organization_fields": {"support_tier": "premium"}}},
        "payload_hash": "h1",
        "correlation_id": "zendesk:organization:1:1",
        "customer_key": "cus_1",
    }
    with pg.begin() as con:
        assert enqueue(con, [change], "gate1") == 1
    with pg.begin() as con:
        assert enqueue(con, [change], "gate2") == 0
    for to_state in ("sent", "failed", "sent", "acknowledged"):
        with pg.begin() as con:
            transition(con, "k1", to_state, error="429 Too Many Requests" if to_state == "failed" else None)
    with pg.begin() as con, pytest.raises(IllegalTransition, match="acknowledged -> acknowledged"):
        transition(con, "k1", "acknowledged")
    with pg.connect() as con:
        row = con.execute(sa.text(f"select state, attempts, last_error, gate_run_id from {OUTBOX}")).one()
        steps = con.execute(sa.text(f"select from_state, to_state from {EVENTS} order by happened_at")).all()
        counts = states(con)
    assert tuple(row) == ("acknowledged", 2, "429 Too Many Requests", "gate1")
    assert [tuple(s) for s in steps] == [
        (None, "pending"),
        ("pending", "sent"),
        ("sent", "failed"),
        ("failed", "sent"),
        ("sent", "acknowledged"),
    ]
    assert counts["acknowledged"] == 1 and sum(counts.values()) == 1


def test_batches_and_superseding_on_postgres(pg):
    from revsync.push.outbox import Outcome, claim, rows, settle, supersede

    def change(key: str) -> dict:
        return {
            "idempotency_key": key,
            "target": "netsuite",
            "record_type": "invoice",
            "operation": "create",
            "http_method": "PUT",
            "http_path": f"/record/v1/invoice/eid:{key}",
            "payload": {"externalId": key},
            "payload_hash": f"h-{key}",
            "correlation_id": f"stripe:invoice:{key}:1",
            "customer_key": "cus_1",
            "sequence": 3,
            "amount": 12.5,
        }

    with pg.begin() as con:
        assert enqueue(con, [change("a"), change("b"), change("c")], "gate1") == 3
        assert sorted(claim(con, ["a", "b"], "run1")) == ["a", "b"]
        sent = {r["idempotency_key"]: r for r in rows(con, "state = 'sent'")}
        settled = settle(
            con,
            [
                Outcome("a", "acknowledged", http_status=204, target_internal_id="7"),
                Outcome("b", "dead_lettered", http_status=400, error="bad"),
            ],
            "run1",
            sent,
        )
        con.execute(sa.text("create temporary table wanted as select 'a'::varchar as idempotency_key"))
        superseded = supersede(con, "netsuite", "wanted", "gate2")
        counts = states(con, "netsuite")
        audited = con.execute(sa.text("select count(*) from revsync_state.audit_log")).scalar_one()
    assert settled == 2 and superseded == 2  # c (pending) and b (dead-lettered) are no longer wanted
    assert (counts["acknowledged"], counts["superseded"]) == (1, 2) and audited == 2
