"""Failure alerts: every revsync task's on-failure callback posts the failure, with its business
context (the exception's message names the customer, invoice, rule, suite or table involved), to the
webhook in the Airflow Connection `revsync_alerts` (an http connection whose host is the URL, e.g. a
Slack or Teams incoming webhook). Without that connection the alert is only logged. An alert that
cannot be delivered is logged, never raised: it must not change the task's outcome."""

from __future__ import annotations

import logging
from typing import Any

import httpx

log = logging.getLogger(__name__)

ALERT_CONN_ID = "revsync_alerts"
TIMEOUT_S = 10.0
ATTEMPTS = 3


def alert_payload(context: dict[str, Any]) -> dict[str, Any]:
    ti = context.get("ti") or context.get("task_instance")
    exception = context.get("exception")
    dag_run = context.get("dag_run")
    return {
        "text": f"revsync: {getattr(ti, 'dag_id', '?')}.{getattr(ti, 'task_id', '?')} failed: {exception}"[
            :3000
        ],
        "dag_id": getattr(ti, "dag_id", None),
        "task_id": getattr(ti, "task_id", None),
        "run_id": getattr(dag_run, "run_id", None) or getattr(ti, "run_id", None),
        "try_number": getattr(ti, "try_number", None),
        "error_type": type(exception).__name__ if exception is not None else None,
        "error": str(exception)[:8000] if exception is not None else None,
    }


def webhook_url() -> str | None:
    from airflow.sdk import BaseHook

    try:
        conn = BaseHook.get_connection(ALERT_CONN_ID)
    except Exception:  # noqa: BLE001 - any lookup failure means: no webhook configured
        return None
    host = (conn.host or "").strip()
    if not host:
        return None
    if "://" not in host:
        host = f"{conn.schema or 'https'}://{host}"
    if conn.port and host.count(":") < 2:
        host = f"{host}:{conn.port}"
    return host


def on_failure(context: dict[str, Any]) -> None:
    """Airflow on-failure callback: log the failure and post it to the `revsync_alerts` webhook."""
    payload = alert_payload(context)
    log.error("task failed: %s", payload["text"])
    url = webhook_url()
    if url is None:
        log.info("no %r connection: the alert was only logged", ALERT_CONN_ID)
        return
    for attempt in range(1, ATTEMPTS + 1):
        try:
            response = httpx.post(url, json=payload, timeout=TIMEOUT_S)
            if response.status_code < 300:
                return
            log.warning("alert webhook answered %s (attempt %d)", response.status_code, attempt)
        except httpx.HTTPError as exc:
            log.warning("alert webhook unreachable (attempt %d): %s", attempt, exc)
    log.error("the failure alert could not be delivered to the %r webhook", ALERT_CONN_ID)
