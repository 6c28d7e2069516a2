"""Suite for staging.stg_hubspot__contacts: one row per HubSpot contact (latest version)."""

from __future__ import annotations

from datetime import datetime

from revsync.quality.suites import table_expectations

TABLE = "staging.stg_hubspot__contacts"
KEY = "contact_id"
SOURCE = ("hubspot", "contacts")

COLUMNS = {
    "contact_id": "VARCHAR",
    "email": "VARCHAR",
    "firstname": "VARCHAR",
    "lastname": "VARCHAR",
    "company_id": "VARCHAR",
    "is_archived": "BOOLEAN",
    "created_at": "TIMESTAMP",
    "updated_at": "TIMESTAMP",
    "_loaded_at": "TIMESTAMP",
    "_batch_id": "VARCHAR",
    "_changed_at": "TIMESTAMP",
}

# events that have happened
HAPPENED = ["created_at", "updated_at", "_loaded_at"]


def build(now: datetime) -> list:
    return table_expectations(
        COLUMNS,
        KEY,
        now,
        happened=HAPPENED,
    )
