"""NetSuite: SuiteQL over the `customer` and `transaction` views, offset-paged and ordered by id.

Auth is the OAuth 2.0 style bearer token; OAuth 1.0 TBA signing is not implemented yet.
"""

from __future__ import annotations

from revsync.connectors.base import Connector, Stream, SuiteQLOffset

PAGER = SuiteQLOffset(limit=1000)
SUITEQL = "/services/rest/query/v1/suiteql"
TRANSACTION_TYPES = {
    "salesOrder": "SalesOrd",
    "invoice": "CustInvc",
    "customerPayment": "CustPymt",
    "creditMemo": "CustCred",
}


def _stream(name: str, view: str, where: str | None = None, pager: SuiteQLOffset = PAGER) -> Stream:
    query = {"from": view, **({"where": where} if where else {})}
    return Stream(name, SUITEQL, "id", pager, "items", cursor_field="lastmodifieddate", params=query)


def streams(pager: SuiteQLOffset = PAGER) -> tuple[Stream, ...]:
    """The NetSuite streams; `pager` lets a caller lower SuiteQL's result cap (tests exercise restarts)."""
    txn = tuple(
        _stream(name, "transaction", f"type = '{code}'", pager) for name, code in TRANSACTION_TYPES.items()
    )
    return (_stream("customer", "customer", pager=pager), *txn)


def auth(credentials: dict[str, str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {credentials['bearer']}"}


CONNECTOR = Connector("netsuite", streams(), auth)
