"""Suite for canonical.invoices: one row per invoice across Stripe and NetSuite.

Canonical marts feed every change set, so each expectation here blocks the push (a quarantine only
holds change rows)."""

from __future__ import annotations

from datetime import datetime

from revsync.quality.suites import table_expectations

TABLE = "canonical.invoices"
KEY = "invoice_key"

COLUMNS = {
    "invoice_key": "VARCHAR",
    "customer_key": "VARCHAR",
    "match_status": "VARCHAR",
    "stripe_invoice_id": "VARCHAR",
    "netsuite_invoice_id": "VARCHAR",
    "stripe_customer_id": "VARCHAR",
    "netsuite_customer_id": "VARCHAR",
    "stripe_subscription_id": "VARCHAR",
    "netsuite_sales_order_id": "VARCHAR",
    "stripe_number": "VARCHAR",
    "netsuite_tran_id": "VARCHAR",
    "stripe_status": "VARCHAR",
    "netsuite_status": "VARCHAR",
    "stripe_currency": "VARCHAR",
    "netsuite_currency": "VARCHAR",
    "stripe_total": "DECIMAL(18,3)",
    "netsuite_total": "DECIMAL(18,3)",
    "stripe_amount_paid": "DECIMAL(18,3)",
    "stripe_amount_remaining": "DECIMAL(18,3)",
    "netsuite_amount_remaining": "DECIMAL(18,3)",
    "billing_reason": "VARCHAR",
    "period_start_at": "TIMESTAMP",
    "period_end_at": "TIMESTAMP",
    "stripe_due_at": "TIMESTAMP",
    "netsuite_due_date": "DATE",
    "stripe_finalized_at": "TIMESTAMP",
    "stripe_paid_at": "TIMESTAMP",
    "stripe_voided_at": "TIMESTAMP",
    "netsuite_tran_date": "DATE",
    "stripe_created_at": "TIMESTAMP",
    "netsuite_created_at": "TIMESTAMP",
    "_stripe_loaded_at": "TIMESTAMP",
    "_netsuite_loaded_at": "TIMESTAMP",
    "_dbt_invocation_id": "VARCHAR",
    "_built_at": "TIMESTAMP",
}

ENUMS = {
    "match_status": ["matched", "stripe_only", "netsuite_only"],
    "stripe_status": ["draft", "open", "paid", "uncollectible", "void"],
    "netsuite_status": ["open", "paidInFull", "pendingApproval", "rejected", "voided"],
}

AMOUNTS = [
    "stripe_total",
    "netsuite_total",
    "stripe_amount_paid",
    "stripe_amount_remaining",
    "netsuite_amount_remaining",
]

# events that have happened (periods and due dates may lie ahead)
HAPPENED = [
    "stripe_created_at",
    "netsuite_created_at",
    "stripe_finalized_at",
    "stripe_paid_at",
    "stripe_voided_at",
    "_stripe_loaded_at",
    "_netsuite_loaded_at",
]


def build(now: datetime) -> list:
    return table_expectations(
        COLUMNS,
        KEY,
        now,
        not_null=["customer_key"],
        unique=["stripe_invoice_id"],
        enums=ENUMS,
        non_negative=AMOUNTS,
        currencies=["stripe_currency", "netsuite_currency"],
        # billing is the source of truth the writes come from; the ERP's own totals may be off (the
        # sandbox's injected amount mismatches carry half yen): that is an invoice_amount_mismatch
        minor_units={"stripe_total": "stripe_currency"},
        happened=HAPPENED,
    )
