"""Zendesk Support: `/api/v2` lists with cursor paging (`page[size]`, follow `links.next`).

Incremental: the incremental exports (cursor-based for tickets and users, time-based for
organizations) from `start_time`.
"""

from __future__ import annotations

import base64

from revsync.connectors.base import Connector, Stream, ZendeskCursor, iso_datetime
from revsync.connectors.incremental import ZendeskExport

PAGER = ZendeskCursor(size=100)


def _stream(name: str, cursor_based: bool = True) -> Stream:
    return Stream(
        name,
        f"/api/v2/{name}",
        "id",
        PAGER,
        name,
        cursor_field="updated_at",
        incremental=ZendeskExport(name, cursor_based),
        cursor_parser=iso_datetime,
        contract={"id": "integer", "updated_at": "timestamp"},
    )


def auth(credentials: dict[str, str]) -> dict[str, str]:
    """Basic `{email}/token:{token}` (Zendesk's API-token form)."""
    pair = f"{credentials['email']}/token:{credentials['token']}".encode()
    return {"Authorization": f"Basic {base64.b64encode(pair).decode()}"}


CONNECTOR = Connector(
    "zendesk", (_stream("organizations", cursor_based=False), _stream("users"), _stream("tickets")), auth
)
