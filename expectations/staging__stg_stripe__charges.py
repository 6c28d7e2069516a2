"""Suite for staging.stg_stripe__charges: one row per Stripe charge (latest version; failed ones included)."""

from __future__ import annotations

from datetime import datetime

from revsync.quality.suites import table_expectations

TABLE = "staging.stg_stripe__charges"
KEY = "charge_id"
SOURCE = ("stripe", "charges")

COLUMNS = {
    "charge_id": "VARCHAR",
    "customer_id": "VARCHAR",
    "invoice_id": "VARCHAR",
    "payment_intent_id": "VARCHAR",
    "currency": "VARCHAR",
    "status": "VARCHAR",
    "failure_code": "VARCHAR",
    "amount_minor": "BIGINT",
    "amount": "DECIMAL(18,3)",
    "amount_captured_minor": "BIGINT",
    "amount_captured": "DECIMAL(18,3)",
    "amount_refunded_minor": "BIGINT",
    "amount_refunded": "DECIMAL(18,3)",
    "is_paid": "BOOLEAN",
    "is_refunded": "BOOLEAN",
    "created_at": "TIMESTAMP",
    "_loaded_at": "TIMESTAMP",
    "_batch_id": "VARCHAR",
    "_changed_at": "TIMESTAMP",
}

NOT_NULL = ["customer_id", "currency", "status", "amount_minor", "created_at"]

ENUMS = {
    "status": ["succeeded", "pending", "failed"],
}

AMOUNTS = ["amount"]

# events that have happened
HAPPENED = ["created_at", "_loaded_at"]


def build(now: datetime) -> list:
    return table_expectations(
        COLUMNS,
        KEY,
        now,
        not_null=NOT_NULL,
        enums=ENUMS,
        non_negative=AMOUNTS,
        currencies=["currency"],
        minor_units={"amount": "currency"},
        happened=HAPPENED,
    )
