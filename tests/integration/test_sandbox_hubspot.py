"""The HubSpot sandbox speaks CRM v3 well enough for `hubspot-api-client`, over real HTTP.

Each test drives the session's sandbox server (see conftest.py) with the real SDK
(`hubspot.Client.create(access_token=..., host=base_url)`), or with plain httpx where the point is the
raw wire shape (headers, error bodies, malformed input).
"""

from __future__ import annotations

import time
from datetime import datetime

import httpx
import orjson
import pytest
from hubspot import Client
from hubspot.crm.companies import (
    ApiException,
    BatchInputSimplePublicObjectBatchInputUpsert,
    PublicObjectSearchRequest,
    SimplePublicObjectInput,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def hs(sandbox):
    """(base_url, token, SDK client, httpx client authenticated with Bearer)."""
    base = sandbox.base_url("hubspot")
    token = sandbox.creds("hubspot")["token"]
    client = Client.create(access_token=token, host=base)
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30) as http:
        yield base, token, client, http


def _count(http: httpx.Client, table: str) -> int:
    response = http.get("/__sandbox__/counts", params={"table": table})
    assert response.status_code == 200, response.text
    return response.json()[table]


def _assert_hubspot_error(response: httpx.Response, status: int, category: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert "detail" not in body
    assert body["status"] == "error" and body["category"] == category and body["message"]
    assert len(body["correlationId"]) == 36
    assert isinstance(body["errors"], list)
    return body


def _ms(value: str) -> int:
    return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1000)


def test_get_all_pages_every_company_to_the_last_page(hs):
    _, _, client, http = hs
    companies = client.crm.companies.get_all(
        properties=["name", "domain", "arr", "arr_currency", "stripe_customer_id"]
    )
    archived = client.crm.companies.get_all(archived=True)
    assert len(companies) + len(archived) == _count(http, "hubspot_companies") > 100
    ids = [c.id for c in companies]
    assert len(set(ids)) == len(ids) and ids == sorted(ids, key=int)
    sample = next(c for c in companies if c.properties.get("stripe_customer_id"))
    assert sample.properties["stripe_customer_id"].startswith("cus_")
    assert all(isinstance(v, str) for v in sample.properties.values() if v is not None)
    assert float(sample.properties["arr"]) >= 0 and sample.properties["arr_currency"]
    assert sample.created_at.tzinfo is not None and sample.updated_at >= sample.created_at
    # the raw last page has no paging.next
    last = http.get("/crm/v3/objects/companies", params={"limit": 100, "after": ids[-2]}).json()
    assert [r["id"] for r in last["results"]] == ids[-1:] and "paging" not in last


def test_get_page_follows_after_and_shows_default_properties(hs):
    base, _, client, http = hs
    first = client.crm.companies.basic_api.get_page(limit=10)
    assert len(first.results) == 10 and first.paging.next.after
    assert first.paging.next.link.startswith(f"{base}/crm/v3/objects/companies?")
    second = client.crm.companies.basic_api.get_page(limit=10, after=first.paging.next.after)
    assert int(second.results[0].id) > int(first.results[-1].id)
    assert not {r.id for r in first.results} & {r.id for r in second.results}
    props = first.results[0].properties
    assert set(props) == {"createdate", "domain", "hs_lastmodifieddate", "hs_object_id", "name"}
    assert props["hs_object_id"] == first.results[0].id
    assert props["createdate"].endswith("Z") and _ms(props["createdate"]) % 1000 == 0
    raw = http.get("/crm/v3/objects/companies", params={"limit": 1}).json()["results"][0]
    assert raw["createdAt"].endswith(".000Z") and raw["archived"] is False
    # the link HubSpot hands out is a working URL
    assert http.get(first.paging.next.link).json()["results"][0]["id"] == second.results[0].id


def test_contacts_and_deals_with_company_associations(hs):
    _, _, client, http = hs
    contacts = client.crm.contacts.basic_api.get_page(limit=50, associations=["companies"])
    linked = [c for c in contacts.results if c.associations]
    assert linked
    company_id = linked[0].associations["companies"].results[0].id
    assert client.crm.companies.basic_api.get_by_id(company_id).id == company_id
    contact = client.crm.contacts.basic_api.get_by_id(
        linked[0].id, properties=["associatedcompanyid", "email"]
    )
    assert contact.properties["associatedcompanyid"] == company_id
    deals = client.crm.deals.get_all(
        properties=["dealname", "dealstage", "pipeline", "amount", "deal_currency_code", "closedate", "plan"]
    )
    assert len(deals) == _count(http, "hubspot_deals")
    won = [d for d in deals if d.properties["dealstage"] == "closedwon"]
    assert won and all(d.properties["closedate"] for d in won)
    assert all(float(d.properties["amount"]) >= 0 and d.properties["plan"] for d in deals)


def test_search_windows_on_last_modified_ascending(hs):
    _, _, client, http = hs
    total = http.post("/crm/v3/objects/companies/search", json={"limit": 1}).json()["total"]
    everything = client.crm.companies.get_all(properties=["hs_lastmodifieddate"])
    assert total == len(everything)
    stamps = sorted(_ms(c.properties["hs_lastmodifieddate"]) for c in everything)
    since = stamps[len(stamps) // 3]
    request = PublicObjectSearchRequest(
        filter_groups=[
            {"filters": [{"propertyName": "hs_lastmodifieddate", "operator": "GTE", "value": str(since)}]}
        ],
        sorts=[{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}],
        properties=["name", "hs_lastmodifieddate"],
        limit=100,
    )
    seen, pages = [], 0
    while True:
        page = client.crm.companies.search_api.do_search(public_object_search_request=request)
        seen.extend(page.results)
        pages += 1
        if page.paging is None:
            break
        request.after = page.paging.next.after
    expected = [s for s in stamps if s >= since]
    assert page.total == len(seen) == len(expected) and pages > 1
    got = [_ms(r.properties["hs_lastmodifieddate"]) for r in seen]
    assert got == sorted(got) and got == expected
    assert len({r.id for r in seen}) == len(seen)
    # OR of AND-groups, IN, BETWEEN, HAS_PROPERTY and the string properties
    name = seen[0].properties["name"]
    either = http.post(
        "/crm/v3/objects/companies/search",
        json={
            "filterGroups": [
                {"filters": [{"propertyName": "name", "operator": "EQ", "value": name.upper()}]},
                {
                    "filters": [
                        {"propertyName": "hs_object_id", "operator": "IN", "values": [seen[1].id]},
                        {
                            "propertyName": "createdate",
                            "operator": "BETWEEN",
                            "value": "0",
                            "highValue": "2100-01-01T00:00:00Z",
                        },
                    ]
                },
            ],
            "limit": 200,
        },
    ).json()
    assert {r["id"] for r in either["results"]} >= {seen[0].id, seen[1].id}
    has_stripe = http.post(
        "/crm/v3/objects/companies/search",
        json={
            "filterGroups": [
                {"filters": [{"propertyName": "stripe_customer_id", "operator": "HAS_PROPERTY"}]}
            ],
            "properties": ["stripe_customer_id"],
            "limit": 200,
        },
    ).json()
    assert has_stripe["results"] and all(r["properties"]["stripe_customer_id"] for r in has_stripe["results"])
    without = http.post(
        "/crm/v3/objects/companies/search",
        json={
            "filterGroups": [
                {"filters": [{"propertyName": "stripe_customer_id", "operator": "NOT_HAS_PROPERTY"}]}
            ],
            "limit": 1,
        },
    ).json()
    assert has_stripe["total"] + without["total"] == total


def test_search_refuses_to_page_past_ten_thousand(hs):
    _, _, client, _ = hs
    request = PublicObjectSearchRequest(
        sorts=[{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}], limit=100, after="10000"
    )
    with pytest.raises(ApiException) as refused:
        client.crm.companies.search_api.do_search(public_object_search_request=request)
    assert refused.value.status == 400
    body = orjson.loads(refused.value.body)
    assert body["category"] == "VALIDATION_ERROR" and "10000" in body["message"]
    request.after = "9900"  # still inside the cap: answers (with no results past the end here)
    assert client.crm.companies.search_api.do_search(public_object_search_request=request).total > 0


def test_bad_token_is_a_401_in_hubspots_shape(hs):
    base, _, _, _ = hs
    client = Client.create(access_token="pat-na1-not-the-token", host=base)
    with pytest.raises(ApiException) as denied:
        client.crm.companies.basic_api.get_page(limit=1)
    assert denied.value.status == 401
    body = orjson.loads(denied.value.body)
    assert body["category"] == "INVALID_AUTHENTICATION" and body["message"].startswith(
        "Authentication credentials not found"
    )
    assert httpx.get(f"{base}/crm/v3/objects/contacts").status_code == 401


def test_patch_updates_the_record_and_shows_in_the_write_log(hs):
    _, _, client, http = hs
    company = client.crm.companies.basic_api.get_page(limit=1).results[0]
    started = int(time.time())
    updated = client.crm.companies.basic_api.update(
        company.id, SimplePublicObjectInput(properties={"arr": "123456.5", "arr_currency": "eur"})
    )
    assert updated.properties["arr"] == "123456.5" and updated.properties["arr_currency"] == "eur"
    assert _ms(updated.properties["hs_lastmodifieddate"]) >= started * 1000
    again = client.crm.companies.basic_api.get_by_id(company.id, properties=["arr"])
    assert again.properties["arr"] == "123456.5"
    log = http.get("/__sandbox__/writes", params={"vendor": "hubspot"}).json()["writes"]
    write = [w for w in log if w["path"] == f"/crm/v3/objects/companies/{company.id}"][-1]
    assert write["method"] == "PATCH" and write["status"] == 200
    assert write["body"] == {"properties": {"arr": "123456.5", "arr_currency": "eur"}}
    assert write["response"]["properties"]["arr"] == "123456.5"
    # the change is visible to an incremental search on hs_lastmodifieddate
    recent = http.post(
        "/crm/v3/objects/companies/search",
        json={
            "filterGroups": [
                {
                    "filters": [
                        {
                            "propertyName": "hs_lastmodifieddate",
                            "operator": "GTE",
                            "value": str(started * 1000),
                        }
                    ]
                }
            ]
        },
    ).json()
    assert company.id in {r["id"] for r in recent["results"]}
    bad = http.patch(
        f"/crm/v3/objects/companies/{company.id}", json={"properties": {"arr": "lots", "nope": "1"}}
    )
    body = _assert_hubspot_error(bad, 400, "VALIDATION_ERROR")
    assert {e["code"] for e in body["errors"]} == {"INVALID_DECIMAL", "PROPERTY_DOESNT_EXIST"}
    assert [
        w["status"] for w in http.get("/__sandbox__/writes", params={"vendor": "hubspot"}).json()["writes"]
    ][-1] == 400


def test_create_and_batch_upsert_with_partial_failure(hs):
    _, _, client, http = hs
    before = _count(http, "hubspot_companies")
    created = http.post(
        "/crm/v3/objects/companies", json={"properties": {"name": "New Co", "domain": "new.example"}}
    )
    assert created.status_code == 201 and created.json()["properties"]["name"] == "New Co"
    existing = client.crm.companies.basic_api.get_page(limit=1).results[0]
    batch = BatchInputSimplePublicObjectBatchInputUpsert(
        inputs=[
            {
                "id": "cus_upserted000001",
                "idProperty": "stripe_customer_id",
                "properties": {"name": "Upserted"},
            },
            {"id": existing.id, "idProperty": "hs_object_id", "properties": {"lifecyclestage": "customer"}},
            {"id": "x", "idProperty": "name", "properties": {}},  # not a unique property: fails alone
        ]
    )
    result = client.crm.companies.batch_api.upsert(batch)
    assert result.status == "COMPLETE" and result.num_errors == 1
    assert sorted((r.new, r.id == existing.id) for r in result.results) == [(False, True), (True, False)]
    assert _count(http, "hubspot_companies") == before + 2
    found = client.crm.companies.basic_api.get_by_id(
        "cus_upserted000001", id_property="stripe_customer_id", properties=["name"]
    )
    assert found.properties["name"] == "Upserted"
    statuses = [
        w["status"] for w in http.get("/__sandbox__/writes", params={"vendor": "hubspot"}).json()["writes"]
    ]
    assert 207 in statuses and 201 in statuses


def test_rate_limit_headers_on_every_response(hs):
    _, _, _, http = hs
    for response in (
        http.get("/crm/v3/objects/deals", params={"limit": 1}),
        http.get("/crm/v3/objects/deals/1"),
    ):
        for header in ("Daily", "Daily-Remaining", "Max", "Remaining", "Interval-Milliseconds"):
            assert response.headers[f"X-HubSpot-RateLimit-{header}"].isdigit()
    assert int(response.headers["X-HubSpot-RateLimit-Interval-Milliseconds"]) == 10000


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "category"),
    [
        ("GET", "/crm/v3/objects/companies", {"params": {"limit": 0}}, 400, "VALIDATION_ERROR"),
        ("GET", "/crm/v3/objects/companies", {"params": {"limit": 101}}, 400, "VALIDATION_ERROR"),
        ("GET", "/crm/v3/objects/companies", {"params": {"after": "not-a-cursor"}}, 400, "VALIDATION_ERROR"),
        ("GET", "/crm/v3/objects/companies", {"params": {"archived": "maybe"}}, 400, "VALIDATION_ERROR"),
        ("GET", "/crm/v3/objects/companies/999", {}, 404, "OBJECT_NOT_FOUND"),
        ("GET", "/crm/v3/objects/widgets", {}, 404, "OBJECT_NOT_FOUND"),
        ("GET", "/crm/v4/nothing", {}, 404, "OBJECT_NOT_FOUND"),
        ("PATCH", "/crm/v3/objects/deals/999", {"json": {"properties": {}}}, 404, "OBJECT_NOT_FOUND"),
        ("POST", "/crm/v3/objects/contacts/search", {"content": b"{not json"}, 400, "VALIDATION_ERROR"),
        ("POST", "/crm/v3/objects/contacts/search", {"json": {"limit": 201}}, 400, "VALIDATION_ERROR"),
        ("POST", "/crm/v3/objects/contacts/search", {"json": {"limit": "ten"}}, 400, "VALIDATION_ERROR"),
        (
            "POST",
            "/crm/v3/objects/contacts/search",
            {
                "json": {
                    "filterGroups": [
                        {"filters": [{"propertyName": "shoe_size", "operator": "EQ", "value": "9"}]}
                    ]
                }
            },
            400,
            "VALIDATION_ERROR",
        ),
        (
            "POST",
            "/crm/v3/objects/contacts/search",
            {
                "json": {
                    "filterGroups": [
                        {
                            "filters": [
                                {"propertyName": "createdate", "operator": "GTE", "value": "last tuesday"}
                            ]
                        }
                    ]
                }
            },
            400,
            "VALIDATION_ERROR",
        ),
        ("POST", "/crm/v3/objects/deals", {"json": {"properties": {"amount": "5"}}}, 400, "VALIDATION_ERROR"),
        ("POST", "/crm/v3/objects/deals/batch/upsert", {"json": {"inputs": "none"}}, 400, "VALIDATION_ERROR"),
    ],
)
def test_bad_inputs_get_hubspot_errors(hs, method, path, kwargs, status, category):
    _, _, _, http = hs
    _assert_hubspot_error(http.request(method, path, **kwargs), status, category)
