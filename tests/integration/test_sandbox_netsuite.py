"""The NetSuite sandbox speaks the REST record service and SuiteQL well enough for the `netsuite` package.

The package has no base-URL option, so `SandboxRestApi` overrides `_make_url` (as PROTOCOLS.md says) and
signs every request with real OAuth 1.0 TBA (HMAC-SHA256) using the world's credentials; the sandbox
verifies those signatures.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
from netsuite import Config, NetSuiteRestApi, TokenAuth
from netsuite.exceptions import NetsuiteAPIRequestError

pytestmark = pytest.mark.integration


class SandboxRestApi(NetSuiteRestApi):
    def __init__(self, base_url: str, config: Config):
        super().__init__(config)
        self._base_url = base_url

    def _make_url(self, subpath: str) -> str:
        return f"{self._base_url}/services/rest{subpath}"


def _api(sandbox, **override: str) -> SandboxRestApi:
    creds = {**sandbox.creds("netsuite"), **override}
    config = Config(
        account=creds["account"],
        auth=TokenAuth(
            consumer_key=creds["consumer_key"],
            consumer_secret=creds["consumer_secret"],
            token_id=creds["token_id"],
            token_secret=creds["token_secret"],
        ),
    )
    return SandboxRestApi(sandbox.base_url("netsuite"), config)


def run(coro):
    return asyncio.run(coro)


async def _suiteql_all(api: SandboxRestApi, q: str, limit: int) -> tuple[list[dict], int]:
    rows: list[dict] = []
    offset = 0
    while True:
        page = await api.suiteql(q, limit=limit, offset=offset)
        rows.extend(page["items"])
        if not page["hasMore"]:
            return rows, page["totalResults"]
        offset += limit


def _error(caught: pytest.ExceptionInfo) -> tuple[int, dict]:
    import json

    status, text = caught.value.args[0], caught.value.args[1]
    return status, json.loads(text)


def test_list_customers_to_the_last_page_matches_the_table(sandbox):
    api = _api(sandbox)

    async def walk() -> tuple[list[str], int, dict]:
        ids: list[str] = []
        offset, total, last = 0, None, {}
        while True:
            page = await api.get("/record/v1/customer", params={"limit": 500, "offset": offset})
            ids.extend(item["id"] for item in page["items"])
            total, last = page["totalResults"], page
            if not page["hasMore"]:
                return ids, total, last
            assert {link["rel"] for link in page["links"]} >= {"self", "next", "last"}
            offset += 500

    ids, total, last = run(walk())
    (count,) = (run(api.suiteql("SELECT COUNT(*) AS n FROM customer"))["items"][0]["n"],)
    assert len(ids) == total == int(count) > 500
    assert len(set(ids)) == len(ids)
    assert "next" not in {link["rel"] for link in last["links"]}
    assert last["items"][0]["links"][0]["href"].startswith(sandbox.base_url("netsuite") + "/services/rest/")


def test_get_customer_by_id_and_by_external_id(sandbox):
    api = _api(sandbox)
    first = run(api.get("/record/v1/customer", params={"q": "externalId EMPTY_NOT", "limit": 1}))["items"][0]
    customer = run(api.get(f"/record/v1/customer/{first['id']}"))
    assert customer["id"] == first["id"]
    assert (
        customer["subsidiary"]["id"] and customer["subsidiary"]["refName"] and customer["subsidiary"]["links"]
    )
    assert customer["lastModifiedDate"].endswith("-08:00") and customer["companyName"]
    by_eid = run(api.get(f"/record/v1/customer/eid:{customer['externalId']}"))
    assert by_eid == customer
    invoice_id = run(api.get("/record/v1/invoice", params={"limit": 1}))["items"][0]["id"]
    invoice = run(api.get(f"/record/v1/invoice/{invoice_id}"))
    assert isinstance(invoice["total"], float) and isinstance(invoice["amountRemaining"], float)
    assert invoice["entity"]["links"][0]["href"].endswith(f"/customer/{invoice['entity']['id']}")
    assert len(invoice["tranDate"]) == 10


def test_q_filters_on_last_modified_date_and_fields(sandbox):
    api = _api(sandbox)
    everything = run(api.get("/record/v1/customer", params={"limit": 1}))["totalResults"]
    recent = run(
        api.get("/record/v1/customer", params={"q": 'lastModifiedDate ON_OR_AFTER "2000-01-01"', "limit": 1})
    )["totalResults"]
    future = run(api.get("/record/v1/customer", params={"q": 'lastModifiedDate AFTER "1/1/2100"'}))
    assert recent == everything and future["totalResults"] == 0 and future["items"] == []
    some = run(api.get("/record/v1/customer", params={"limit": 1}))["items"][0]["id"]
    customer = run(api.get(f"/record/v1/customer/{some}"))
    q = f'externalId IS "{customer["externalId"]}" OR companyName IS "{customer["companyName"]}"'
    found = run(api.get("/record/v1/customer", params={"q": q}))
    assert some in [item["id"] for item in found["items"]]


def test_suiteql_pages_through_a_select(sandbox):
    api = _api(sandbox)
    rows, total = run(
        _suiteql_all(
            api,
            "SELECT id, tranid, foreigntotal, status FROM transaction WHERE type = 'CustInvc' ORDER BY id",
            1000,
        )
    )
    assert len(rows) == total > 1000
    assert len({r["id"] for r in rows}) == total
    assert all(isinstance(r["id"], str) and r["links"] == [] for r in rows)  # SuiteQL serves strings
    ids = [int(r["id"]) for r in rows]
    assert ids == sorted(ids)
    joined = run(
        api.suiteql(
            "SELECT c.companyname, t.tranid FROM transaction t JOIN customer c ON c.id = t.entity"
            " WHERE t.type = 'SalesOrd' ORDER BY t.id",
            limit=5,
        )
    )
    assert joined["count"] == 5 and set(joined["items"][0]) == {"links", "companyname", "tranid"}


def test_upsert_by_external_id_then_get_and_write_log(sandbox):
    api = _api(sandbox)
    eid = f"sandbox-test-{time.time_ns()}"
    body = {"companyName": "Upserted Co", "subsidiary": {"id": "1"}, "email": "ap@upserted.test"}
    assert run(api.put(f"/record/v1/customer/eid:{eid}", json=body)) is None  # 204
    created = run(api.get(f"/record/v1/customer/eid:{eid}"))
    assert created["companyName"] == "Upserted Co" and created["externalId"] == eid
    assert run(api.put(f"/record/v1/customer/eid:{eid}", json={"companyName": "Upserted Co 2"})) is None
    again = run(api.get(f"/record/v1/customer/{created['id']}"))
    assert again["companyName"] == "Upserted Co 2" and again["email"] == "ap@upserted.test"
    writes = httpx.get(
        f"{sandbox.base_url('netsuite')}/__sandbox__/writes", params={"vendor": "netsuite"}
    ).json()
    mine = [w for w in writes["writes"] if w["path"] == f"/services/rest/record/v1/customer/eid:{eid}"]
    assert [w["status"] for w in mine] == [204, 204] and mine[0]["body"] == body
    assert mine[0]["response"]["id"] == created["id"]


def test_create_returns_location_and_payment_settles_invoice(sandbox):
    api = _api(sandbox)
    customer = run(api.get("/record/v1/customer", params={"limit": 1}))["items"][0]["id"]

    async def create(record: str, body: dict[str, Any]) -> str:
        response = await api.request("POST", f"/record/v1/{record}", json=body)
        assert response.status_code == 204, response.text
        location = response.headers["Location"]
        assert location.startswith(f"{sandbox.base_url('netsuite')}/services/rest/record/v1/{record}/")
        return location.rsplit("/", 1)[1]

    order = run(
        create("salesOrder", {"entity": {"id": customer}, "currency": {"refName": "USD"}, "total": 300})
    )
    invoice = run(
        create(
            "invoice",
            {
                "entity": {"id": customer},
                "currency": {"id": "1"},
                "total": 300.0,
                "createdFrom": {"id": order},
            },
        )
    )
    run(
        create(
            "customerPayment",
            {
                "customer": {"id": customer},
                "currency": {"id": "1"},
                "payment": 100.0,
                "apply": {"items": [{"doc": {"id": invoice}, "amount": 100.0, "apply": True}]},
            },
        )
    )
    partly = run(api.get(f"/record/v1/invoice/{invoice}"))
    assert partly["amountRemaining"] == 200.0 and partly["status"]["id"] == "open"
    run(
        create(
            "customerPayment",
            {
                "customer": {"id": customer},
                "currency": {"id": "1"},
                "payment": 200.0,
                "invoice": {"id": invoice},
            },
        )
    )
    paid = run(api.get(f"/record/v1/invoice/{invoice}"))
    assert paid["amountRemaining"] == 0.0 and paid["status"]["id"] == "paidInFull"

    assert run(api.patch(f"/record/v1/salesOrder/{order}", json={"status": "closed"})) is None
    assert run(api.get(f"/record/v1/salesOrder/{order}"))["status"]["id"] == "closed"


def test_bad_signature_and_bad_bearer_are_401(sandbox):
    api = _api(sandbox, token_secret="not-the-secret")
    with pytest.raises(NetsuiteAPIRequestError) as caught:
        run(api.get("/record/v1/customer", params={"limit": 1}))
    status, body = _error(caught)
    assert status == 401 and body["title"] == "Unauthorized" and body["status"] == 401
    assert body["o:errorDetails"][0]["o:errorCode"] == "INVALID_LOGIN"
    assert body["type"] == "https://www.rfc-editor.org/rfc/rfc9110.html#section-15.5.2"
    base = sandbox.base_url("netsuite")
    assert (
        httpx.get(
            f"{base}/services/rest/record/v1/customer", headers={"Authorization": "Bearer x"}
        ).status_code
        == 401
    )
    bearer = sandbox.creds("netsuite")["bearer"]
    ok = httpx.get(
        f"{base}/services/rest/record/v1/customer?limit=1", headers={"Authorization": f"Bearer {bearer}"}
    )
    assert ok.status_code == 200 and ok.json()["count"] == 1


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "code"),
    [
        ("GET", "/record/v1/customer", {"params": {"limit": 0}}, 400, "INVALID_PARAMETER"),
        ("GET", "/record/v1/customer", {"params": {"limit": 1001}}, 400, "INVALID_PARAMETER"),
        (
            "GET",
            "/record/v1/customer",
            {"params": {"q": "lastModifiedDate SOONISH 5"}},
            400,
            "INVALID_PARAMETER",
        ),
        (
            "GET",
            "/record/v1/customer",
            {"params": {"q": 'lastModifiedDate AFTER "yesterday"'}},
            400,
            "INVALID_PARAMETER",
        ),
        ("GET", "/record/v1/widget", {}, 404, "NONEXISTENT_ID"),
        ("GET", "/record/v1/customer/424242424", {}, 404, "NONEXISTENT_ID"),
        ("POST", "/record/v1/customer", {"content": b'{"companyName": '}, 400, "INVALID_CONTENT"),
        ("POST", "/query/v1/suiteql", {"json": {"q": "SELECT id FROM customer"}}, 400, "INVALID_HEADER"),
        (
            "POST",
            "/query/v1/suiteql",
            {"json": {"q": "SELECT * FROM netsuite_customers"}, "headers": {"Prefer": "transient"}},
            400,
            "INVALID_PARAMETER",
        ),
        (
            "POST",
            "/query/v1/suiteql",
            {
                "json": {"q": "SELECT 1 FROM customer; DELETE FROM customer"},
                "headers": {"Prefer": "transient"},
            },
            400,
            "INVALID_PARAMETER",
        ),
        (
            "POST",
            "/query/v1/suiteql",
            {"json": {"q": "SELECT * FROM read_csv('/etc/passwd')"}, "headers": {"Prefer": "transient"}},
            400,
            "INVALID_PARAMETER",
        ),
        (
            "POST",
            "/record/v1/customer",
            {"json": {"companyName": "X", "subsidiary": {"id": "1"}, "shoeSize": 9}},
            400,
            "INVALID_FIELD_NAME",
        ),
        ("POST", "/record/v1/customer", {"json": {"companyName": "No Subsidiary"}}, 400, "USER_ERROR"),
        (
            "POST",
            "/record/v1/invoice",
            {"json": {"entity": {"id": "1001"}, "currency": {"id": "1"}}},
            400,
            "USER_ERROR",
        ),
    ],
)
def test_bad_inputs_get_netsuite_error_shape(sandbox, method, path, kwargs, status, code):
    api = _api(sandbox)
    response = run(api.request(method, path, **kwargs))
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"type", "title", "status", "o:errorDetails"} and body["status"] == status
    detail = body["o:errorDetails"][0]
    assert detail["o:errorCode"] == code and detail["detail"]
    if code in ("INVALID_FIELD_NAME",):
        assert "shoeSize" in detail["detail"]
    if path == "/record/v1/invoice":
        assert "total" in detail["detail"]
    if path == "/record/v1/customer" and "companyName" in str(kwargs) and code == "USER_ERROR":
        assert "subsidiary" in detail["detail"]
