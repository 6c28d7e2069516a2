"""The push against real sandbox servers on loopback, from a gated copy of the built small world.

Convergence (one cycle fixes every auto-fixable mismatch, a second writes nothing), the dry run, a
hostile target with a maintenance window, a push killed mid-batch and rerun, and a write the ERP
refuses: dead-lettered with the ERP's message, its dependent held, replayed only with an approver.
Duplicates are counted in the sandbox's own write log: a record path written successfully twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import httpx
import pytest
from conftest import run_dbt
from cycle import (
    as_of_now,
    duplicates,
    extract,
    gate,
    gated_copy,
    outbox_states,
    private_copy,
    push_all,
    query,
    successful,
    writes,
)

from revsync.push.delivery import TargetUnavailable, deliver
from revsync.push.replay import ApprovalRequired, replay
from revsync.push.run import enqueue_validated, plan, push
from revsync.push.targets import NETSUITE, TARGETS

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]
REVSYNC = str(Path(sys.executable).with_name("revsync"))


@pytest.fixture(scope="module")
def gated(small_built, tmp_path_factory) -> Path:
    """The built small world's warehouse after the three gate stages: validated change sets to push."""
    return gated_copy(small_built.warehouse, tmp_path_factory.mktemp("push_gated"))


@pytest.fixture
def setup(gated, small_landed, tmp_path):
    """(warehouse, world dir): private copies of the gated warehouse and of the world it was landed from."""
    return private_copy(gated, small_landed.world, tmp_path)


def _validated_counts(warehouse: Path) -> dict[str, int]:
    return {
        name: query(warehouse, f"select count(*) from validated.{t.change_set}")[0][0]
        for name, t in TARGETS.items()
    }


def test_one_cycle_converges_and_the_next_writes_nothing(setup, start_sandbox_factory, tmp_path):
    warehouse, world = setup
    wanted = _validated_counts(warehouse)
    assert wanted["netsuite"] > 500 and wanted["zendesk"] > 10
    with start_sandbox_factory(world) as sandbox:
        pushed = push_all(warehouse, sandbox, "cycle-1")
        for name, (queued, report) in pushed.items():
            assert queued["enqueued"] == wanted[name]
            assert report.acknowledged == wanted[name], report.summary()
            assert report.dead_lettered == report.failed == report.held == 0
        assert outbox_states(warehouse) == {(n, "acknowledged"): wanted[n] for n in TARGETS}
        log = writes(sandbox)
        assert len(successful(log)) == sum(wanted.values()) and not duplicates(log)

        # every acknowledgement is audited with its correlation id and the target's internal id
        audit = query(
            warehouse,
            "select count(*), count(distinct idempotency_key), count(target_internal_id), "
            "count(*) filter (where correlation_id like 'stripe:%' or correlation_id like 'zendesk:%' "
            "or correlation_id like 'netsuite:%') "
            "from revsync_state.audit_log where outcome = 'acknowledged'",
        )[0]
        assert audit == (sum(wanted.values()),) * 4
        invoice_id = query(
            warehouse,
            "select target_internal_id from revsync_state.outbox where record_type = 'invoice' limit 1",
        )[0][0]
        response = httpx.get(f"{sandbox.base_url('netsuite')}/__sandbox__/health")  # the server is still up
        assert response.status_code == 200 and invoice_id.isdigit()

        # the next cycle: extract what the push wrote, rebuild, gate -- nothing auto-fixable is left open
        extract(warehouse, sandbox, "cycle-2")
        built = run_dbt(warehouse, tmp_path / "dbt", "build", dbt_vars={"as_of": as_of_now()})
        assert built.returncode == 0 and not built.failures, built.stdout[-3000:]
        gate(warehouse, tmp_path / "docs")
        assert _validated_counts(warehouse) == {"netsuite": 0, "zendesk": 0}
        open_fixable = query(
            warehouse,
            "select m.mismatch_type, m.anchor_id from reconciliation.mismatches as m where not exists "
            "(select 1 from sync.exceptions as e where e.exception_type = m.mismatch_type "
            "and e.anchor_id = m.anchor_id)",
        )
        assert open_fixable == []
        remaining = dict(
            query(warehouse, "select mismatch_type, count(*) from reconciliation.mismatches group by 1")
        )
        for fixed in ("customer_missing_in_erp", "subscription_missing_in_erp", "credit_note_missing_in_erp"):
            assert fixed not in remaining

        # loop prevention: the records revsync wrote came back through extraction and asked for nothing
        again = push_all(warehouse, sandbox, "cycle-2")
        assert all(q["enqueued"] == 0 and r.requests == 0 for q, r in again.values())
        assert len(writes(sandbox)) == len(log)


def test_the_dry_run_shows_the_plan_and_writes_nothing(setup, start_sandbox_factory):
    warehouse, world = setup
    planned = plan(warehouse, NETSUITE)
    by_type = {(g["record_type"], g["operation"]): g["writes"] for g in planned["by_type"]}
    expected = dict(
        ((r, o), n)
        for r, o, n in query(
            warehouse, "select record_type, operation, count(*) from validated.erp_changes group by all"
        )
    )
    assert by_type == expected and planned["writes"] == sum(expected.values()) and planned["in_doubt"] == 0
    # changes nothing: not even the outbox is created
    assert query(warehouse, "select count(*) from information_schema.tables where table_name = 'outbox'") == [
        (0,)
    ]
    result = subprocess.run(
        [REVSYNC, "push", "--dry-run", "--warehouse", str(warehouse)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    plans = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert [p["target"] for p in plans] == ["netsuite", "zendesk"] and plans[0]["writes"] == planned["writes"]
    with start_sandbox_factory(world) as sandbox:
        assert writes(sandbox) == []


def test_hostile_faults_and_a_maintenance_window_deliver_everything_once(setup, start_sandbox_factory):
    warehouse, world = setup
    wanted = _validated_counts(warehouse)
    with start_sandbox_factory(world, faults="hostile") as sandbox:
        sandbox.admin("maintenance", method="POST", vendor="netsuite", seconds=6)
        with pytest.raises(TargetUnavailable) as down:
            push(warehouse, NETSUITE, sandbox.base_url("netsuite"), sandbox.creds("netsuite"), "during")
        assert down.value.until is not None and "maintenance" in str(down.value)
        held = outbox_states(warehouse)  # nothing got through; what was tried waits as failed, not counted
        assert held[("netsuite", "pending")] + held.get(("netsuite", "failed"), 0) == wanted["netsuite"]
        assert query(warehouse, "select max(errors) from revsync_state.outbox") == [(0,)]
        time.sleep(max(down.value.until - time.time(), 0))
        pushed = push_all(warehouse, sandbox, "after")
        faults = sandbox.admin("faults")["injected"]
        log = writes(sandbox)
    assert faults["netsuite"].get("maintenance", 0) >= 1
    assert sum(faults["netsuite"].get(k, 0) for k in ("http_500", "http_502", "http_503")) > 0
    assert all(r.dead_lettered == 0 for _, r in pushed.values())
    assert outbox_states(warehouse) == {(n, "acknowledged"): wanted[n] for n in TARGETS}
    assert len(successful(log)) == sum(wanted.values()) and not duplicates(log)


def test_a_push_killed_mid_batch_and_rerun_loses_and_duplicates_nothing(
    setup, start_sandbox_factory, tmp_path
):
    warehouse, world = setup
    wanted = _validated_counts(warehouse)["netsuite"]
    with start_sandbox_factory(world) as sandbox:
        argv = [REVSYNC, "push", "netsuite", "--sandbox", str(world), "--warehouse", str(warehouse)]
        log_file = (tmp_path / "push.log").open("w")
        killed = subprocess.Popen(argv, stdout=log_file, stderr=subprocess.STDOUT, env=os.environ.copy())
        deadline = time.monotonic() + 120
        while len(successful(writes(sandbox))) < wanted // 3:
            assert killed.poll() is None, (tmp_path / "push.log").read_text()[-2000:]
            assert time.monotonic() < deadline
            time.sleep(0.05)
        killed.send_signal(signal.SIGKILL)
        killed.wait(timeout=30)
        log_file.close()
        in_doubt = outbox_states(warehouse).get(("netsuite", "sent"), 0)
        assert in_doubt > 0  # killed with writes sent and not yet recorded as answered

        rerun = subprocess.run(argv, capture_output=True, text=True, timeout=600)
        assert rerun.returncode == 0, rerun.stderr[-3000:]
        summary = json.loads(next(line for line in rerun.stdout.splitlines() if line.startswith("{")))
        log = writes(sandbox)
    assert summary["found_applied"] > 0 and summary["dead_lettered"] == 0
    assert outbox_states(warehouse) == {("netsuite", "acknowledged"): wanted}
    assert not duplicates(log)
    assert len(successful(log)) == wanted


def test_a_refused_write_is_dead_lettered_holds_its_dependent_and_replays_with_approval(
    setup, start_sandbox_factory, change_queries
):
    warehouse, world = setup
    invoice_key, payment_key = query(
        warehouse, change_queries["dependent_invoice"].replace("sync.", "validated.")
    )[0]
    con = duckdb.connect(str(warehouse))
    con.execute(
        "update validated.erp_changes set payload = cast(json_merge_patch(cast(payload as varchar), "
        """'{"entity": {"id": null, "externalId": "cus_not_in_erp_yet"}}') as json) """
        "where idempotency_key = ?",
        [invoice_key],
    )
    con.close()
    with start_sandbox_factory(world) as sandbox:
        creds, url = sandbox.creds("netsuite"), sandbox.base_url("netsuite")
        _, report = push(warehouse, NETSUITE, url, creds, "first")
        assert report.dead_lettered == 1 and report.held == 1
        letter = report.dead_letters[0]
        assert letter["idempotency_key"] == invoice_key and letter["record_type"] == "invoice"
        assert "HTTP 400" in letter["error"] and "entity" in letter["error"]
        states = dict(
            query(
                warehouse,
                "select idempotency_key, state from revsync_state.outbox where idempotency_key in (?, ?)",
                [invoice_key, payment_key],
            )
        )
        assert states == {invoice_key: "dead_lettered", payment_key: "pending"}

        # a rerun neither resends the dead letter nor releases what waits for it
        before = len(writes(sandbox))
        _, again = push(warehouse, NETSUITE, url, creds, "second")
        assert again.requests == 0 and again.held == 1 and len(writes(sandbox)) == before

        with pytest.raises(ApprovalRequired, match="invoice"):
            replay(warehouse, keys=[invoice_key])
        assert query(
            warehouse, "select state from revsync_state.outbox where idempotency_key = ?", [invoice_key]
        ) == [("dead_lettered",)]
        # finance creates the missing customer in the ERP, then approves the replay
        subsidiary = query(warehouse, "select subsidiary_id from staging.stg_netsuite__customers limit 1")[0][
            0
        ]
        created = httpx.put(
            f"{url}/services/rest/record/v1/customer/eid:cus_not_in_erp_yet",
            json={"companyName": "Late Co", "subsidiary": {"id": subsidiary}},
            auth=_netsuite_auth(creds),
        )
        assert created.status_code == 204, created.text
        replayed = replay(warehouse, keys=[invoice_key], approved_by="cfo@example.com", actor="test")
        assert [r["idempotency_key"] for r in replayed] == [invoice_key]
        delivered = deliver(warehouse, NETSUITE, url, creds, "replay")
        assert delivered.acknowledged == 2 and delivered.held == 0  # the invoice, then its payment
    audit = query(
        warehouse,
        "select outcome, actor from revsync_state.audit_log where idempotency_key = ? order by logged_at",
        [invoice_key],
    )
    assert audit == [
        ("dead_lettered", "revsync"),
        ("replayed", "cfo@example.com"),
        ("acknowledged", "revsync"),
    ]


def _netsuite_auth(creds: dict[str, str]):  # noqa: ANN202
    from revsync.connectors.netsuite import auth

    return auth(creds)


def test_an_emptied_validated_set_left_by_a_blocked_gate_supersedes_nothing(setup):
    warehouse, _ = setup
    wanted = _validated_counts(warehouse)["netsuite"]
    first = enqueue_validated(warehouse, NETSUITE)
    assert first == {"validated": wanted, "enqueued": wanted, "superseded": 0}
    con = duckdb.connect(str(warehouse))
    con.execute("delete from validated.erp_changes")  # what a blocking gate does
    con.close()
    assert enqueue_validated(warehouse, NETSUITE) == {"validated": 0, "enqueued": 0, "superseded": 0}
    assert outbox_states(warehouse) == {("netsuite", "pending"): wanted}
