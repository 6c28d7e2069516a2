"""Suite for canonical.usage: daily metered usage: one row per canonical customer, subscription, Stripe
billing meter and UTC day with usage."""

from __future__ import annotations

from datetime import datetime

from revsync.quality.suites import table_expectations

TABLE = "canonical.usage"
KEY = "usage_id"
MIN_ROWS = 0  # a company may meter nothing: no usage is no failure

COLUMNS = {
    "usage_id": "VARCHAR",
    "customer_key": "VARCHAR",
    "stripe_customer_id": "VARCHAR",
    "stripe_subscription_id": "VARCHAR",
    "stripe_meter_id": "VARCHAR",
    "usage_date": "DATE",
    "quantity": "DECIMAL(18,3)",
    "period_start_at": "TIMESTAMP",
    "period_end_at": "TIMESTAMP",
    "subscription_candidates": "BIGINT",
    "_loaded_at": "TIMESTAMP",
    "_batch_id": "VARCHAR",
}

NOT_NULL = [
    "customer_key",
    "stripe_customer_id",
    "stripe_meter_id",
    "usage_date",
    "quantity",
    "subscription_candidates",
    "_loaded_at",
]

AMOUNTS = ["quantity"]

# events that have happened: the usage day's start (its end lies ahead while the day runs)
HAPPENED = ["period_start_at", "_loaded_at"]


def build(now: datetime) -> list:
    return table_expectations(
        COLUMNS,
        KEY,
        now,
        not_null=NOT_NULL,
        non_negative=AMOUNTS,
        happened=HAPPENED,
    )
