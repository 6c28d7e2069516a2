"""Suite for staging.stg_netsuite__customers: one row per NetSuite customer (latest version)."""

from __future__ import annotations

from datetime import datetime

from revsync.quality.suites import table_expectations

TABLE = "staging.stg_netsuite__customers"
KEY = "customer_id"
SOURCE = ("netsuite", "customer")

COLUMNS = {
    "customer_id": "VARCHAR",
    "external_id": "VARCHAR",
    "entity_id": "VARCHAR",
    "company_name": "VARCHAR",
    "email": "VARCHAR",
    "subsidiary_id": "VARCHAR",
    "currency": "VARCHAR",
    "currency_id": "VARCHAR",
    "is_inactive": "BOOLEAN",
    "created_at": "TIMESTAMP",
    "updated_at": "TIMESTAMP",
    "_loaded_at": "TIMESTAMP",
    "_batch_id": "VARCHAR",
    "_changed_at": "TIMESTAMP",
}

# events that have happened: updated_at is lastmodifieddate, never before datecreated (both converted
# from the account's zone)
HAPPENED = ["updated_at", "_loaded_at"]


def build(now: datetime) -> list:
    return table_expectations(
        COLUMNS,
        KEY,
        now,
        not_null=["currency", "is_inactive", "updated_at"],
        currencies=["currency"],
        happened=HAPPENED,
    )
