"""The Zendesk sandbox speaks Zendesk's wire protocol well enough for zenpy, over real HTTP.

Each test drives the session's sandbox server (see conftest.py) with zenpy pointed at it through
ZENPY_FORCE_NETLOC / ZENPY_FORCE_SCHEME, or with plain httpx where the point is the raw wire shape.
"""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import httpx
import pytest
from zenpy import Zenpy
from zenpy.lib.exception import APIException

pytestmark = pytest.mark.integration


@pytest.fixture
def zd(sandbox):
    """(base_url, creds, httpx client authenticated like zenpy)."""
    base = sandbox.base_url("zendesk")
    creds = sandbox.creds("zendesk")
    with httpx.Client(base_url=base, auth=(f"{creds['email']}/token", creds["token"]), timeout=30) as client:
        yield base, creds, client


def _zenpy(monkeypatch, base: str, email: str, token: str) -> Zenpy:
    parts = urlsplit(base)
    monkeypatch.setenv("ZENPY_FORCE_NETLOC", parts.netloc)
    monkeypatch.setenv("ZENPY_FORCE_SCHEME", parts.scheme)
    return Zenpy(subdomain="revsync-demo", email=email, token=token)


def _count(client: httpx.Client, kind: str) -> int:
    """The table's row count, as Zendesk's offset listing reports it."""
    response = client.get(f"/api/v2/{kind}.json", params={"per_page": 1})
    assert response.status_code == 200, response.text
    return response.json()["count"]


def test_zenpy_lists_every_organization_with_cursor_pagination(monkeypatch, zd):
    base, creds, client = zd
    zenpy = _zenpy(monkeypatch, base, creds["email"], creds["token"])
    ids = [org.id for org in zenpy.organizations()]
    assert len(ids) == _count(client, "organizations") > 100  # more than one page of 100
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)
    # the raw page zenpy walked: cursor meta plus absolute links on the sandbox's own host
    page = client.get("/api/v2/organizations.json", params={"page[size]": 100}).json()
    assert page["meta"]["has_more"] is True and page["meta"]["after_cursor"]
    assert page["links"]["next"].startswith(f"{base}/api/v2/organizations.json?")
    assert client.get(page["links"]["next"]).json()["organizations"][0]["id"] == ids[100]


def test_zenpy_incremental_ticket_export_runs_to_end_of_stream(monkeypatch, zd):
    base, creds, client = zd
    zenpy = _zenpy(monkeypatch, base, creds["email"], creds["token"])
    tickets = list(zenpy.tickets.incremental(start_time=0))
    assert len(tickets) == _count(client, "tickets")
    assert len({t.id for t in tickets}) == len(tickets)
    keys = [(t.updated_at, t.id) for t in tickets]
    assert keys == sorted(keys)  # ordered by updated_at, then id
    # the last page says end_of_stream and hands back a cursor to resume from later
    first = client.get("/api/v2/incremental/tickets/cursor.json", params={"start_time": 0, "per_page": 1000})
    body = first.json()
    while not body["end_of_stream"]:
        body = client.get(body["after_url"]).json()
    assert body["after_cursor"] and body["after_url"].startswith(base)


def test_incremental_users_and_organizations_exports(zd):
    _, _, client = zd
    users, url, pages = 0, "/api/v2/incremental/users/cursor.json?start_time=0&per_page=500", 0
    while True:
        body = client.get(url).json()
        users += len(body["users"])
        pages += 1
        if body["end_of_stream"]:
            break
        url = body["after_url"]
    assert users == _count(client, "users") and pages > 1

    seen: set[int] = set()
    url = "/api/v2/incremental/organizations.json?start_time=0&per_page=1000"
    while True:
        body = client.get(url).json()
        assert body["count"] == len(body["organizations"])
        seen.update(o["id"] for o in body["organizations"])
        if body["end_of_stream"]:
            break
        url = body["next_page"]
    assert len(seen) == _count(client, "organizations")

    future = client.get(
        "/api/v2/incremental/tickets/cursor.json", params={"start_time": int(time.time()) + 3600}
    )
    assert future.status_code == 400 and future.json()["error"] == "InvalidValue"


def test_update_support_tier_through_zenpy_is_served_and_logged(monkeypatch, zd, sandbox):
    base, creds, client = zd
    zenpy = _zenpy(monkeypatch, base, creds["email"], creds["token"])
    org_id = client.get("/api/v2/organizations.json", params={"page[size]": 3}).json()["organizations"][2][
        "id"
    ]
    org = zenpy.organizations(id=org_id)
    before = dict(org.organization_fields)
    new_tier = "enterprise" if before.get("support_tier") != "enterprise" else "basic"
    org.organization_fields = {"support_tier": new_tier}
    updated = zenpy.organizations.update(org)
    assert updated.organization_fields["support_tier"] == new_tier

    served = client.get(f"/api/v2/organizations/{org_id}.json").json()["organization"]
    assert served["organization_fields"]["support_tier"] == new_tier
    assert served["organization_fields"]["plan"] == before.get("plan")  # merged, not replaced
    writes = httpx.get(f"{base}/__sandbox__/writes", params={"vendor": "zendesk"}).json()["writes"]
    mine = [w for w in writes if w["path"] == f"/api/v2/organizations/{org_id}.json" and w["method"] == "PUT"]
    assert mine and mine[-1]["status"] == 200
    assert mine[-1]["body"]["organization"]["organization_fields"] == {"support_tier": new_tier}


def test_create_or_update_matches_by_external_id_and_search_finds_it(zd):
    _, _, client = zd
    external_id = f"sandbox-test-{time.time_ns()}"
    created = client.post(
        "/api/v2/organizations/create_or_update.json",
        json={
            "organization": {
                "name": "Test Org",
                "external_id": external_id,
                "organization_fields": {"support_tier": "standard", "plan": "starter"},
            }
        },
    )
    assert created.status_code == 201, created.text
    org_id = created.json()["organization"]["id"]
    updated = client.post(
        "/api/v2/organizations/create_or_update.json",
        json={
            "organization": {"external_id": external_id, "organization_fields": {"support_tier": "premium"}}
        },
    )
    assert updated.status_code == 200 and updated.json()["organization"]["id"] == org_id
    found = client.get("/api/v2/organizations/search.json", params={"external_id": external_id}).json()
    assert [o["id"] for o in found["organizations"]] == [org_id]
    assert found["organizations"][0]["organization_fields"] == {"support_tier": "premium", "plan": "starter"}


def test_bad_token_is_401_for_zenpy(monkeypatch, zd):
    base, creds, _ = zd
    zenpy = _zenpy(monkeypatch, base, creds["email"], "not-the-token")
    with pytest.raises(APIException) as caught:
        zenpy.organizations(id=360000000001)
    assert caught.value.response.status_code == 401
    assert caught.value.response.json() == {"error": "Couldn't authenticate you"}
    bearer = httpx.get(f"{base}/api/v2/users.json", headers={"Authorization": f"Bearer {creds['token']}"})
    assert bearer.status_code == 200 and "X-Rate-Limit-Remaining" in bearer.headers


@pytest.mark.parametrize(
    ("method", "path", "params", "content", "status", "error"),
    [
        ("GET", "/api/v2/organizations.json", {"page[size]": "101"}, None, 400, "InvalidPaginationParameter"),
        (
            "GET",
            "/api/v2/tickets.json",
            {"page[size]": "10", "page[after]": "%%%"},
            None,
            400,
            "InvalidPaginationParameter",
        ),
        (
            "GET",
            "/api/v2/tickets.json",
            {"per_page": "100", "page": "101"},
            None,
            400,
            "InvalidPaginationParameter",
        ),
        ("GET", "/api/v2/widgets.json", {}, None, 404, "InvalidEndpoint"),
        ("GET", "/api/v2/organizations/1.json", {}, None, 404, "RecordNotFound"),
        ("PUT", "/api/v2/organizations/360000000001.json", {}, b'{"organization": {', 400, "InvalidJSON"),
        (
            "PUT",
            "/api/v2/organizations/360000000001.json",
            {},
            b'{"organization": {"organization_fields": {"support_tier": "gold"}}}',
            422,
            "RecordInvalid",
        ),
        (
            "GET",
            "/api/v2/incremental/tickets/cursor.json",
            {"cursor": "bm9wZQ"},
            None,
            400,
            "InvalidPaginationParameter",
        ),
    ],
)
def test_bad_inputs_get_zendesk_error_shapes(zd, method, path, params, content, status, error):
    _, _, client = zd
    response = client.request(
        method,
        path,
        params=params,
        content=content,
        headers={"Content-Type": "application/json"} if content else None,
    )
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == error and "detail" not in body
    assert isinstance(body.get("description"), str)
    if error == "RecordInvalid":
        assert body["details"]["organization_fields"][0]["error"] == "InvalidValue"
