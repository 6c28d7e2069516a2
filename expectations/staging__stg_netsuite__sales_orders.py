"""Suite for staging.stg_netsuite__sales_orders: one row per NetSuite sales order (latest version; transaction
type SalesOrd)."""

from __future__ import annotations

from datetime import datetime

from revsync.quality.suites import table_expectations

TABLE = "staging.stg_netsuite__sales_orders"
KEY = "sales_order_id"
SOURCE = ("netsuite", "salesOrder")

COLUMNS = {
    "sales_order_id": "VARCHAR",
    "external_id": "VARCHAR",
    "tran_id": "VARCHAR",
    "transaction_type": "VARCHAR",
    "customer_id": "VARCHAR",
    "currency": "VARCHAR",
    "currency_id": "VARCHAR",
    "total": "DECIMAL(18,3)",
    "status": "VARCHAR",
    "tran_date": "DATE",
    "created_at": "TIMESTAMP",
    "updated_at": "TIMESTAMP",
    "_loaded_at": "TIMESTAMP",
    "_batch_id": "VARCHAR",
    "_changed_at": "TIMESTAMP",
}

NOT_NULL = ["customer_id", "currency", "total", "status", "updated_at"]

ENUMS = {
    "transaction_type": ["SalesOrd"],
    "status": [
        "pendingApproval",
        "pendingFulfillment",
        "partiallyFulfilled",
        "pendingBillingPartFulfilled",
        "pendingBilling",
        "fullyBilled",
        "billed",
        "closed",
        "cancelled",
    ],
}

AMOUNTS = ["total"]

# events that have happened: updated_at is lastmodifieddate, never before datecreated (both converted
# from the account's zone)
HAPPENED = ["updated_at", "_loaded_at"]


def build(now: datetime) -> list:
    return table_expectations(
        COLUMNS,
        KEY,
        now,
        not_null=NOT_NULL,
        enums=ENUMS,
        non_negative=AMOUNTS,
        currencies=["currency"],
        happened=HAPPENED,
    )
