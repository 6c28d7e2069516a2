"""Suite for sync.entitlement_changes: the Zendesk support-tier updates (one row per organization)."""

from __future__ import annotations

from datetime import datetime

import great_expectations.expectations as gxe

from revsync.quality.suites import column_types

TABLE = "sync.entitlement_changes"
KEY = "idempotency_key"

BLOCK = {"policy": "block"}
QUARANTINE = {"policy": "quarantine"}

COLUMNS = {
    "idempotency_key": "VARCHAR",
    "target": "VARCHAR",
    "record_type": "VARCHAR",
    "operation": "VARCHAR",
    "http_method": "VARCHAR",
    "http_path": "VARCHAR",
    "organization_id": "VARCHAR",
    "organization_name": "VARCHAR",
    "customer_key": "VARCHAR",
    "current_tier": "VARCHAR",
    "tier_to_set": "VARCHAR",
    "reason": "VARCHAR",
    "correlation_id": "VARCHAR",
    "payload": "JSON",
    "payload_hash": "VARCHAR",
    "source_changed_at": "TIMESTAMP",
}

TIERS = ["basic", "standard", "premium", "enterprise"]

ENUMS = {
    "target": ["zendesk"],
    "record_type": ["organization"],
    "operation": ["update"],
    "http_method": ["PUT"],
    "tier_to_set": TIERS,
    "current_tier": TIERS,
    "reason": [
        "entitlement_tier_mismatch",
        "entitlement_on_delinquent_account",
        "entitlement_after_cancellation",
    ],
}


def build(now: datetime) -> list:
    expectations: list = [
        gxe.ExpectTableColumnsToMatchSet(column_set=list(COLUMNS), exact_match=True, meta=BLOCK)
    ]
    expectations += column_types(COLUMNS, BLOCK)
    expectations += [
        gxe.ExpectColumnValuesToBeUnique(column=KEY, meta=BLOCK),
        gxe.ExpectColumnValuesToNotBeNull(column=KEY, meta=BLOCK),
        # two writes to one organization in a change set would race: the whole set is suspect
        gxe.ExpectColumnValuesToBeUnique(column="organization_id", meta=BLOCK),
    ]
    for column in (
        "organization_id",
        "customer_key",
        "tier_to_set",
        "reason",
        "correlation_id",
        "payload",
        "payload_hash",
        "http_path",
    ):
        expectations.append(gxe.ExpectColumnValuesToNotBeNull(column=column, meta=QUARANTINE))
    expectations += [
        gxe.ExpectColumnValuesToBeInSet(column=c, value_set=v, meta=QUARANTINE) for c, v in ENUMS.items()
    ]
    expectations.append(
        gxe.ExpectColumnValuesToBeBetween(column="source_changed_at", max_value=now, meta=QUARANTINE)
    )
    return expectations
