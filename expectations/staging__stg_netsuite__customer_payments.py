"""Suite for staging.stg_netsuite__customer_payments: one row per NetSuite customer payment (latest version;
transaction type CustPymt)."""

from __future__ import annotations

from datetime import datetime

from revsync.quality.suites import table_expectations

TABLE = "staging.stg_netsuite__customer_payments"
KEY = "customer_payment_id"
SOURCE = ("netsuite", "customerPayment")

COLUMNS = {
    "customer_payment_id": "VARCHAR",
    "external_id": "VARCHAR",
    "tran_id": "VARCHAR",
    "transaction_type": "VARCHAR",
    "customer_id": "VARCHAR",
    "invoice_id": "VARCHAR",
    "currency": "VARCHAR",
    "currency_id": "VARCHAR",
    "amount": "DECIMAL(18,3)",
    "tran_date": "DATE",
    "created_at": "TIMESTAMP",
    "updated_at": "TIMESTAMP",
    "_loaded_at": "TIMESTAMP",
    "_batch_id": "VARCHAR",
    "_changed_at": "TIMESTAMP",
}

ENUMS = {
    "transaction_type": ["CustPymt"],
}

AMOUNTS = ["amount"]

# events that have happened: updated_at is lastmodifieddate, never before datecreated (both converted
# from the account's zone)
HAPPENED = ["updated_at", "_loaded_at"]


def build(now: datetime) -> list:
    return table_expectations(
        COLUMNS,
        KEY,
        now,
        not_null=["customer_id", "currency", "amount", "updated_at"],
        enums=ENUMS,
        non_negative=AMOUNTS,
        currencies=["currency"],
        happened=HAPPENED,
    )
