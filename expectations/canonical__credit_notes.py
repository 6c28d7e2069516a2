"""Suite for canonical.credit_notes: one row per credit note: the Stripe credit note and the NetSuite credit
memo whose external id is its id, side by side."""

from __future__ import annotations

from datetime import datetime

from revsync.quality.suites import table_expectations

TABLE = "canonical.credit_notes"
KEY = "credit_note_key"

COLUMNS = {
    "credit_note_key": "VARCHAR",
    "customer_key": "VARCHAR",
    "match_status": "VARCHAR",
    "stripe_credit_note_id": "VARCHAR",
    "netsuite_credit_memo_id": "VARCHAR",
    "stripe_customer_id": "VARCHAR",
    "netsuite_customer_id": "VARCHAR",
    "stripe_invoice_id": "VARCHAR",
    "netsuite_invoice_id": "VARCHAR",
    "stripe_number": "VARCHAR",
    "netsuite_tran_id": "VARCHAR",
    "stripe_status": "VARCHAR",
    "stripe_type": "VARCHAR",
    "stripe_reason": "VARCHAR",
    "stripe_currency": "VARCHAR",
    "netsuite_currency": "VARCHAR",
    "stripe_amount": "DECIMAL(18,3)",
    "netsuite_amount": "DECIMAL(18,3)",
    "stripe_created_at": "TIMESTAMP",
    "stripe_voided_at": "TIMESTAMP",
    "netsuite_tran_date": "DATE",
    "netsuite_created_at": "TIMESTAMP",
    "_stripe_loaded_at": "TIMESTAMP",
    "_netsuite_loaded_at": "TIMESTAMP",
    "_dbt_invocation_id": "VARCHAR",
    "_built_at": "TIMESTAMP",
}

ENUMS = {
    "match_status": ["matched", "stripe_only", "netsuite_only"],
    "stripe_status": ["issued", "void"],
}

AMOUNTS = ["stripe_amount", "netsuite_amount"]

# events that have happened
HAPPENED = [
    "stripe_created_at",
    "stripe_voided_at",
    "netsuite_created_at",
    "_stripe_loaded_at",
    "_netsuite_loaded_at",
]


def build(now: datetime) -> list:
    return table_expectations(
        COLUMNS,
        KEY,
        now,
        not_null=["customer_key", "match_status", "_dbt_invocation_id", "_built_at"],
        unique=["stripe_credit_note_id", "netsuite_credit_memo_id"],
        enums=ENUMS,
        non_negative=AMOUNTS,
        currencies=["stripe_currency", "netsuite_currency"],
        # billing is the source of truth the writes come from (the ERP's amounts may be off)
        minor_units={"stripe_amount": "stripe_currency"},
        happened=HAPPENED,
    )
