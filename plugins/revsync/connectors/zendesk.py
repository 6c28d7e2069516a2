"""Zendesk Support: `/api/v2` lists with cursor paging (`page[size]`, follow `links.next`)."""

from __future__ import annotations

import base64

from revsync.connectors.base import Connector, Stream, ZendeskCursor

PAGER = ZendeskCursor(size=100)


def _stream(name: str) -> Stream:
    return Stream(name, f"/api/v2/{name}", "id", PAGER, name, cursor_field="updated_at")


def auth(credentials: dict[str, str]) -> dict[str, str]:
    """Basic `{email}/token:{token}` (Zendesk's API-token form)."""
    pair = f"{credentials['email']}/token:{credentials['token']}".encode()
    return {"Authorization": f"Basic {base64.b64encode(pair).decode()}"}


CONNECTOR = Connector("zendesk", tuple(_stream(n) for n in ("organizations", "users", "tickets")), auth)
