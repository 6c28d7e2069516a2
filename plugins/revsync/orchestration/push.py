"""The push DAGs: `push_erp` (NetSuite) and `push_entitlements` (Zendesk), scheduled on the validated
change-set Assets the reconcile DAG's gate emits, and `replay_dead_letters` (manual, with params).

Each push DAG is `wait_for_<target>` -> `push`:
- `wait_for_<target>` is a deferrable sensor: it asks the target whether it is up (any answer but a
  503 is "up"; a 503 is maintenance and its Retry-After says how long; a refused connection is
  "unreachable") and, while it is not, defers to `TargetAvailableTrigger` in the triggerer, holding no
  worker slot. The probe sends no credentials, so none are serialized into the trigger.
- `push` (PushOperator) enqueues `validated.<change set>` into the outbox and delivers it
  (revsync.push). If the target goes into maintenance mid-batch, the operator records what was
  answered and defers to the same trigger, resuming where it stopped. With the `dry_run` param it
  only logs and returns the plan. Clearing the task and rerunning it is always safe: whatever was
  sent is in the outbox, writes left in doubt by a killed run are checked against the target before
  anything is resent, and acknowledged writes are never sent again.
- It emits `revsync://pushed/<target>` with the delivery summary.

`replay_dead_letters` moves chosen dead letters to `replayed` (params: idempotency keys or a target /
record type / error filter; financial writes need `approved_by`; audited) and delivers them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import httpx
from airflow.sdk import BaseHook, BaseOperator, BaseSensorOperator
from airflow.sdk.exceptions import AirflowFailException
from airflow.triggers.base import BaseTrigger, TriggerEvent

from revsync.connectors.http import seconds_until
from revsync.orchestration.connections import conn_id, source_config
from revsync.orchestration.extract import task_defaults
from revsync.orchestration.reconcile import validated_uri
from revsync.push.targets import PUSH_DAGS, TARGETS

log = logging.getLogger(__name__)

PROBE_TIMEOUT_S = 10.0
DEFAULT_POLL_S = 15.0
WAIT_TIMEOUT = timedelta(hours=12)  # how long a push waits for its target before failing visibly


def pushed_uri(target: str) -> str:
    return f"revsync://pushed/{target}"


async def probe(client: httpx.AsyncClient, url: str) -> tuple[bool, str, float | None]:
    """(up, why not, seconds the target asks to wait) for one unauthenticated request to `url`."""
    try:
        response = await client.get(url)
    except httpx.ConnectError as exc:
        return False, f"unreachable ({exc.__class__.__name__})", None
    except httpx.HTTPError as exc:
        return False, f"no answer ({exc.__class__.__name__})", None
    if response.status_code == 503:
        return False, "in maintenance (503)", seconds_until(response.headers.get("retry-after"))
    return True, f"answered {response.status_code}", None


def _target_url(target: str) -> str:
    config = source_config(TARGETS[target].source, BaseHook.get_connection(conn_id(TARGETS[target].source)))
    return config.base_url.rstrip("/") + TARGETS[target].probe_path


class TargetAvailableTrigger(BaseTrigger):
    """Fires once `url` answers with anything but a 503 (and a connection is accepted)."""

    def __init__(self, target: str, url: str, poll_interval: float = DEFAULT_POLL_S):
        super().__init__()
        self.target, self.url, self.poll_interval = target, url, poll_interval

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{__name__}.TargetAvailableTrigger",
            {"target": self.target, "url": self.url, "poll_interval": self.poll_interval},
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        started = time.monotonic()
        async with httpx.AsyncClient(timeout=PROBE_TIMEOUT_S) as client:
            while True:
                up, why, wait = await probe(client, self.url)
                if up:
                    waited = round(time.monotonic() - started, 1)
                    yield TriggerEvent({"status": "available", "target": self.target, "waited_s": waited})
                    return
                self.log.info("%s %s; probing again", self.target, why)
                await asyncio.sleep(min(max(wait or self.poll_interval, 1.0), self.poll_interval * 4))


class TargetAvailableSensor(BaseSensorOperator):
    """Waits, deferred, until the target is out of maintenance and reachable."""

    def __init__(self, *, target: str, poll_interval: float = DEFAULT_POLL_S, **kwargs: Any):
        kwargs.setdefault("timeout", WAIT_TIMEOUT.total_seconds())
        super().__init__(**kwargs)
        self.target, self.poll_interval = target, poll_interval

    def execute(self, context: Any) -> Any:
        url = _target_url(self.target)
        up, why, _ = asyncio.run(_probe_once(url))
        if up:
            log.info("%s is available (%s)", self.target, why)
            return {"target": self.target, "waited_s": 0}
        log.info("%s is %s: deferring until it is back", self.target, why)
        self.defer(
            trigger=TargetAvailableTrigger(self.target, url, self.poll_interval),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout),
        )

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> Any:
        log.info("%s is available again after %ss", self.target, (event or {}).get("waited_s"))
        return event

    def poke(self, context: Any) -> bool:  # the non-deferred path, if someone sets deferrable off
        return asyncio.run(_probe_once(_target_url(self.target)))[0]


async def _probe_once(url: str) -> tuple[bool, str, float | None]:
    async with httpx.AsyncClient(timeout=PROBE_TIMEOUT_S) as client:
        return await probe(client, url)


class PushOperator(BaseOperator):
    """Enqueue the target's validated change set (unless `enqueue` is off) and deliver its outbox."""

    template_fields = ()

    def __init__(self, *, target: str, enqueue: bool = True, **kwargs: Any):
        super().__init__(**kwargs)
        self.target, self.enqueue = target, enqueue

    def execute(self, context: Any, event: dict[str, Any] | None = None) -> dict[str, Any]:
        from revsync.push.delivery import DeliverySettings, PushConfigError, TargetUnavailable, deliver
        from revsync.push.run import NothingValidated, enqueue_validated, plan
        from revsync.warehouse.connect import warehouse_path

        target = TARGETS[self.target]
        params = context.get("params") or {}
        warehouse = str(warehouse_path())
        run_id = f"{context['dag_run'].run_id}/{self.task_id}/{context['ti'].try_number}"
        try:
            if params.get("dry_run"):
                planned = plan(warehouse, target)
                log.info("dry run, nothing sent: %s", planned)
                return {"dry_run": True, **planned}
            queued = enqueue_validated(warehouse, target) if self.enqueue and event is None else {}
            log.info("push %s: %s", target.name, queued or "delivering what the outbox holds")
            config = source_config(target.source, BaseHook.get_connection(conn_id(target.source)))
            settings = DeliverySettings(concurrency=params.get("concurrency") or None)
            report = deliver(warehouse, target, config.base_url, config.credentials, run_id, settings)
        except NothingValidated as exc:
            raise AirflowFailException(str(exc)) from None
        except PushConfigError as exc:
            raise AirflowFailException(str(exc)) from None
        except TargetUnavailable as down:
            log.warning("%s; deferring until it is back (nothing is lost)", down)
            self.defer(
                trigger=TargetAvailableTrigger(target.name, config.base_url.rstrip("/") + target.probe_path),
                method_name="execute",
                timeout=WAIT_TIMEOUT,
            )
        summary = {**queued, **report.summary()}
        for letter in report.dead_letters[:50]:
            log.warning(
                "dead letter: %s %s (customer %s): %s",
                letter["record_type"],
                letter["source_id"],
                letter["customer_key"],
                letter["error"],
            )
        log.info("push %s done: %s", target.name, summary)
        outlet = next(iter(self.outlets), None)
        if outlet is not None:
            context["outlet_events"][outlet].extra = summary
        return summary


def build_push_dag(target_name: str):
    """`push_erp` or `push_entitlements`: scheduled on the target's validated change-set Asset."""
    from airflow.sdk import DAG, Asset, Param

    target = TARGETS[target_name]
    dag_id = PUSH_DAGS[target_name]
    with DAG(
        dag_id=dag_id,
        schedule=[Asset(validated_uri(target.change_set))],
        start_date=datetime(2026, 1, 1),
        catchup=False,
        max_active_runs=1,
        tags=["revsync", "push", target_name],
        doc_md=__doc__,
        default_args=task_defaults(),
        params={
            "dry_run": Param(
                False, type="boolean", description="Log the plan (writes per type); send nothing."
            ),
            "concurrency": Param(
                None,
                type=["null", "integer"],
                description="Requests in flight at most; empty: the target's limit.",
            ),
        },
    ) as dag:
        wait = TargetAvailableSensor(task_id=f"wait_for_{target_name}", target=target_name)
        push = PushOperator(task_id="push", target=target_name, outlets=[Asset(pushed_uri(target_name))])
        wait >> push
    return dag


def build_replay_dag():
    """`replay_dead_letters`: manual; replays the chosen dead letters and delivers them."""
    from airflow.sdk import DAG, Param, get_current_context, task

    with DAG(
        dag_id="replay_dead_letters",
        schedule=None,
        start_date=datetime(2026, 1, 1),
        catchup=False,
        max_active_runs=1,
        tags=["revsync", "push", "operations"],
        doc_md=__doc__,
        default_args={**task_defaults(), "retries": 0},
        params={
            "idempotency_keys": Param(
                [], type="array", description="Dead letters to replay, by idempotency key."
            ),
            "target": Param(
                "", type="string", enum=["", *TARGETS], description="Or: every dead letter of a target."
            ),
            "record_type": Param("", type="string", description="Narrow to one record type (e.g. invoice)."),
            "error_like": Param("", type="string", description="Narrow to errors containing this text."),
            "approved_by": Param(
                "",
                type="string",
                description="Finance approver: required for invoices, payments and credit memos.",
            ),
        },
    ) as dag:

        @task(task_id="replay")
        def replay_chosen() -> dict[str, Any]:
            from revsync.push.replay import ApprovalRequired, replay
            from revsync.warehouse.connect import warehouse_path

            context = get_current_context()
            params = context["params"]
            try:
                chosen = replay(
                    str(warehouse_path()),
                    keys=params.get("idempotency_keys") or None,
                    target=params.get("target") or None,
                    record_type=params.get("record_type") or None,
                    error_like=params.get("error_like") or None,
                    approved_by=params.get("approved_by") or None,
                    actor=f"airflow:{context['dag_run'].run_id}",
                    run_id=context["dag_run"].run_id,
                )
            except (ApprovalRequired, ValueError) as exc:
                raise AirflowFailException(str(exc)) from None
            by_target: dict[str, int] = {}
            for row in chosen:
                by_target[row["target"]] = by_target.get(row["target"], 0) + 1
            log.info("replayed %d dead letters: %s", len(chosen), by_target)
            return by_target

        replayed = replay_chosen()
        for name in TARGETS:
            replayed >> PushOperator(task_id=f"deliver_{name}", target=name, enqueue=False)
    return dag
