"""Suite for staging.stg_hubspot__companies: one row per HubSpot company (latest version)."""

from __future__ import annotations

from datetime import datetime

from revsync.quality.suites import table_expectations

TABLE = "staging.stg_hubspot__companies"
KEY = "company_id"
SOURCE = ("hubspot", "companies")

COLUMNS = {
    "company_id": "VARCHAR",
    "name": "VARCHAR",
    "domain": "VARCHAR",
    "lifecyclestage": "VARCHAR",
    "arr": "DECIMAL(18,3)",
    "arr_currency": "VARCHAR",
    "stripe_customer_id": "VARCHAR",
    "is_archived": "BOOLEAN",
    "created_at": "TIMESTAMP",
    "updated_at": "TIMESTAMP",
    "_loaded_at": "TIMESTAMP",
    "_batch_id": "VARCHAR",
    "_changed_at": "TIMESTAMP",
}

ENUMS = {
    "lifecyclestage": [
        "subscriber",
        "lead",
        "marketingqualifiedlead",
        "salesqualifiedlead",
        "opportunity",
        "customer",
        "evangelist",
        "other",
    ],
}

AMOUNTS = ["arr"]

# events that have happened
HAPPENED = ["created_at", "updated_at", "_loaded_at"]


def build(now: datetime) -> list:
    return table_expectations(
        COLUMNS,
        KEY,
        now,
        not_null=["is_archived", "created_at", "updated_at"],
        enums=ENUMS,
        non_negative=AMOUNTS,
        currencies=["arr_currency"],
        happened=HAPPENED,
    )
