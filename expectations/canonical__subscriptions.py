"""Suite for canonical.subscriptions: one row per Stripe subscription with its NetSuite sales order, plan,
support tier, MRR and ARR."""

from __future__ import annotations

from datetime import datetime

from revsync.quality.suites import table_expectations

TABLE = "canonical.subscriptions"
KEY = "subscription_id"

COLUMNS = {
    "subscription_id": "VARCHAR",
    "customer_key": "VARCHAR",
    "stripe_customer_id": "VARCHAR",
    "netsuite_sales_order_id": "VARCHAR",
    "plan": "VARCHAR",
    "support_tier": "VARCHAR",
    "status": "VARCHAR",
    "is_live": "BOOLEAN",
    "is_entitled": "BOOLEAN",
    "quantity": "BIGINT",
    "currency": "VARCHAR",
    "price_id": "VARCHAR",
    "product_id": "VARCHAR",
    "unit_amount": "DECIMAL(18,3)",
    "recurring_interval": "VARCHAR",
    "period_amount": "DECIMAL(18,3)",
    "mrr": "DECIMAL(18,3)",
    "arr": "DECIMAL(18,3)",
    "reporting_currency": "VARCHAR",
    "mrr_reporting": "DECIMAL(18,3)",
    "arr_reporting": "DECIMAL(18,3)",
    "netsuite_sales_order_status": "VARCHAR",
    "netsuite_sales_order_total": "DECIMAL(18,3)",
    "netsuite_sales_order_currency": "VARCHAR",
    "is_cancel_at_period_end": "BOOLEAN",
    "current_period_start_at": "TIMESTAMP",
    "current_period_end_at": "TIMESTAMP",
    "trial_end_at": "TIMESTAMP",
    "canceled_at": "TIMESTAMP",
    "ended_at": "TIMESTAMP",
    "start_at": "TIMESTAMP",
    "created_at": "TIMESTAMP",
    "_loaded_at": "TIMESTAMP",
}

# the plans: var plan_support_tiers' keys (dbt_project.yml)
PLANS = ["starter", "growth", "enterprise"]

# var support_tiers (dbt_project.yml), ascending
SUPPORT_TIERS = ["basic", "standard", "premium", "enterprise"]

NOT_NULL = [
    "customer_key",
    "stripe_customer_id",
    "status",
    "is_live",
    "is_entitled",
    "currency",
    "mrr",
    "arr",
    "mrr_reporting",
    "arr_reporting",
    "created_at",
]

ENUMS = {
    "status": [
        "incomplete",
        "incomplete_expired",
        "trialing",
        "active",
        "past_due",
        "canceled",
        "unpaid",
        "paused",
    ],
    "plan": PLANS,
    "support_tier": SUPPORT_TIERS,
    "recurring_interval": ["day", "week", "month", "year"],
}

AMOUNTS = [
    "quantity",
    "unit_amount",
    "period_amount",
    "mrr",
    "arr",
    "mrr_reporting",
    "arr_reporting",
    "netsuite_sales_order_total",
]

# events that have happened (periods, trials and scheduled cancellations may lie ahead)
HAPPENED = ["created_at", "canceled_at", "ended_at", "_loaded_at"]


def build(now: datetime) -> list:
    return table_expectations(
        COLUMNS,
        KEY,
        now,
        not_null=NOT_NULL,
        unique=["netsuite_sales_order_id"],
        enums=ENUMS,
        non_negative=AMOUNTS,
        currencies=["currency", "reporting_currency", "netsuite_sales_order_currency"],
        # billed amounts; MRR is ARR / 12 rounded to 3 decimals, finer than cents by design
        minor_units={"unit_amount": "currency", "period_amount": "currency"},
        happened=HAPPENED,
    )
