"""Source name -> connector; the DAG factory and the CLI read these tables.

`CONNECTORS` holds the four core sources, which always run. `OPTIONAL` holds sources that run only
where their connection exists (Chargebee, Freshdesk): `available(connection_exists)` picks them.
`get` knows every source.
"""

from __future__ import annotations

from collections.abc import Callable

from revsync.connectors import chargebee, freshdesk, hubspot, netsuite, stripe, zendesk
from revsync.connectors.base import Connector

CONNECTORS: dict[str, Connector] = {
    c.name: c for c in (m.CONNECTOR for m in (stripe, hubspot, zendesk, netsuite))
}
OPTIONAL: dict[str, Connector] = {c.name: c for c in (m.CONNECTOR for m in (chargebee, freshdesk))}
OPTIONAL_SOURCES = tuple(OPTIONAL)
ALL_CONNECTORS: dict[str, Connector] = {**CONNECTORS, **OPTIONAL}


def get(source: str) -> Connector:
    try:
        return ALL_CONNECTORS[source]
    except KeyError:
        known = ", ".join(sorted(ALL_CONNECTORS))
        raise KeyError(f"unknown source {source!r}; known: {known}") from None


def available(connection_exists: Callable[[str], bool]) -> dict[str, Connector]:
    """The core sources, plus each optional source for which `connection_exists(source)` is true."""
    return {**CONNECTORS, **{name: c for name, c in OPTIONAL.items() if connection_exists(name)}}
