"""The push outbox on a real DuckDB file through SQLAlchemy: enqueueing is idempotent per change, every
legal step moves a row and is recorded, an illegal or repeated step changes nothing and says why."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from revsync.push.outbox import EVENTS, OUTBOX, IllegalTransition, enqueue, states, transition


def _change(key: str, **extra) -> dict:
    return {
        "idempotency_key": key,
        "target": "netsuite",
        "record_type": "invoice",
        "operation": "create",
        "http_method": "PUT",
        "http_path": f"/services/rest/record/v1/invoice/eid:{key}",
        "payload": {"externalId": key, "total": 12.5},
        "payload_hash": f"hash-{key}",
        "correlation_id": f"stripe:invoice:{key}:1",
        "customer_key": "cus_1",
        **extra,
    }


def _json(value):  # noqa: ANN001, ANN202 - a JSON column reads as text or, through duckdb-engine, parsed
    return json.loads(value) if isinstance(value, str) else value


@pytest.fixture
def engine(tmp_path):
    engine = sa.create_engine(f"duckdb:///{tmp_path / 'warehouse.duckdb'}", poolclass=sa.NullPool)
    yield engine
    engine.dispose()


def test_enqueue_adds_each_change_once_across_runs(engine):
    with engine.begin() as con:
        assert enqueue(con, [_change("a"), _change("b", depends_on_idempotency_key="a")], "gate1") == 2
    with engine.begin() as con:  # the next run's change set: a and b again, c new
        assert enqueue(con, [_change("a"), _change("b"), _change("c")], "gate2") == 1
        rows = con.execute(
            sa.text(f"select idempotency_key, state, gate_run_id, payload from {OUTBOX}")
        ).all()
        assert states(con)["pending"] == 3
    assert sorted((k, s, g) for k, s, g, _ in rows) == [
        ("a", "pending", "gate1"),
        ("b", "pending", "gate1"),
        ("c", "pending", "gate2"),
    ]
    assert _json(next(p for k, *_, p in rows if k == "a")) == {"externalId": "a", "total": 12.5}


def test_a_change_without_its_target_path_is_refused_naming_it(engine):
    with engine.begin() as con, pytest.raises(ValueError, match="'x' has no http_path"):
        enqueue(con, [_change("x", http_path=None)])


def test_the_state_machine_moves_and_records_every_step(engine):
    with engine.begin() as con:
        enqueue(con, [_change("a"), _change("b")])
    steps = [
        ("a", "sent", {}),
        ("a", "failed", {"error": "503 maintenance"}),
        ("a", "sent", {}),
        ("a", "acknowledged", {"target_internal_id": "7001"}),
        ("b", "sent", {}),
        ("b", "dead_lettered", {"error": "400 INVALID_FLD_VALUE currency"}),
        ("b", "replayed", {"detail": {"approved_by": "ops@example.com"}}),
        ("b", "sent", {}),
    ]
    for key, to_state, fields in steps:
        with engine.begin() as con:
            transition(con, key, to_state, **fields)
    with engine.connect() as con:
        columns = "state, attempts, last_error, target_internal_id"
        row = con.execute(sa.text(f"select {columns} from {OUTBOX} where idempotency_key = 'a'")).one()
        events = con.execute(
            sa.text(f"select idempotency_key, from_state, to_state, detail from {EVENTS}")
        ).all()
        counts = states(con)
    assert tuple(row) == ("acknowledged", 2, "503 maintenance", "7001")
    assert [(k, f, t) for k, f, t, _ in events if k == "b"] == [
        ("b", None, "pending"),
        ("b", "pending", "sent"),
        ("b", "sent", "dead_lettered"),
        ("b", "dead_lettered", "replayed"),
        ("b", "replayed", "sent"),
    ]
    assert _json(events[-2][3]) == {"approved_by": "ops@example.com"}
    assert counts == {
        "pending": 0,
        "sent": 1,
        "acknowledged": 1,
        "failed": 0,
        "dead_lettered": 0,
        "replayed": 0,
        "superseded": 0,
    }


@pytest.mark.parametrize(
    ("path", "to_state"),
    [((), "acknowledged"), (("sent", "acknowledged"), "sent"), ((), "replayed"), (("sent",), "sent")],
)
def test_an_illegal_or_repeated_step_changes_nothing(engine, path, to_state):
    with engine.begin() as con:
        enqueue(con, [_change("a")])
    for step in path:
        with engine.begin() as con:
            transition(con, "a", step)
    with engine.begin() as con, pytest.raises(IllegalTransition, match=f"-> {to_state}"):
        transition(con, "a", to_state)
    with engine.connect() as con:
        events = con.execute(sa.text(f"select count(*) from {EVENTS}")).scalar_one()
    assert events == 1 + len(path)


def test_a_step_on_an_unknown_change_or_state_is_refused(engine):
    with engine.begin() as con:
        enqueue(con, [_change("a")])
        with pytest.raises(IllegalTransition, match="missing"):
            transition(con, "nope", "sent")
        with pytest.raises(ValueError, match="unknown outbox state"):
            transition(con, "a", "delivered")


def test_a_batch_is_claimed_once_and_settled_with_events_and_audit_rows(engine):
    from revsync.push.outbox import Outcome, claim, rows, settle

    with engine.begin() as con:
        enqueue(con, [_change("a"), _change("b"), _change("c")], "gate1")
        claimed = claim(con, ["a", "b", "c"], "run1")
        assert sorted(claimed) == ["a", "b", "c"]
        assert claim(con, ["a", "b"], "run2") == []  # already sent: nobody claims them twice
        changes = {r["idempotency_key"]: r for r in rows(con, "state = 'sent'")}
        outcomes = [
            Outcome("a", "acknowledged", attempts=2, errors=1, http_status=204, target_internal_id="9001"),
            Outcome("b", "dead_lettered", http_status=400, error="HTTP 400: INVALID_FIELD currency"),
            Outcome("c", "failed", attempts=0, error="not sent: netsuite is unavailable"),
        ]
        assert settle(con, outcomes, "run1", changes) == 3
        assert settle(con, outcomes, "run1b", changes) == 0  # settled rows are no longer `sent`
        got = {
            r[0]: tuple(r[1:])
            for r in con.execute(
                sa.text(f"select idempotency_key, state, attempts, errors, target_internal_id from {OUTBOX}")
            ).all()
        }
        audit = con.execute(
            sa.text(
                "select idempotency_key, outcome, http_status, correlation_id from revsync_state.audit_log"
            )
        ).all()
    assert got == {
        "a": ("acknowledged", 2, 1, "9001"),
        "b": ("dead_lettered", 1, 0, None),
        "c": ("failed", 0, 0, None),
    }
    assert sorted(tuple(a) for a in audit)[:2] == [
        ("a", "acknowledged", 204, "stripe:invoice:a:1"),
        ("b", "dead_lettered", 400, "stripe:invoice:b:1"),
    ]


def test_writes_the_change_set_no_longer_wants_are_superseded_not_deleted(engine):
    from revsync.push.outbox import supersede

    with engine.begin() as con:
        enqueue(con, [_change("keep"), _change("gone"), _change("done")])
        transition(con, "done", "sent")
        transition(con, "done", "acknowledged")
        con.execute(sa.text("create table wanted as select 'keep' as idempotency_key"))
        assert supersede(con, "netsuite", "wanted", "gate2") == 1
        counts = states(con)
    assert (counts["pending"], counts["superseded"], counts["acknowledged"]) == (1, 1, 1)
