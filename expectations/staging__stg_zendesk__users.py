"""Suite for staging.stg_zendesk__users: one row per Zendesk user (latest version)."""

from __future__ import annotations

from datetime import datetime

from revsync.quality.suites import table_expectations

TABLE = "staging.stg_zendesk__users"
KEY = "user_id"
SOURCE = ("zendesk", "users")

COLUMNS = {
    "user_id": "VARCHAR",
    "name": "VARCHAR",
    "email": "VARCHAR",
    "role": "VARCHAR",
    "organization_id": "VARCHAR",
    "is_active": "BOOLEAN",
    "is_suspended": "BOOLEAN",
    "created_at": "TIMESTAMP",
    "updated_at": "TIMESTAMP",
    "_loaded_at": "TIMESTAMP",
    "_batch_id": "VARCHAR",
    "_changed_at": "TIMESTAMP",
}

ENUMS = {
    "role": ["end-user", "agent", "admin"],
}

# events that have happened
HAPPENED = ["created_at", "updated_at", "_loaded_at"]


def build(now: datetime) -> list:
    return table_expectations(
        COLUMNS,
        KEY,
        now,
        enums=ENUMS,
        happened=HAPPENED,
    )
