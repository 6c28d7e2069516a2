"""Stripe Billing: `/v1` lists paged by `starting_after` while `has_more` (newest first).

Incremental: Stripe has no updated-since filter, so changes come from `/v1/events` of each stream's
object type (kept 30 days); a full load's cursor is the time it started.
"""

from __future__ import annotations

from revsync.connectors.base import Connector, Stream, StripeCursor
from revsync.connectors.incremental import StripeEvents

PAGER = StripeCursor(limit=100)
AMOUNTS = {
    "invoices": ("amount_due", "amount_paid", "amount_remaining", "total"),
    "charges": ("amount", "amount_captured", "amount_refunded"),
    "credit_notes": ("amount", "total"),
    "prices": ("unit_amount",),
}
EVENTS = {  # stream -> (event types, object)
    "customers": (("customer.created", "customer.updated", "customer.deleted"), "customer"),
    "subscriptions": (("customer.subscription.*",), "subscription"),
    "invoices": (("invoice.*",), "invoice"),
    "charges": (("charge.*",), "charge"),
    "credit_notes": (("credit_note.*",), "credit_note"),
    "products": (("product.*",), "product"),
    "prices": (("price.*",), "price"),
}


def _stream(name: str, **params: str) -> Stream:
    types, obj = EVENTS[name]
    contract = {"created": "integer", **dict.fromkeys(AMOUNTS.get(name, ()), "integer")}
    return Stream(
        name,
        f"/v1/{name}",
        "id",
        PAGER,
        "data",
        cursor_field="created",
        params=params,
        incremental=StripeEvents(types, obj),
        cursor_is_change_time=False,
        newest_first=True,
        contract=contract,
    )


def auth(credentials: dict[str, str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {credentials['api_key']}"}


CONNECTOR = Connector(
    "stripe",
    (
        _stream("customers"),
        _stream("subscriptions", status="all"),
        _stream("invoices"),
        _stream("charges"),
        _stream("credit_notes"),
        _stream("products"),
        _stream("prices"),
    ),
    auth,
)
