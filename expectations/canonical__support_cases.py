"""Suite for canonical.support_cases: one row per Zendesk ticket with its organization, canonical customer and
the organization's current and expected support tier."""

from __future__ import annotations

from datetime import datetime

from revsync.quality.suites import table_expectations

TABLE = "canonical.support_cases"
KEY = "zendesk_ticket_id"

COLUMNS = {
    "zendesk_ticket_id": "VARCHAR",
    "zendesk_organization_id": "VARCHAR",
    "customer_key": "VARCHAR",
    "stripe_customer_id": "VARCHAR",
    "zendesk_requester_id": "VARCHAR",
    "is_organization_from_requester": "BOOLEAN",
    "subject": "VARCHAR",
    "status": "VARCHAR",
    "is_open": "BOOLEAN",
    "priority": "VARCHAR",
    "type": "VARCHAR",
    "support_tier": "VARCHAR",
    "expected_support_tier": "VARCHAR",
    "is_tier_correct": "BOOLEAN",
    "created_at": "TIMESTAMP",
    "updated_at": "TIMESTAMP",
}

# var support_tiers (dbt_project.yml), ascending
SUPPORT_TIERS = ["basic", "standard", "premium", "enterprise"]

ENUMS = {
    "status": ["new", "open", "pending", "hold", "solved", "closed", "deleted"],
    "priority": ["low", "normal", "high", "urgent"],
    "type": ["problem", "incident", "question", "task"],
    "support_tier": SUPPORT_TIERS,
    "expected_support_tier": SUPPORT_TIERS,
}

# events that have happened
HAPPENED = ["created_at", "updated_at"]


def build(now: datetime) -> list:
    return table_expectations(
        COLUMNS,
        KEY,
        now,
        not_null=["status", "zendesk_requester_id"],
        enums=ENUMS,
        happened=HAPPENED,
    )
