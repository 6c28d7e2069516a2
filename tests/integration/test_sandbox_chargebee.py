"""The Chargebee sandbox serves the world's Stripe billing data in Chargebee's v2 wire protocol.

Plain httpx against the session's sandbox over loopback, with Chargebee's Basic auth (the API key as
user name, an empty password). Lists page by `limit` and the opaque `next_offset` to exactly the
world's rows; statuses, amounts and timestamps are Chargebee's; filters, auth failures and bad
parameters answer as Chargebee does.
"""

from __future__ import annotations

import base64

import duckdb
import httpx
import pytest

from sandbox.server.runner import client_headers

pytestmark = pytest.mark.integration

RESOURCES = {  # path -> (item wrapper key, world table)
    "customers": ("customer", "stripe_customers"),
    "subscriptions": ("subscription", "stripe_subscriptions"),
    "invoices": ("invoice", "stripe_invoices"),
}
SUBSCRIPTION_STATUS = {
    "trialing": "in_trial",
    "active": "active",
    "past_due": "active",
    "unpaid": "active",
    "canceled": "cancelled",
    "incomplete_expired": "cancelled",
    "incomplete": "future",
    "paused": "paused",
}
INVOICE_STATUS = {
    "paid": "paid",
    "open": "payment_due",
    "void": "voided",
    "uncollectible": "not_paid",
    "draft": "pending",
}


@pytest.fixture(scope="module")
def cb(sandbox):
    with httpx.Client(
        base_url=sandbox.base_url("chargebee"),
        headers=client_headers("chargebee", sandbox.creds("chargebee")),
        timeout=60,
    ) as client:
        yield client


@pytest.fixture(scope="module")
def pristine(small_world):
    """The generated world file (the served copy belongs to the server process)."""
    con = duckdb.connect(str(small_world / "world.duckdb"), read_only=True)
    yield con
    con.close()


def _all(client: httpx.Client, path: str, **params) -> list[dict]:
    """Every record of `path`, unwrapped, paging by `next_offset` until a page has none."""
    wrapper = RESOURCES[path][0]
    records: list[dict] = []
    offset = None
    while True:
        response = client.get(
            f"/api/v2/{path}", params={"limit": 100, **params, **({"offset": offset} if offset else {})}
        )
        assert response.status_code == 200, response.text[:300]
        body = response.json()
        assert set(body) <= {"list", "next_offset"}
        for item in body["list"]:
            assert list(item) == [wrapper], item
            records.append(item[wrapper])
        offset = body.get("next_offset")
        if offset is None:
            return records
        assert isinstance(offset, str) and len(body["list"]) == 100


@pytest.mark.parametrize("path", sorted(RESOURCES))
@pytest.mark.parametrize("sort", [{}, {"sort_by[asc]": "updated_at"}, {"sort_by[desc]": "updated_at"}])
def test_lists_page_to_exactly_the_worlds_rows(sandbox, cb, pristine, path, sort):
    table = RESOURCES[path][1]
    expected = sandbox.admin("counts", table=table)[table]
    records = _all(cb, path, **sort)
    ids = [r["id"] for r in records]
    assert len(ids) == expected > 100  # more than one page
    assert len(set(ids)) == len(ids)
    # other tests may add to the served world, never remove from it
    assert {r[0] for r in pristine.execute(f"select id from {table}").fetchall()} <= set(ids)
    assert all(r["object"] == RESOURCES[path][0] and r["deleted"] is False for r in records)
    if sort:
        stamps = [r["updated_at"] for r in records]
        assert stamps == sorted(stamps, reverse="sort_by[desc]" in sort)
    else:  # newest created first
        created = [r["created_at"] if path != "invoices" else r["date"] for r in records]
        assert created == sorted(created, reverse=True)


def test_records_speak_chargebees_vocabulary(cb, pristine):
    subscriptions = {r["id"]: r for r in _all(cb, "subscriptions")}
    rows = pristine.execute(
        "select id, status, cancel_at_period_end, customer, quantity, current_period_end_at"
        " from stripe_subscriptions"
    ).fetchall()
    for sub_id, status, non_renewing, customer, quantity, term_end in rows:
        served = subscriptions[sub_id]
        mapped = SUBSCRIPTION_STATUS[status]
        if mapped == "active" and non_renewing:
            mapped = "non_renewing"
        assert served["status"] == mapped, (sub_id, status, non_renewing)
        assert served["customer_id"] == customer and served["current_term_end"] == term_end
        assert served["subscription_items"][0]["quantity"] == quantity
    assert {"active", "cancelled", "in_trial", "non_renewing"} <= {
        s["status"] for s in subscriptions.values()
    }

    invoices = {r["id"]: r for r in _all(cb, "invoices")}
    sql = "select id, status, total_minor, amount_paid_minor, amount_remaining_minor, currency"
    for inv_id, status, total, paid, due, currency in pristine.execute(
        f"{sql} from stripe_invoices"
    ).fetchall():
        served = invoices[inv_id]
        assert served["status"] == INVOICE_STATUS[status]
        assert (served["total"], served["amount_paid"], served["amount_due"]) == (total, paid, due)
        assert served["currency_code"] == currency.upper()
    for record in invoices.values():
        assert all(isinstance(record[k], int) for k in ("total", "amount_paid", "date", "updated_at"))


@pytest.mark.parametrize("path", sorted(RESOURCES))
def test_updated_at_after_returns_exactly_the_rows_beyond_the_bound(cb, pristine, path):
    table = RESOURCES[path][1]
    everything = _all(cb, path)
    (bound,) = pristine.execute(f"select quantile_disc(updated_at, 0.5) from {table}").fetchone()
    changed = _all(cb, path, **{"updated_at[after]": bound, "sort_by[asc]": "updated_at"})
    ids = {r["id"] for r in changed}
    assert ids == {r["id"] for r in everything if r["updated_at"] > bound}
    world = {
        r[0] for r in pristine.execute(f"select id from {table} where updated_at > ?", [bound]).fetchall()
    }
    assert world <= ids and 0 < len(world) < len(everything)
    assert all(r["updated_at"] > bound for r in changed)
    assert [r["updated_at"] for r in changed] == sorted(r["updated_at"] for r in changed)
    before = _all(cb, path, **{"updated_at[before]": bound + 1})
    assert len(before) + len(changed) == len(everything)


def test_string_filters_select_by_status_and_customer(cb, pristine):
    customer, count = pristine.execute(
        "select customer, count(*) from stripe_invoices group by 1 order by 2 desc, 1 limit 1"
    ).fetchone()
    invoices = _all(cb, "invoices", **{"customer_id[is]": customer})
    assert len(invoices) == count and {r["customer_id"] for r in invoices} == {customer}
    trials = _all(cb, "subscriptions", **{"status[in]": '["in_trial","non_renewing"]'})
    assert trials and {r["status"] for r in trials} <= {"in_trial", "non_renewing"}
    everything = _all(cb, "subscriptions")
    assert len(trials) == sum(r["status"] in ("in_trial", "non_renewing") for r in everything)


def test_retrieve_and_unknown_ids(cb, pristine):
    (customer_id,) = pristine.execute("select id from stripe_customers where seq = 1").fetchone()
    response = cb.get(f"/api/v2/customers/{customer_id}")
    assert response.status_code == 200 and response.json()["customer"]["id"] == customer_id
    missing = cb.get("/api/v2/customers/cus_nope")
    assert missing.status_code == 404
    assert missing.json()["api_error_code"] == "resource_not_found"
    unknown = cb.get("/api/v2/widgets")
    assert unknown.status_code == 404 and unknown.json()["type"] == "invalid_request"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Basic " + base64.b64encode(b"test_wrong:").decode()},
        {"Authorization": "Bearer something"},
        {"Authorization": "Basic !!!"},
    ],
    ids=["missing", "wrong-key", "bearer", "not-base64"],
)
def test_auth_failures_answer_in_chargebees_shape(sandbox, headers):
    response = httpx.get(f"{sandbox.base_url('chargebee')}/api/v2/customers", headers=headers, timeout=10)
    assert response.status_code == 401
    body = response.json()
    assert body["api_error_code"] == "api_authentication_failed" and body["http_status_code"] == 401
    assert body["message"].startswith("Sorry, authentication failed")


def test_the_key_with_a_password_is_refused(sandbox):
    key = sandbox.creds("chargebee")["api_key"]
    response = httpx.get(f"{sandbox.base_url('chargebee')}/api/v2/customers", auth=(key, "x"), timeout=10)
    assert response.status_code == 401
    assert httpx.get(
        f"{sandbox.base_url('chargebee')}/api/v2/customers", auth=(key, ""), timeout=10
    ).is_success


@pytest.mark.parametrize(
    "params, param, code",
    [
        ({"limit": "0"}, "limit", "param_wrong_value"),
        ({"limit": "101"}, "limit", "param_wrong_value"),
        ({"limit": "ten"}, "limit", "param_wrong_value"),
        ({"offset": "not-an-offset"}, "offset", "param_wrong_value"),
        ({"updated_at[after]": "yesterday"}, "updated_at[after]", "param_wrong_value"),
        ({"updated_at[on]": "1700000000"}, "updated_at[on]", "param_wrong_value"),
        ({"updated_at[between]": "[1]"}, "updated_at[between]", "param_wrong_value"),
        ({"status[is]": "past_due"}, "status[is]", "param_wrong_value"),
        ({"sort_by[asc]": "name"}, "sort_by[asc]", "param_wrong_value"),
        ({"sort_by[asc]": "updated_at", "sort_by[desc]": "updated_at"}, "sort_by", "param_wrong_value"),
        ({"include_deleted": "maybe"}, "include_deleted", "param_wrong_value"),
        ({"colour[is]": "red"}, "colour[is]", "invalid_request"),
        ({"starting_after": "sub_x"}, "starting_after", "invalid_request"),
    ],
)
def test_bad_parameters_answer_in_chargebees_shape(cb, params, param, code):
    response = cb.get("/api/v2/subscriptions", params=params)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["type"] == "invalid_request" and body["api_error_code"] == code
    assert body["param"] == param and body["message"].startswith(f"{param} : ")
    assert body["http_status_code"] == 400


def test_health_is_served_on_the_chargebee_port(sandbox):
    health = httpx.get(f"{sandbox.base_url('chargebee')}/__sandbox__/health", timeout=10).json()
    assert health["vendor"] == "chargebee" and health["maintenance_until"] is None
    creds = sandbox.creds("chargebee")
    assert creds["api_key"].startswith("test_") and creds["site"]
    assert sandbox.endpoints["vendors"]["chargebee"]["credential"] == (
        f"site={creds['site']} api_key={creds['api_key']}"
    )
