"""Suite for canonical.deals: one row per HubSpot deal with its canonical customer and, for a closed-won deal,
the Stripe subscription that fulfilled it."""

from __future__ import annotations

from datetime import datetime

from revsync.quality.suites import table_expectations

TABLE = "canonical.deals"
KEY = "hubspot_deal_id"

COLUMNS = {
    "hubspot_deal_id": "VARCHAR",
    "hubspot_company_id": "VARCHAR",
    "customer_key": "VARCHAR",
    "dealname": "VARCHAR",
    "dealstage": "VARCHAR",
    "is_closed_won": "BOOLEAN",
    "pipeline": "VARCHAR",
    "plan": "VARCHAR",
    "amount": "DECIMAL(18,3)",
    "currency": "VARCHAR",
    "closedate_at": "TIMESTAMP",
    "stripe_subscription_id": "VARCHAR",
    "subscription_plan": "VARCHAR",
    "subscription_status": "VARCHAR",
    "subscription_created_at": "TIMESTAMP",
    "is_fulfilled": "BOOLEAN",
    "is_onboarding_overdue": "BOOLEAN",
    "is_archived": "BOOLEAN",
    "created_at": "TIMESTAMP",
    "updated_at": "TIMESTAMP",
}

# the plans: var plan_support_tiers' keys (dbt_project.yml)
PLANS = ["starter", "growth", "enterprise"]

NOT_NULL = ["hubspot_company_id", "customer_key", "dealstage", "is_fulfilled", "is_onboarding_overdue"]

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
HAPPENED = ["created_at", "updated_at", "subscription_created_at"]


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
