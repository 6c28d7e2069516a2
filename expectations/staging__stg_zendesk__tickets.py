"""Suite for staging.stg_zendesk__tickets: one row per Zendesk ticket (latest version)."""

from __future__ import annotations

from datetime import datetime

from revsync.quality.suites import table_expectations

TABLE = "staging.stg_zendesk__tickets"
KEY = "ticket_id"
SOURCE = ("zendesk", "tickets")

COLUMNS = {
    "ticket_id": "VARCHAR",
    "subject": "VARCHAR",
    "status": "VARCHAR",
    "priority": "VARCHAR",
    "type": "VARCHAR",
    "requester_id": "VARCHAR",
    "organization_id": "VARCHAR",
    "tags": "JSON",
    "created_at": "TIMESTAMP",
    "updated_at": "TIMESTAMP",
    "_loaded_at": "TIMESTAMP",
    "_batch_id": "VARCHAR",
    "_changed_at": "TIMESTAMP",
}

ENUMS = {
    "status": ["new", "open", "pending", "hold", "solved", "closed", "deleted"],
    "priority": ["low", "normal", "high", "urgent"],
    "type": ["problem", "incident", "question", "task"],
}

# events that have happened
HAPPENED = ["created_at", "updated_at", "_loaded_at"]


def build(now: datetime) -> list:
    return table_expectations(
        COLUMNS,
        KEY,
        now,
        not_null=["status", "requester_id"],
        enums=ENUMS,
        happened=HAPPENED,
    )
