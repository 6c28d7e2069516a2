"""NetSuite: SuiteQL over the `customer` and `transaction` views, offset-paged and ordered by id.

Auth is OAuth 1.0 TBA (HMAC-SHA256, revsync.connectors.oauth1) when the TBA credentials are given,
else the OAuth 2.0 style bearer token.
"""

from __future__ import annotations

from datetime import timedelta, timezone

import httpx

from revsync.connectors.base import Connector, Stream, SuiteQLOffset, local_datetime
from revsync.connectors.incremental import SuiteQLModified
from revsync.connectors.oauth1 import TokenAuth

PAGER = SuiteQLOffset(limit=1000)
# SuiteQL returns datetimes as wall-clock time in the account's zone (the sandbox's: fixed -08:00).
ACCOUNT_ZONE = timezone(timedelta(hours=-8))
AMOUNTS = ("foreigntotal", "foreignamountremaining")
SUITEQL = "/services/rest/query/v1/suiteql"
TRANSACTION_TYPES = {
    "salesOrder": "SalesOrd",
    "invoice": "CustInvc",
    "customerPayment": "CustPymt",
    "creditMemo": "CustCred",
}


def _stream(name: str, view: str, where: str | None = None, pager: SuiteQLOffset = PAGER) -> Stream:
    query = {"from": view, **({"where": where} if where else {})}
    contract = {"id": "integer", "lastmodifieddate": "timestamp"}
    if view == "transaction":
        contract |= dict.fromkeys(AMOUNTS, "number")
    return Stream(
        name,
        SUITEQL,
        "id",
        pager,
        "items",
        cursor_field="lastmodifieddate",
        params=query,
        incremental=SuiteQLModified(ACCOUNT_ZONE),
        cursor_parser=local_datetime(ACCOUNT_ZONE),
        contract=contract,
    )


def streams(pager: SuiteQLOffset = PAGER) -> tuple[Stream, ...]:
    """The NetSuite streams; `pager` lets a caller lower SuiteQL's result cap (tests exercise restarts)."""
    txn = tuple(
        _stream(name, "transaction", f"type = '{code}'", pager) for name, code in TRANSACTION_TYPES.items()
    )
    return (_stream("customer", "customer", pager=pager), *txn)


def auth(credentials: dict[str, str]) -> dict[str, str] | httpx.Auth:
    """OAuth 1.0 TBA (HMAC-SHA256) when the TBA credentials are all there, else the OAuth 2.0 bearer."""
    tba = ("account", "consumer_key", "consumer_secret", "token_id", "token_secret")
    if all(credentials.get(key) for key in tba):
        account, consumer_key, consumer_secret, token_id, token_secret = (credentials[k] for k in tba)
        return TokenAuth(account.upper(), consumer_key, consumer_secret, token_id, token_secret)
    if credentials.get("bearer"):
        return {"Authorization": f"Bearer {credentials['bearer']}"}
    raise ValueError(f"netsuite credentials need {', '.join(tba)} (TBA) or bearer")


CONNECTOR = Connector("netsuite", streams(), auth)
