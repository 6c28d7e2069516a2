"""Suite for staging.stg_stripe__customers: one row per Stripe customer (latest version)."""

from __future__ import annotations

from datetime import datetime

from revsync.quality.suites import table_expectations

TABLE = "staging.stg_stripe__customers"
KEY = "customer_id"
SOURCE = ("stripe", "customers")

COLUMNS = {
    "customer_id": "VARCHAR",
    "name": "VARCHAR",
    "email": "VARCHAR",
    "currency": "VARCHAR",
    "balance_minor": "BIGINT",
    "balance": "DECIMAL(18,3)",
    "is_delinquent": "BOOLEAN",
    "is_deleted": "BOOLEAN",
    "metadata": "JSON",
    "hubspot_company_id": "VARCHAR",
    "created_at": "TIMESTAMP",
    "_loaded_at": "TIMESTAMP",
    "_batch_id": "VARCHAR",
    "_changed_at": "TIMESTAMP",
}

# events that have happened
HAPPENED = ["created_at", "_loaded_at"]


def build(now: datetime) -> list:
    return table_expectations(
        COLUMNS,
        KEY,
        now,
        not_null=["is_delinquent", "created_at"],
        currencies=["currency"],
        happened=HAPPENED,
    )
