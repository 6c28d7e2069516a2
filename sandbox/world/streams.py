"""Which world table holds the records each revsync stream reads, per source and stream.

Tests and benchmarks compare what a connector landed with these tables' row counts (or, with
`/__sandbox__/counts?changed_since=`, with the rows a change step wrote).
"""

from __future__ import annotations

STREAM_TABLES: dict[tuple[str, str], str] = {
    ("stripe", "customers"): "stripe_customers",
    ("stripe", "subscriptions"): "stripe_subscriptions",
    ("stripe", "invoices"): "stripe_invoices",
    ("stripe", "charges"): "stripe_charges",
    ("stripe", "credit_notes"): "stripe_credit_notes",
    ("stripe", "products"): "stripe_products",
    ("stripe", "prices"): "stripe_prices",
    ("hubspot", "companies"): "hubspot_companies",
    ("hubspot", "contacts"): "hubspot_contacts",
    ("hubspot", "deals"): "hubspot_deals",
    ("zendesk", "organizations"): "zendesk_organizations",
    ("zendesk", "users"): "zendesk_users",
    ("zendesk", "tickets"): "zendesk_tickets",
    ("netsuite", "customer"): "netsuite_customers",
    ("netsuite", "salesOrder"): "netsuite_sales_orders",
    ("netsuite", "invoice"): "netsuite_invoices",
    ("netsuite", "customerPayment"): "netsuite_customer_payments",
    ("netsuite", "creditMemo"): "netsuite_credit_memos",
    # the optional vendors serve the Stripe billing and Zendesk support data in their own protocols
    ("chargebee", "customers"): "stripe_customers",
    ("chargebee", "subscriptions"): "stripe_subscriptions",
    ("chargebee", "invoices"): "stripe_invoices",
    ("freshdesk", "companies"): "zendesk_organizations",
    ("freshdesk", "contacts"): "zendesk_users",
    ("freshdesk", "tickets"): "zendesk_tickets",
}


def tables_of(source: str) -> dict[str, str]:
    """stream -> world table for one source."""
    return {stream: table for (src, stream), table in STREAM_TABLES.items() if src == source}
