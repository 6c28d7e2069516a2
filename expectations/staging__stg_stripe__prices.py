"""Suite for staging.stg_stripe__prices: one row per Stripe price (latest version)."""

from __future__ import annotations

from datetime import datetime

from revsync.quality.suites import table_expectations

TABLE = "staging.stg_stripe__prices"
KEY = "price_id"
SOURCE = ("stripe", "prices")

COLUMNS = {
    "price_id": "VARCHAR",
    "product_id": "VARCHAR",
    "currency": "VARCHAR",
    "unit_amount_minor": "BIGINT",
    "unit_amount": "DECIMAL(18,3)",
    "type": "VARCHAR",
    "recurring_interval": "VARCHAR",
    "recurring_interval_count": "INTEGER",
    "nickname": "VARCHAR",
    "is_active": "BOOLEAN",
    "created_at": "TIMESTAMP",
    "_loaded_at": "TIMESTAMP",
    "_batch_id": "VARCHAR",
    "_changed_at": "TIMESTAMP",
}

ENUMS = {
    "type": ["one_time", "recurring"],
    "recurring_interval": ["day", "week", "month", "year"],
}

AMOUNTS = ["unit_amount"]

# events that have happened
HAPPENED = ["created_at", "_loaded_at"]


def build(now: datetime) -> list:
    return table_expectations(
        COLUMNS,
        KEY,
        now,
        not_null=["product_id", "currency"],
        enums=ENUMS,
        non_negative=AMOUNTS,
        currencies=["currency"],
        minor_units={"unit_amount": "currency"},
        happened=HAPPENED,
    )
