"""Suite for sync.entitlement_changes: the Zendesk support-tier updates (one row per organization)."""

from __future__ import annotations

from datetime import datetime

import great_expectations.expectations as gxe

from revsync.quality.suites import BLOCK, change_references, sql_check, table_expectations

TABLE = "sync.entitlement_changes"
KEY = "idempotency_key"

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

NOT_NULL = [
    "organization_id",
    "customer_key",
    "tier_to_set",
    "reason",
    "correlation_id",
    "payload",
    "payload_hash",
    "http_path",
]

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
    return [
        *table_expectations(
            COLUMNS,
            KEY,
            now,
            policy="quarantine",
            not_null=NOT_NULL,
            enums=ENUMS,
            happened=["source_changed_at"],
        ),
        # two writes to one organization in a change set would race: the whole set is suspect
        gxe.ExpectColumnValuesToBeUnique(column="organization_id", meta=BLOCK),
        *change_references(TABLE),
        sql_check(
            "the organization to update is the customer's in canonical.customers",
            "organization_of_canonical_customer",
            "select * from {batch} where customer_key || '/' || organization_id not in (select "
            "customer_key || '/' || zendesk_organization_id from canonical.customers "
            "where zendesk_organization_id is not null)",
            "quarantine",
            column="organization_id",
        ),
    ]
