"""The Freshdesk sandbox serves the world's Zendesk support data in Freshdesk's v2 wire protocol.

Plain httpx against the session's sandbox over loopback, with Freshdesk's Basic auth (the API key as
user name, "X" as password). Lists are bare JSON arrays paged by `page`/`per_page`, the next page's
absolute URL in the `Link` header until the last page; ticket statuses are Freshdesk's integers;
`updated_since` filters exactly; auth failures and bad parameters answer as Freshdesk does.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import duckdb
import httpx
import pytest

from sandbox.server.runner import client_headers

pytestmark = pytest.mark.integration

RESOURCES = {
    "companies": "zendesk_organizations",
    "contacts": "zendesk_users",
    "tickets": "zendesk_tickets",
}
EVERY_TICKET = {"updated_since": "1970-01-01T00:00:00Z", "order_by": "created_at", "order_type": "asc"}
STATUS = {"new": 2, "open": 2, "pending": 3, "hold": 3, "solved": 4, "closed": 5}
PRIORITY = {"low": 1, "normal": 2, "high": 3, "urgent": 4}
RECENT_S = 30 * 86400


@pytest.fixture(scope="module")
def fd(sandbox):
    with httpx.Client(
        base_url=sandbox.base_url("freshdesk"),
        headers=client_headers("freshdesk", sandbox.creds("freshdesk")),
        timeout=60,
    ) as client:
        yield client


@pytest.fixture(scope="module")
def pristine(small_world):
    """The generated world file (the served copy belongs to the server process)."""
    con = duckdb.connect(str(small_world / "world.duckdb"), read_only=True)
    yield con
    con.close()


def _all(client: httpx.Client, path: str, **params) -> tuple[list[dict], int]:
    """Every record of `path`, following `Link: <…>; rel="next"` until it is absent; and the pages."""
    records: list[dict] = []
    url: str | None = f"/api/v2/{path}"
    query: dict | None = {"per_page": 100, **params}
    pages = 0
    while url is not None:
        response = client.get(url, params=query)
        assert response.status_code == 200, response.text[:300]
        body = response.json()
        assert isinstance(body, list)
        records += body
        pages += 1
        url = response.links.get("next", {}).get("url")
        if url is not None:
            assert url.startswith(f"{client.base_url}".rstrip("/") + f"/api/v2/{path}?")
            assert len(body) == query_per_page(url)
        query = None  # the next URL carries every parameter
    return records, pages


def query_per_page(url: str) -> int:
    return int(httpx.URL(url).params["per_page"])


def _epoch(iso: str) -> int:
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp())


def _iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize("path", sorted(RESOURCES))
def test_lists_page_to_exactly_the_worlds_rows(sandbox, fd, pristine, path):
    table = RESOURCES[path]
    expected = sandbox.admin("counts", table=table)[table]
    records, pages = _all(fd, path, **(EVERY_TICKET if path == "tickets" else {}))
    ids = [r["id"] for r in records]
    assert len(ids) == expected > 100 and pages == -(-expected // 100)
    assert len(set(ids)) == len(ids)
    # other tests may add to the served world, never remove from it
    assert {r[0] for r in pristine.execute(f"select id from {table}").fetchall()} <= set(ids)
    created = [_epoch(r["created_at"]) for r in records]
    assert created == sorted(created)  # oldest first
    assert all(r["updated_at"].endswith("Z") and _epoch(r["updated_at"]) > 0 for r in records)


def test_the_last_page_has_no_link_and_per_page_defaults_to_30(fd, sandbox):
    first = fd.get("/api/v2/companies")
    assert first.status_code == 200 and len(first.json()) == 30 and 'rel="next"' in first.headers["link"]
    count = sandbox.admin("counts", table="zendesk_organizations")["zendesk_organizations"]
    last = fd.get("/api/v2/companies", params={"per_page": 100, "page": -(-count // 100)})
    assert last.status_code == 200 and 0 < len(last.json()) <= 100 and "link" not in last.headers
    beyond = fd.get("/api/v2/companies", params={"per_page": 100, "page": -(-count // 100) + 1})
    assert beyond.json() == [] and "link" not in beyond.headers
    assert {"x-ratelimit-total", "x-ratelimit-remaining", "x-ratelimit-used-currentrequest"} <= set(
        last.headers
    )


def test_tickets_speak_freshdesks_vocabulary(fd, pristine):
    tickets = {t["id"]: t for t in _all(fd, "tickets", **EVERY_TICKET)[0]}
    for ticket_id, status, priority, requester, organization in pristine.execute(
        "select id, status, priority, requester_id, organization_id from zendesk_tickets"
    ).fetchall():
        served = tickets[ticket_id]
        assert (served["status"], served["priority"]) == (STATUS[status], PRIORITY[priority])
        assert (served["requester_id"], served["company_id"]) == (requester, organization)
    assert {t["status"] for t in tickets.values()} == {2, 3, 4, 5}
    companies = {c["id"]: c for c in _all(fd, "companies")[0]}
    for org_id, external_id in pristine.execute(
        "select id, external_id from zendesk_organizations"
    ).fetchall():
        assert companies[org_id]["custom_fields"].get("stripe_customer_id") == external_id


def test_tickets_default_to_those_created_in_the_last_30_days(fd):
    every = _all(fd, "tickets", **EVERY_TICKET)[0]
    started = int(time.time())
    recent = _all(fd, "tickets")[0]
    finished = int(time.time())
    created = [_epoch(t["created_at"]) for t in recent]
    assert created == sorted(created, reverse=True)  # newest first by default
    ids = {t["id"] for t in recent}
    for ticket in every:  # tickets right at the 30-day edge may fall either side of it
        at = _epoch(ticket["created_at"])
        if at >= finished - RECENT_S:
            assert ticket["id"] in ids
        elif at < started - RECENT_S:
            assert ticket["id"] not in ids
    assert 0 < len(recent) < len(every)


@pytest.mark.parametrize("path, param", [("tickets", "updated_since"), ("contacts", "_updated_since")])
def test_updated_since_returns_exactly_the_rows_from_the_bound(fd, pristine, path, param):
    table = RESOURCES[path]
    every = _all(fd, path, **(EVERY_TICKET if path == "tickets" else {}))[0]
    (bound,) = pristine.execute(f"select quantile_disc(updated_at, 0.5) from {table}").fetchone()
    params = {
        param: _iso(bound),
        **({"order_by": "updated_at", "order_type": "asc"} if path == "tickets" else {}),
    }
    changed = _all(fd, path, **params)[0]
    ids = {r["id"] for r in changed}
    assert ids == {r["id"] for r in every if _epoch(r["updated_at"]) >= bound}
    world = {
        r[0] for r in pristine.execute(f"select id from {table} where updated_at >= ?", [bound]).fetchall()
    }
    assert world <= ids and 0 < len(world) < len(every)
    if path == "tickets":
        stamps = [_epoch(r["updated_at"]) for r in changed]
        assert stamps == sorted(stamps)


def test_contacts_filter_by_company_and_email(fd, pristine):
    sql = "select organization_id, min(email), count(*) from zendesk_users group by 1"
    org, email, users = pristine.execute(f"{sql} order by 3 desc, 1 limit 1").fetchone()
    contacts = _all(fd, "contacts", company_id=org)[0]
    assert len(contacts) == users and {c["company_id"] for c in contacts} == {org}
    (found,) = _all(fd, "contacts", email=email.upper())[0]
    assert found["email"] == email


def test_show_and_unknown_records(fd, pristine):
    (org_id,) = pristine.execute("select id from zendesk_organizations where seq = 1").fetchone()
    assert fd.get(f"/api/v2/companies/{org_id}").json()["id"] == org_id
    assert fd.get("/api/v2/companies/1").status_code == 404
    unknown = fd.get("/api/v2/widgets")
    assert unknown.status_code == 404 and set(unknown.json()) == {"code", "message"}


@pytest.mark.parametrize(
    "auth",
    [None, ("not-the-key", "X"), ("", "X")],
    ids=["missing", "wrong-key", "empty-key"],
)
def test_auth_failures_answer_in_freshdesks_shape(sandbox, auth):
    response = httpx.get(f"{sandbox.base_url('freshdesk')}/api/v2/tickets", auth=auth, timeout=10)
    assert response.status_code == 401
    assert response.json() == {
        "code": "invalid_credentials",
        "message": "You have to be logged in to perform this action.",
    }


def test_any_password_goes_with_the_key(sandbox):
    key = sandbox.creds("freshdesk")["api_key"]
    for password in ("X", "anything"):
        response = httpx.get(
            f"{sandbox.base_url('freshdesk')}/api/v2/companies", auth=(key, password), timeout=10
        )
        assert response.status_code == 200


@pytest.mark.parametrize(
    "path, params, field, code",
    [
        ("tickets", {"per_page": "101"}, "per_page", "invalid_value"),
        ("tickets", {"per_page": "0"}, "per_page", "datatype_mismatch"),
        ("companies", {"page": "two"}, "page", "datatype_mismatch"),
        ("companies", {"page": "-1"}, "page", "datatype_mismatch"),
        ("tickets", {"updated_since": "last tuesday"}, "updated_since", "invalid_value"),
        ("tickets", {"order_by": "due_by"}, "order_by", "invalid_value"),
        ("tickets", {"order_type": "sideways"}, "order_type", "invalid_value"),
        ("contacts", {"_updated_since": "2024-13-01"}, "_updated_since", "invalid_value"),
        ("contacts", {"company_id": "acme"}, "company_id", "datatype_mismatch"),
        ("companies", {"updated_since": "2024-01-01"}, "updated_since", "invalid_field"),
        ("tickets", {"page[size]": "100"}, "page[size]", "invalid_field"),
    ],
)
def test_bad_parameters_answer_in_freshdesks_shape(fd, path, params, field, code):
    response = fd.get(f"/api/v2/{path}", params=params)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["description"] == "Validation failed"
    (error,) = body["errors"]
    assert (error["field"], error["code"]) == (field, code) and error["message"]


def test_health_is_served_on_the_freshdesk_port(sandbox):
    health = httpx.get(f"{sandbox.base_url('freshdesk')}/__sandbox__/health", timeout=10).json()
    assert health["vendor"] == "freshdesk" and health["maintenance_until"] is None
    creds = sandbox.creds("freshdesk")
    assert len(creds["api_key"]) == 20 and creds["domain"]
    assert sandbox.endpoints["vendors"]["freshdesk"]["credential"] == (
        f"domain={creds['domain']} api_key={creds['api_key']}"
    )
