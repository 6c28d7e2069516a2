"""Suite for staging.stg_stripe__subscriptions: one row per Stripe subscription (latest version) with its
first item's price."""

from __future__ import annotations

from datetime import datetime

from revsync.quality.suites import table_expectations

TABLE = "staging.stg_stripe__subscriptions"
KEY = "subscription_id"
SOURCE = ("stripe", "subscriptions")

COLUMNS = {
    "subscription_id": "VARCHAR",
    "customer_id": "VARCHAR",
    "status": "VARCHAR",
    "currency": "VARCHAR",
    "item_id": "VARCHAR",
    "price_id": "VARCHAR",
    "product_id": "VARCHAR",
    "quantity": "BIGINT",
    "unit_amount_minor": "BIGINT",
    "unit_amount": "DECIMAL(18,3)",
    "recurring_interval": "VARCHAR",
    "item_count": "INTEGER",
    "plan": "VARCHAR",
    "is_cancel_at_period_end": "BOOLEAN",
    "current_period_start_at": "TIMESTAMP",
    "current_period_end_at": "TIMESTAMP",
    "trial_start_at": "TIMESTAMP",
    "trial_end_at": "TIMESTAMP",
    "cancel_at": "TIMESTAMP",
    "canceled_at": "TIMESTAMP",
    "ended_at": "TIMESTAMP",
    "start_at": "TIMESTAMP",
    "created_at": "TIMESTAMP",
    "metadata": "JSON",
    "_loaded_at": "TIMESTAMP",
    "_batch_id": "VARCHAR",
    "_changed_at": "TIMESTAMP",
}

# the plans: var plan_support_tiers' keys (dbt_project.yml)
PLANS = ["starter", "growth", "enterprise"]

NOT_NULL = ["customer_id", "status", "currency", "price_id", "quantity", "created_at"]

ENUMS = {
    "status": [
        "incomplete",
        "incomplete_expired",
        "trialing",
        "active",
        "past_due",
        "canceled",
        "unpaid",
        "paused",
    ],
    "plan": PLANS,
}

# events that have happened
HAPPENED = ["created_at", "_loaded_at"]


def build(now: datetime) -> list:
    return table_expectations(
        COLUMNS,
        KEY,
        now,
        not_null=NOT_NULL,
        enums=ENUMS,
        currencies=["currency"],
        happened=HAPPENED,
    )
