"""Freshdesk v2: `/api/v2` lists paged by `page`/`per_page`, following the `Link: <…>; rel="next"` header.

Bodies are bare JSON arrays. The ticket list holds only the last 30 days' tickets unless asked for
`updated_since`, so the tickets stream asks for everything since the epoch, oldest created first (a
ticket updated mid-load then keeps its page). Cursors are `updated_at` (ISO 8601); incremental runs
narrow tickets by `updated_since` and contacts by `_updated_since`; companies have no such filter.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass

import httpx

from revsync.connectors.base import Connector, Paginator, Request, Stream, iso_datetime
from revsync.connectors.incremental import Incremental, ParamSince

_LINK = re.compile(r"<([^>]*)>((?:\s*;\s*[^;,]*)*)")
_REL = re.compile(r"""rel\s*=\s*"?([^";]*)"?""")


def next_link(header: str | None) -> str | None:
    """The URL of the `rel="next"` link in a `Link` header, or None."""
    for url, attributes in _LINK.findall(header or ""):
        if any("next" in rel.split() for rel in _REL.findall(attributes)):
            return url
    return None


@dataclass(frozen=True)
class LinkHeader(Paginator):
    """`per_page`, then the `rel="next"` URL of the `Link` header until a response has none."""

    per_page: int = 100

    def first(self, url: str, stream: Stream) -> Request:
        return Request("GET", url, {**stream.params, "per_page": self.per_page})

    def next(self, request, body, records, headers):
        link = next_link(headers.get("link"))
        if link is None or not records:
            return None
        url = httpx.URL(request.url).join(link)  # absolute as Freshdesk sends it; relative tolerated
        return Request("GET", str(url), None, cursor=url.params.get("page"))


PAGER = LinkHeader(per_page=100)
EVERY_TICKET = {"updated_since": "1970-01-01T00:00:00Z", "order_by": "created_at", "order_type": "asc"}


def _stream(name: str, incremental: Incremental | None = None, **params: str) -> Stream:
    return Stream(
        name,
        f"/api/v2/{name}",
        "id",
        PAGER,
        None,
        cursor_field="updated_at",
        params=params,
        cursor_parser=iso_datetime,
        incremental=incremental,
        contract={"id": "integer", "updated_at": "timestamp"},
    )


def auth(credentials: dict[str, str]) -> dict[str, str]:
    """Basic with the API key as user name and "X" as password."""
    pair = f"{credentials['api_key']}:X".encode()
    return {"Authorization": f"Basic {base64.b64encode(pair).decode()}"}


CONNECTOR = Connector(
    "freshdesk",
    (
        _stream("companies"),  # no changed-since filter on the list: every run reads it whole
        _stream("contacts", ParamSince("_updated_since", iso=True)),
        _stream("tickets", ParamSince("updated_since", iso=True), **EVERY_TICKET),
    ),
    auth,
)
