"""Suite for staging.stg_netsuite__credit_memos: one row per NetSuite credit memo (latest version; transaction
type CustCred)."""

from __future__ import annotations

from datetime import datetime

from revsync.quality.suites import table_expectations

TABLE = "staging.stg_netsuite__credit_memos"
KEY = "credit_memo_id"
SOURCE = ("netsuite", "creditMemo")

COLUMNS = {
    "credit_memo_id": "VARCHAR",
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
    "transaction_type": ["CustCred"],
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
