"""Suite for staging.stg_stripe__usage: one row per Stripe meter, customer and UTC day with usage (meter event
summaries)."""

from __future__ import annotations

from datetime import datetime

from revsync.quality.suites import table_expectations

TABLE = "staging.stg_stripe__usage"
KEY = "usage_id"
SOURCE = ("stripe", "usage")
MIN_ROWS = 0  # a company may meter nothing: no usage is no failure

COLUMNS = {
    "usage_id": "VARCHAR",
    "meter_id": "VARCHAR",
    "customer_id": "VARCHAR",
    "usage_date": "DATE",
    "quantity": "DECIMAL(18,3)",
    "period_start_at": "TIMESTAMP",
    "period_end_at": "TIMESTAMP",
    "_loaded_at": "TIMESTAMP",
    "_batch_id": "VARCHAR",
    "_changed_at": "TIMESTAMP",
}

NOT_NULL = ["meter_id", "customer_id", "usage_date", "quantity", "period_start_at", "period_end_at"]

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
