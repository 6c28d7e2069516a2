"""Stripe Billing: `/v1` lists paged by `starting_after` while `has_more` (newest first).

Incremental: Stripe has no updated-since filter, so changes come from `/v1/events` of each stream's
object type (kept 30 days); a full load's cursor is the time it started.

`usage` is daily usage per billing meter and customer: the meter event summaries
(`/v1/billing/meters/{id}/event_summaries`, `value_grouping_window=day`), requested per meter x
customer because Stripe has no "customers with usage" list. The customers come from the
subscriptions list, keeping only customers with a subscription live during the window (not ended
before its start): usage is billed through a subscription, and this both bounds the fan-out and
needs no other stream landed first (stream tasks run in parallel). Incremental runs ask for the whole
UTC days from the cursor minus the lookback (TimeWindow); a day's summary keeps its id as its value
grows, so each new value lands as a new version. It costs a request per meter and customer, so it
is read at most hourly (USAGE_REFRESH_S; measured: ~96k requests a run at 100k customers), not on
every 15-minute micro-batch; `force` (a DAG param, `revsync extract --force`) reads it anyway.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from revsync.connectors.base import Connector, Parent, Stream, StripeCursor
from revsync.connectors.incremental import StripeEvents, TimeWindow, ceil_to

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


def _live_in_window(subscription: dict, params: Mapping[str, Any]) -> bool:
    """A subscription that had not ended by the window's start (ended_at is null while it lives)."""
    ended = subscription.get("ended_at")
    return ended is None or int(ended) >= int(params["start_time"])


DAY = 86_400
USAGE_REFRESH_S = 3_600
METERS = Stream("meters", "/v1/billing/meters", "id", PAGER, "data")
USAGE = Stream(
    "usage",
    "/v1/billing/meters/{meter}/event_summaries",
    "id",  # mrs_<hash of meter|customer|bucket start|bucket end>: one id per meter, customer and day
    PAGER,
    "data",
    cursor_field="start_time",
    params={
        "customer": "{customer}",
        "value_grouping_window": "day",
        "start_time": 0,  # a full load reads all history
        "end_time": lambda: ceil_to(int(time.time()), DAY),  # through the end of today (UTC)
    },
    incremental=TimeWindow("start_time", "end_time", DAY),
    cursor_is_change_time=False,
    contract={"start_time": "integer", "end_time": "integer", "aggregated_value": "number"},
    parents=(
        Parent(METERS, {"meter": "id"}),
        Parent(_stream("subscriptions", status="all"), {"customer": "customer"}, keep=_live_in_window),
    ),
    refresh_every_s=USAGE_REFRESH_S,
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
        USAGE,
    ),
    auth,
)
