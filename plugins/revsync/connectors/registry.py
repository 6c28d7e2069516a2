"""Source name -> connector; the DAG factory and the CLI read this one table."""

from __future__ import annotations

from revsync.connectors import hubspot, netsuite, stripe, zendesk
from revsync.connectors.base import Connector

CONNECTORS: dict[str, Connector] = {
    c.name: c for c in (m.CONNECTOR for m in (stripe, hubspot, zendesk, netsuite))
}


def get(source: str) -> Connector:
    try:
        return CONNECTORS[source]
    except KeyError:
        raise KeyError(f"unknown source {source!r}; known: {', '.join(sorted(CONNECTORS))}") from None
