"""HubSpot CRM v3: object lists paged by `paging.next.after`, with the properties revsync reads.

Incremental: CRM search on `hs_lastmodifieddate`, re-windowed before 10,000 results; associations,
which search omits, come from the v4 associations batch read.
"""

from __future__ import annotations

from revsync.connectors.base import Connector, HubSpotAfter, Stream, iso_datetime
from revsync.connectors.incremental import HubSpotSearch

PAGER = HubSpotAfter(limit=100)
COMMON = ("createdate", "hs_lastmodifieddate")
PROPERTIES = {
    "companies": ("name", "domain", "lifecyclestage", "arr", "arr_currency", "stripe_customer_id", *COMMON),
    "contacts": ("email", "firstname", "lastname", "lastmodifieddate", *COMMON),
    "deals": (
        "dealname",
        "dealstage",
        "pipeline",
        "amount",
        "deal_currency_code",
        "closedate",
        "plan",
        *COMMON,
    ),
}
ASSOCIATIONS = {"contacts": ("companies", "contact_to_company"), "deals": ("companies", "deal_to_company")}
AMOUNTS = {"companies": ("properties.arr",), "deals": ("properties.amount",)}


def _stream(name: str) -> Stream:
    params = {"properties": ",".join(PROPERTIES[name]), "archived": "false"}
    association = ASSOCIATIONS.get(name)
    if association:
        params["associations"] = association[0]
    return Stream(
        name,
        f"/crm/v3/objects/{name}",
        "id",
        PAGER,
        "results",
        cursor_field="updatedAt",
        params=params,
        incremental=HubSpotSearch(PROPERTIES[name], association),
        cursor_parser=iso_datetime,
        contract={"updatedAt": "timestamp", **dict.fromkeys(AMOUNTS.get(name, ()), "number")},
    )


def auth(credentials: dict[str, str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {credentials['token']}"}


CONNECTOR = Connector("hubspot", tuple(_stream(n) for n in PROPERTIES), auth)
