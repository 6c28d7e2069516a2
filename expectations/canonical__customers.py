"""Suite for canonical.customers: one row per canonical customer: the Stripe customer, HubSpot company,
Zendesk organization and NetSuite customer(s) that resolve to it."""

from __future__ import annotations

from datetime import datetime

import great_expectations.expectations as gxe

from revsync.quality.suites import BLOCK, TYPE_SPELLINGS, table_expectations

TABLE = "canonical.customers"
KEY = "customer_key"

COLUMNS = {
    "customer_key": "VARCHAR",
    "customer_name": "VARCHAR",
    "domain": "VARCHAR",
    "source_systems": "VARCHAR[]",
    "key_origin": "VARCHAR",
    "stripe_customer_id": "VARCHAR",
    "hubspot_company_id": "VARCHAR",
    "hubspot_link_method": "VARCHAR",
    "zendesk_organization_id": "VARCHAR",
    "zendesk_link_method": "VARCHAR",
    "netsuite_customer_id": "VARCHAR",
    "netsuite_link_method": "VARCHAR",
    "netsuite_customer_ids": "VARCHAR[]",
    "netsuite_customer_count": "BIGINT",
    "is_duplicate_in_erp": "BOOLEAN",
    "billing_currency": "VARCHAR",
    "is_stripe_delinquent": "BOOLEAN",
    "crm_lifecyclestage": "VARCHAR",
    "support_tier": "VARCHAR",
    "live_subscriptions": "HUGEINT",
    "reporting_currency": "VARCHAR",
    "mrr_reporting": "DECIMAL(38,3)",
    "arr_reporting": "DECIMAL(38,3)",
    "created_at": "TIMESTAMP",
}

# lists (VARCHAR[]) have no portable type spelling: they are in the exact column set, without a type check
TYPED = {c: t for c, t in COLUMNS.items() if t in TYPE_SPELLINGS}

# how a system's record was linked (int_customer_identity.link_method)
LINK_METHODS = [
    "stripe_customer",
    "hubspot_stripe_customer_id",
    "stripe_metadata_hubspot_company_id",
    "zendesk_external_id",
    "netsuite_external_id",
    "email_domain",
    "domain",
    "legal_name",
    "unlinked",
]

# var support_tiers (dbt_project.yml), ascending
SUPPORT_TIERS = ["basic", "standard", "premium", "enterprise"]

NOT_NULL = [
    "key_origin",
    "netsuite_customer_count",
    "is_duplicate_in_erp",
    "live_subscriptions",
    "mrr_reporting",
    "arr_reporting",
]

ENUMS = {
    "key_origin": ["stripe", "hubspot", "unlinked"],
    "hubspot_link_method": LINK_METHODS,
    "zendesk_link_method": LINK_METHODS,
    "netsuite_link_method": LINK_METHODS,
    "support_tier": SUPPORT_TIERS,
}

AMOUNTS = ["mrr_reporting", "arr_reporting"]

# events that have happened
HAPPENED = ["created_at"]


def build(now: datetime) -> list:
    expectations = table_expectations(
        TYPED,
        KEY,
        now,
        not_null=NOT_NULL,
        unique=[
            "stripe_customer_id",
            "hubspot_company_id",
            "zendesk_organization_id",
            "netsuite_customer_id",
        ],
        enums=ENUMS,
        non_negative=AMOUNTS,
        currencies=["billing_currency", "reporting_currency"],
        happened=HAPPENED,
    )
    # the column set is every column, typed or not
    shape = gxe.ExpectTableColumnsToMatchSet(column_set=list(COLUMNS), exact_match=True, meta=BLOCK)
    return [shape, *(e for e in expectations if not isinstance(e, gxe.ExpectTableColumnsToMatchSet))]
