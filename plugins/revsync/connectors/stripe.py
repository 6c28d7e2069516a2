"""Stripe Billing: `/v1` lists paged by `starting_after` while `has_more` (newest first)."""

from __future__ import annotations

from revsync.connectors.base import Connector, Stream, StripeCursor

PAGER = StripeCursor(limit=100)


def _stream(name: str, path: str, **params: str) -> Stream:
    return Stream(name, f"/v1/{path}", "id", PAGER, "data", cursor_field="created", params=params)


def auth(credentials: dict[str, str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {credentials['api_key']}"}


CONNECTOR = Connector(
    "stripe",
    (
        _stream("customers", "customers"),
        _stream("subscriptions", "subscriptions", status="all"),
        _stream("invoices", "invoices"),
        _stream("charges", "charges"),
        _stream("credit_notes", "credit_notes"),
        _stream("products", "products"),
        _stream("prices", "prices"),
    ),
    auth,
)
