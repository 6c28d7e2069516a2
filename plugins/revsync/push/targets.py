"""The systems revsync writes to: how each one's change set becomes outbox rows, how a write is sent
and judged, how an in-doubt write is checked, and the limits the target documents.

- NetSuite (`erp_changes`): upserts by external id (`PUT /record/v1/<type>/eid:<id>`, idempotent by
  nature) and PATCHes by internal id for closes, under the REST base `/services/rest`; acknowledged
  by 204 with the record's `Location` (its internal id). Concurrency is capped per account (15
  concurrent requests for a standard tier), so the push holds at most that many in flight.
- Zendesk (`entitlement_changes`): organization update `PUT /api/v2/organizations/<id>.json` of
  `organization_fields.support_tier` (merged, so idempotent); acknowledged by 200. Rate limited to 700
  requests a minute (Enterprise), so the push paces itself below that.

A write whose fate is unknown (the process died after sending it, or the response was lost) is checked
before it is sent again: NetSuite's record read by external id, Zendesk's organization read. A write
found applied is acknowledged without a second request, so an interrupted run never writes twice.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

# record types whose writes book money: replaying them needs a named approver
FINANCIAL_RECORD_TYPES = frozenset({"invoice", "customerPayment", "creditMemo"})


@dataclass(frozen=True)
class Target:
    name: str
    source: str  # the connector/connection whose base URL and credentials the writes use
    change_set: str  # sync.<change_set> / validated.<change_set>
    api_prefix: str  # prepended to a change's http_path
    outbox_select: str  # the change set's columns as the outbox's (over alias s)
    concurrency: int  # requests in flight at most
    min_interval_s: float  # at least this long between request starts (0: concurrency only)
    probe_path: str  # what the availability sensor asks for (any answer but 503 means up)
    check: Callable[[dict[str, Any]], str | None]  # the read that tells whether a write is applied
    applied: Callable[[dict[str, Any], Any], str | None]  # internal id when the read shows it applied
    internal_id: Callable[[dict[str, Any], httpx.Response], str | None]
    error_message: Callable[[Any], str]
    financial: frozenset[str] = field(default=FINANCIAL_RECORD_TYPES)


def _netsuite_check(change: dict[str, Any]) -> str | None:
    if change["operation"] == "create" and change.get("target_external_id"):
        return f"/record/v1/{change['record_type']}/eid:{change['target_external_id']}"
    if change["operation"] == "close" and change.get("target_internal_id"):
        return f"/record/v1/{change['record_type']}/{change['target_internal_id']}"
    return None


def _netsuite_applied(change: dict[str, Any], body: Any) -> str | None:
    if not isinstance(body, dict) or body.get("id") is None:
        return None
    if change["operation"] == "close":
        status = body.get("status")
        status = status.get("id") if isinstance(status, dict) else status
        return str(body["id"]) if status == "closed" else None
    return str(body["id"])


def _netsuite_internal_id(change: dict[str, Any], response: httpx.Response) -> str | None:
    location = response.headers.get("location")
    if location:
        return location.rstrip("/").rsplit("/", 1)[-1]
    return change.get("target_internal_id")


def _netsuite_error(body: Any) -> str:
    if isinstance(body, dict):
        details = body.get("o:errorDetails") or []
        parts = [
            f"{d.get('o:errorCode', '')}: {d.get('detail', '')}"
            + (f" (field {d['o:errorPath']})" if d.get("o:errorPath") else "")
            for d in details
            if isinstance(d, dict)
        ]
        if parts:
            return "; ".join(parts)
        if body.get("title"):
            return str(body["title"])
    return str(body)[:500]


def _zendesk_check(change: dict[str, Any]) -> str | None:
    return f"/api/v2/organizations/{change['target_internal_id']}.json"


def _wanted_tier(change: dict[str, Any]) -> str | None:
    payload = change["payload"]
    if isinstance(payload, str):
        payload = json.loads(payload)
    return payload["organization"]["organization_fields"]["support_tier"]


def _zendesk_applied(change: dict[str, Any], body: Any) -> str | None:
    org = body.get("organization") if isinstance(body, dict) else None
    if not isinstance(org, dict):
        return None
    fields = org.get("organization_fields") or {}
    if str(fields.get("support_tier") or "").lower() == str(_wanted_tier(change)).lower():
        return str(org.get("id"))
    return None


def _zendesk_internal_id(change: dict[str, Any], response: httpx.Response) -> str | None:
    try:
        return str(response.json()["organization"]["id"])
    except (ValueError, KeyError, TypeError):
        return change.get("target_internal_id")


def _zendesk_error(body: Any) -> str:
    if isinstance(body, dict):
        details = body.get("details")
        if isinstance(details, dict) and details:
            return "; ".join(
                f"{name}: {d.get('description', d) if isinstance(d, dict) else d}"
                for name, items in details.items()
                for d in (items if isinstance(items, list) else [items])
            )
        for key in ("description", "error", "message"):
            if body.get(key):
                value = body[key]
                return value if isinstance(value, str) else str(value)
    return str(body)[:500]


NETSUITE = Target(
    name="netsuite",
    source="netsuite",
    change_set="erp_changes",
    api_prefix="/services/rest",
    outbox_select=(
        "idempotency_key, target, record_type, operation, http_method, http_path, payload, payload_hash,"
        " correlation_id, customer_key, depends_on_idempotency_key, sequence, gate_run_id, reason,"
        " source_id, target_external_id, target_internal_id, amount, currency, source_changed_at"
    ),
    concurrency=15,
    min_interval_s=0.0,
    probe_path="/services/rest/record/v1/metadata-catalog",
    check=_netsuite_check,
    applied=_netsuite_applied,
    internal_id=_netsuite_internal_id,
    error_message=_netsuite_error,
)

ZENDESK = Target(
    name="zendesk",
    source="zendesk",
    change_set="entitlement_changes",
    api_prefix="",
    outbox_select=(
        "idempotency_key, target, record_type, operation, http_method, http_path, payload, payload_hash,"
        " correlation_id, customer_key, cast(null as varchar) as depends_on_idempotency_key,"
        " cast(null as integer) as sequence, gate_run_id, reason, organization_id as source_id,"
        " cast(null as varchar) as target_external_id, organization_id as target_internal_id,"
        " cast(null as decimal(18, 3)) as amount, cast(null as varchar) as currency, source_changed_at"
    ),
    concurrency=4,
    min_interval_s=60.0 / 700,
    probe_path="/api/v2/organizations.json",
    check=_zendesk_check,
    applied=_zendesk_applied,
    internal_id=_zendesk_internal_id,
    error_message=_zendesk_error,
)

TARGETS = {t.name: t for t in (NETSUITE, ZENDESK)}
# the Airflow DAG that pushes each target
PUSH_DAGS = {"netsuite": "push_erp", "zendesk": "push_entitlements"}


def target(name: str) -> Target:
    try:
        return TARGETS[name]
    except KeyError:
        raise ValueError(f"unknown push target {name!r}; one of {', '.join(TARGETS)}") from None
