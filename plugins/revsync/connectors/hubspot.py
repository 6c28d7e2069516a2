"""HubSpot CRM v3: object lists paged by `paging.next.after`, with the properties revsync reads."""

from __future__ import annotations

from revsync.connectors.base import Connector, HubSpotAfter, Stream

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
ASSOCIATIONS = {"contacts": "companies", "deals": "companies"}


def _stream(name: str) -> Stream:
    params = {"properties": ",".join(PROPERTIES[name]), "archived": "false"}
    if name in ASSOCIATIONS:
        params["associations"] = ASSOCIATIONS[name]
    return Stream(
        name, f"/crm/v3/objects/{name}", "id", PAGER, "results", cursor_field="updatedAt", params=params
    )


def auth(credentials: dict[str, str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {credentials['token']}"}


CONNECTOR = Connector("hubspot", tuple(_stream(n) for n in PROPERTIES), auth)
