"""Chargebee Billing v2: `/api/v2` lists paged by `limit` + the opaque `offset` from `next_offset`.

Items arrive wrapped (`{"customer": {...}}`): each stream's record selector unwraps them, and its
cursor is the raw item's `<resource>.updated_at` (unix seconds). Lists are asked for in
`updated_at` order with deleted records included; incremental runs add `updated_at[after]`.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, replace

from revsync.connectors.base import Connector, Paginator, Request, Stream
from revsync.connectors.incremental import ParamSince


@dataclass(frozen=True)
class ChargebeeOffset(Paginator):
    """`limit`, then `offset=<next_offset>` until a page comes without `next_offset`."""

    limit: int = 100

    def first(self, url: str, stream: Stream) -> Request:
        return Request("GET", url, {**stream.params, "limit": self.limit})

    def next(self, request, body, records, headers):
        offset = body.get("next_offset") if isinstance(body, dict) else None
        if not offset or not records:
            return None
        return replace(request, params={**request.params, "offset": offset}, cursor=str(offset))


PAGER = ChargebeeOffset(limit=100)
PARAMS = {"sort_by[asc]": "updated_at", "include_deleted": "true"}


def _stream(name: str, resource: str) -> Stream:
    return Stream(
        name,
        f"/api/v2/{name}",
        "id",
        PAGER,
        "list",
        cursor_field=f"{resource}.updated_at",
        params=dict(PARAMS),
        record_selector=resource,
        incremental=ParamSince("updated_at[after]", exclusive=True),
        contract={"updated_at": "integer"},
    )


def auth(credentials: dict[str, str]) -> dict[str, str]:
    """Basic `base64("{api_key}:")`: the key is the user name, the password empty."""
    pair = f"{credentials['api_key']}:".encode()
    return {"Authorization": f"Basic {base64.b64encode(pair).decode()}"}


CONNECTOR = Connector(
    "chargebee",
    (
        _stream("customers", "customer"),
        _stream("subscriptions", "subscription"),
        _stream("invoices", "invoice"),
    ),
    auth,
)
