"""Suite for canonical.entitlements: one row per Zendesk organization: the support tier it has, the tier it
should have and why, at var as_of."""

from __future__ import annotations

from datetime import datetime

from revsync.quality.suites import table_expectations

TABLE = "canonical.entitlements"
KEY = "zendesk_organization_id"

COLUMNS = {
    "zendesk_organization_id": "VARCHAR",
    "customer_key": "VARCHAR",
    "stripe_customer_id": "VARCHAR",
    "organization_name": "VARCHAR",
    "zendesk_plan": "VARCHAR",
    "current_support_tier": "VARCHAR",
    "expected_support_tier": "VARCHAR",
    "expected_tier_reason": "VARCHAR",
    "is_tier_correct": "BOOLEAN",
    "entitled_plan_tier": "VARCHAR",
    "entitled_subscriptions": "BIGINT",
    "is_delinquent": "BOOLEAN",
    "oldest_overdue_due_at": "TIMESTAMP",
    "overdue_amount_remaining": "DECIMAL(18,3)",
    "overdue_currency": "VARCHAR",
    "evaluated_at": "TIMESTAMP",
}

# var support_tiers (dbt_project.yml), ascending
SUPPORT_TIERS = ["basic", "standard", "premium", "enterprise"]

NOT_NULL = [
    "customer_key",
    "expected_tier_reason",
    "is_tier_correct",
    "entitled_subscriptions",
    "is_delinquent",
    "evaluated_at",
]

ENUMS = {
    "current_support_tier": SUPPORT_TIERS,
    "expected_support_tier": SUPPORT_TIERS,
    "entitled_plan_tier": SUPPORT_TIERS,
    "expected_tier_reason": ["delinquent_past_grace_period", "no_entitled_subscription", "plan_tier"],
}

AMOUNTS = ["overdue_amount_remaining"]

# when the rules evaluated (the oldest overdue due time is a due date, not an event)
HAPPENED = ["evaluated_at"]


def build(now: datetime) -> list:
    return table_expectations(
        COLUMNS,
        KEY,
        now,
        not_null=NOT_NULL,
        enums=ENUMS,
        non_negative=AMOUNTS,
        currencies=["overdue_currency"],
        happened=HAPPENED,
    )
