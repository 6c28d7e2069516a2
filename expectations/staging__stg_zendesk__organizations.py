"""Suite for staging.stg_zendesk__organizations: one row per Zendesk organization (latest version)."""

from __future__ import annotations

from datetime import datetime

from revsync.quality.suites import table_expectations

TABLE = "staging.stg_zendesk__organizations"
KEY = "organization_id"
SOURCE = ("zendesk", "organizations")

COLUMNS = {
    "organization_id": "VARCHAR",
    "name": "VARCHAR",
    "external_id": "VARCHAR",
    "domain_names": "JSON",
    "organization_fields": "JSON",
    "support_tier": "VARCHAR",
    "plan": "VARCHAR",
    "tags": "JSON",
    "created_at": "TIMESTAMP",
    "updated_at": "TIMESTAMP",
    "_loaded_at": "TIMESTAMP",
    "_batch_id": "VARCHAR",
    "_changed_at": "TIMESTAMP",
}

# var support_tiers (dbt_project.yml), ascending
SUPPORT_TIERS = ["basic", "standard", "premium", "enterprise"]

# the plans: var plan_support_tiers' keys (dbt_project.yml)
PLANS = ["starter", "growth", "enterprise"]

ENUMS = {
    "support_tier": SUPPORT_TIERS,
    "plan": PLANS,
}

# events that have happened
HAPPENED = ["created_at", "updated_at", "_loaded_at"]


def build(now: datetime) -> list:
    return table_expectations(
        COLUMNS,
        KEY,
        now,
        not_null=["created_at", "updated_at"],
        enums=ENUMS,
        happened=HAPPENED,
    )
