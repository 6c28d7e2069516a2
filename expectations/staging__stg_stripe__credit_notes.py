"""Suite for staging.stg_stripe__credit_notes: one row per Stripe credit note (latest version)."""

from __future__ import annotations

from datetime import datetime

from revsync.quality.suites import table_expectations

TABLE = "staging.stg_stripe__credit_notes"
KEY = "credit_note_id"
SOURCE = ("stripe", "credit_notes")

COLUMNS = {
    "credit_note_id": "VARCHAR",
    "number": "VARCHAR",
    "customer_id": "VARCHAR",
    "invoice_id": "VARCHAR",
    "currency": "VARCHAR",
    "amount_minor": "BIGINT",
    "amount": "DECIMAL(18,3)",
    "status": "VARCHAR",
    "type": "VARCHAR",
    "reason": "VARCHAR",
    "voided_at": "TIMESTAMP",
    "effective_at": "TIMESTAMP",
    "created_at": "TIMESTAMP",
    "_loaded_at": "TIMESTAMP",
    "_batch_id": "VARCHAR",
    "_changed_at": "TIMESTAMP",
}

NOT_NULL = ["customer_id", "invoice_id", "currency", "amount_minor", "status", "created_at"]

ENUMS = {
    "status": ["issued", "void"],
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
