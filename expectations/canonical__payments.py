"""Suite for canonical.payments: one row per payment: the Stripe charge and the NetSuite customer payment
whose external id is the charge id, side by side."""

from __future__ import annotations

from datetime import datetime

from revsync.quality.suites import table_expectations

TABLE = "canonical.payments"
KEY = "payment_key"

COLUMNS = {
    "payment_key": "VARCHAR",
    "customer_key": "VARCHAR",
    "match_status": "VARCHAR",
    "stripe_charge_id": "VARCHAR",
    "netsuite_customer_payment_id": "VARCHAR",
    "stripe_customer_id": "VARCHAR",
    "netsuite_customer_id": "VARCHAR",
    "stripe_invoice_id": "VARCHAR",
    "netsuite_invoice_id": "VARCHAR",
    "stripe_payment_intent_id": "VARCHAR",
    "netsuite_tran_id": "VARCHAR",
    "stripe_status": "VARCHAR",
    "stripe_failure_code": "VARCHAR",
    "stripe_currency": "VARCHAR",
    "netsuite_currency": "VARCHAR",
    "stripe_amount": "DECIMAL(18,3)",
    "stripe_amount_captured": "DECIMAL(18,3)",
    "stripe_amount_refunded": "DECIMAL(18,3)",
    "netsuite_amount": "DECIMAL(18,3)",
    "is_stripe_refunded": "BOOLEAN",
    "stripe_created_at": "TIMESTAMP",
    "netsuite_tran_date": "DATE",
    "netsuite_created_at": "TIMESTAMP",
    "_stripe_loaded_at": "TIMESTAMP",
    "_netsuite_loaded_at": "TIMESTAMP",
    "_dbt_invocation_id": "VARCHAR",
    "_built_at": "TIMESTAMP",
}

ENUMS = {
    "match_status": ["matched", "stripe_only", "netsuite_only"],
    "stripe_status": ["succeeded", "pending", "failed"],
}

AMOUNTS = ["stripe_amount", "stripe_amount_captured", "stripe_amount_refunded", "netsuite_amount"]

# events that have happened
HAPPENED = ["stripe_created_at", "netsuite_created_at", "_stripe_loaded_at", "_netsuite_loaded_at"]


def build(now: datetime) -> list:
    return table_expectations(
        COLUMNS,
        KEY,
        now,
        not_null=["customer_key", "match_status", "_dbt_invocation_id", "_built_at"],
        unique=["stripe_charge_id", "netsuite_customer_payment_id"],
        enums=ENUMS,
        non_negative=AMOUNTS,
        currencies=["stripe_currency", "netsuite_currency"],
        # billing is the source of truth the writes come from (the ERP's amounts may be off)
        minor_units={"stripe_amount": "stripe_currency"},
        happened=HAPPENED,
    )
