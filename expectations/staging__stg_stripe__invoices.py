"""Suite for staging.stg_stripe__invoices: one row per Stripe invoice (latest version)."""

from __future__ import annotations

from datetime import datetime

from revsync.quality.suites import table_expectations

TABLE = "staging.stg_stripe__invoices"
KEY = "invoice_id"
SOURCE = ("stripe", "invoices")

COLUMNS = {
    "invoice_id": "VARCHAR",
    "number": "VARCHAR",
    "customer_id": "VARCHAR",
    "subscription_id": "VARCHAR",
    "currency": "VARCHAR",
    "status": "VARCHAR",
    "billing_reason": "VARCHAR",
    "total_minor": "BIGINT",
    "total": "DECIMAL(18,3)",
    "amount_due_minor": "BIGINT",
    "amount_due": "DECIMAL(18,3)",
    "amount_paid_minor": "BIGINT",
    "amount_paid": "DECIMAL(18,3)",
    "amount_remaining_minor": "BIGINT",
    "amount_remaining": "DECIMAL(18,3)",
    "period_start_at": "TIMESTAMP",
    "period_end_at": "TIMESTAMP",
    "due_at": "TIMESTAMP",
    "finalized_at": "TIMESTAMP",
    "paid_at": "TIMESTAMP",
    "voided_at": "TIMESTAMP",
    "marked_uncollectible_at": "TIMESTAMP",
    "created_at": "TIMESTAMP",
    "_loaded_at": "TIMESTAMP",
    "_batch_id": "VARCHAR",
    "_changed_at": "TIMESTAMP",
}

NOT_NULL = ["customer_id", "currency", "status", "total", "created_at"]

ENUMS = {
    "status": ["draft", "open", "paid", "uncollectible", "void"],
}

AMOUNTS = ["total"]

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
        minor_units={"total": "currency"},
        happened=HAPPENED,
    )
