"""Suite for staging.stg_hubspot__deals: one row per HubSpot deal (latest version)."""

from __future__ import annotations

from datetime import datetime

from revsync.quality.suites import table_expectations

TABLE = "staging.stg_hubspot__deals"
KEY = "deal_id"
SOURCE = ("hubspot", "deals")

COLUMNS = {
    "deal_id": "VARCHAR",
    "dealname": "VARCHAR",
    "dealstage": "VARCHAR",
    "pipeline": "VARCHAR",
    "amount": "DECIMAL(18,3)",
    "deal_currency_code": "VARCHAR",
    "plan": "VARCHAR",
    "company_id": "VARCHAR",
    "closedate_at": "TIMESTAMP",
    "is_archived": "BOOLEAN",
    "created_at": "TIMESTAMP",
    "updated_at": "TIMESTAMP",
    "_loaded_at": "TIMESTAMP",
    "_batch_id": "VARCHAR",
    "_changed_at": "TIMESTAMP",
}

# the plans: var plan_support_tiers' keys (dbt_project.yml)
PLANS = ["starter", "growth", "enterprise"]

ENUMS = {
    "dealstage": [
        "appointmentscheduled",
        "qualifiedtobuy",
        "presentationscheduled",
        "decisionmakerboughtin",
        "contractsent",
        "closedwon",
        "closedlost",
    ],
    "plan": PLANS,
}

AMOUNTS = ["amount"]

# events that have happened (a close date may be set ahead while the deal is open)
HAPPENED = ["created_at", "updated_at", "_loaded_at"]


def build(now: datetime) -> list:
    return table_expectations(
        COLUMNS,
        KEY,
        now,
        not_null=["dealstage", "company_id"],
        enums=ENUMS,
        non_negative=AMOUNTS,
        currencies=["deal_currency_code"],
        happened=HAPPENED,
    )
