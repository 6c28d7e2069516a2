"""Suite for staging.stg_stripe__products: one row per Stripe product (latest version); its lowercased name is
the plan."""

from __future__ import annotations

from datetime import datetime

from revsync.quality.suites import table_expectations

TABLE = "staging.stg_stripe__products"
KEY = "product_id"
SOURCE = ("stripe", "products")

COLUMNS = {
    "product_id": "VARCHAR",
    "name": "VARCHAR",
    "plan": "VARCHAR",
    "tier": "VARCHAR",
    "is_active": "BOOLEAN",
    "metadata": "JSON",
    "created_at": "TIMESTAMP",
    "updated_at": "TIMESTAMP",
    "_loaded_at": "TIMESTAMP",
    "_batch_id": "VARCHAR",
    "_changed_at": "TIMESTAMP",
}

# the plans: var plan_support_tiers' keys (dbt_project.yml)
PLANS = ["starter", "growth", "enterprise"]

# var support_tiers (dbt_project.yml), ascending
SUPPORT_TIERS = ["basic", "standard", "premium", "enterprise"]

ENUMS = {
    "plan": PLANS,
    "tier": SUPPORT_TIERS,
}

# events that have happened
HAPPENED = ["created_at", "updated_at", "_loaded_at"]


def build(now: datetime) -> list:
    return table_expectations(
        COLUMNS,
        KEY,
        now,
        not_null=["plan"],
        enums=ENUMS,
        happened=HAPPENED,
    )
