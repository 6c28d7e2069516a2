"""The Stripe sandbox speaks Stripe's v1 wire protocol well enough for the `stripe` SDK, over real HTTP.

Each test drives the session's sandbox server (see conftest.py) with the real `stripe` package pointed at
it (`StripeClient(base_addresses=...)` or the module-level `stripe.api_base`), or with plain httpx where
the point is the raw wire shape (headers, error bodies, malformed input).
"""

from __future__ import annotations

import uuid

import httpx
import pytest
import stripe

pytestmark = pytest.mark.integration


@pytest.fixture
def st(sandbox):
    """(base_url, api_key, StripeClient, httpx client authenticated with Bearer)."""
    base = sandbox.base_url("stripe")
    key = sandbox.creds("stripe")["api_key"]
    client = stripe.StripeClient(key, base_addresses={"api": base}, max_network_retries=0)
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30) as http:
        yield base, key, client, http


def _count(http: httpx.Client, table: str) -> int:
    response = http.get("/__sandbox__/counts", params={"table": table})
    assert response.status_code == 200, response.text
    return response.json()[table]


def _assert_stripe_error(response: httpx.Response, status: int, *, param: str | None = None) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["request-id"].startswith("req_")
    body = response.json()
    assert set(body) == {"error"}, body  # never FastAPI's {"detail": ...}
    error = body["error"]
    assert error["type"] == "invalid_request_error" and error["message"]
    if param is not None:
        assert error["param"] == param
    return error


def test_sdk_auto_pages_every_customer_to_the_last_page(st):
    _, _, client, http = st
    customers = list(client.v1.customers.list({"limit": 100}).auto_paging_iter())
    ids = [c.id for c in customers]
    assert len(ids) == _count(http, "stripe_customers") > 100  # several pages of 100
    assert len(set(ids)) == len(ids)
    created = [c.created for c in customers]
    assert created == sorted(created, reverse=True)  # newest first
    # the raw last page: has_more false, and the envelope the SDK builds its next request from
    last = http.get("/v1/customers", params={"limit": 100, "starting_after": ids[-101]}).json()
    assert last["object"] == "list" and last["url"] == "/v1/customers" and last["has_more"] is False
    assert [c["id"] for c in last["data"]] == ids[-100:]
    first = customers[0]
    assert first.object == "customer" and first.livemode is False and isinstance(first.balance, int)
    assert isinstance(first.metadata.to_dict(), dict) and isinstance(first.delinquent, bool)


def test_module_level_api_base_pages_every_invoice(st, monkeypatch):
    base, key, _, http = st
    monkeypatch.setattr(stripe, "api_key", key)
    monkeypatch.setattr(stripe, "api_base", base)
    monkeypatch.setattr(stripe, "max_network_retries", 0)
    invoices = list(stripe.Invoice.list(limit=100).auto_paging_iter())
    assert len(invoices) == _count(http, "stripe_invoices") > 100
    assert len({i.id for i in invoices}) == len(invoices)
    linked = [i for i in invoices if i.parent is not None]
    assert linked, "generated invoices belong to subscriptions"
    sample = linked[0]
    assert sample.parent.type == "subscription_details"
    assert sample.parent.subscription_details.subscription.startswith("sub_")
    assert set(sample.status_transitions.to_dict()) >= {"finalized_at", "paid_at", "voided_at"}
    assert all(isinstance(i.total, int) and isinstance(i.amount_due, int) for i in invoices)
    paid = [i for i in invoices if i.status == "paid"]
    assert paid and all(i.status_transitions.paid_at for i in paid)
    # a filter goes with the paging: every invoice of one customer, and only those
    customer = sample.customer
    mine = list(stripe.Invoice.list(customer=customer, limit=2).auto_paging_iter())
    assert {i.id for i in mine} == {i.id for i in invoices if i.customer == customer}


def test_retrieve_objects_and_missing_ids(st):
    _, _, client, http = st
    sub = client.v1.subscriptions.list({"limit": 1}).data[0]
    same = client.v1.subscriptions.retrieve(sub.id)
    assert same.id == sub.id and same.customer.startswith("cus_")
    item = same["items"].data[0]
    assert item.object == "subscription_item" and item.price.object == "price"
    assert isinstance(item.price.unit_amount, int) and item.price.product.startswith("prod_")
    assert item.current_period_start < item.current_period_end  # basil: periods live on the item
    customer = client.v1.customers.retrieve(sub.customer)
    assert customer.id == sub.customer
    product = client.v1.products.retrieve(item.price.product)
    assert product.object == "product" and product.metadata["tier"]
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.customers.retrieve("cus_doesnotexist00")
    assert missing.value.http_status == 404 and missing.value.code == "resource_missing"
    assert missing.value.user_message == "No such customer: 'cus_doesnotexist00'"
    error = _assert_stripe_error(http.get("/v1/invoices/in_nope"), 404, param="id")
    assert error["code"] == "resource_missing"


def test_subscriptions_omit_canceled_unless_asked(st):
    _, _, client, http = st
    default = list(client.v1.subscriptions.list({"limit": 100}).auto_paging_iter())
    everything = list(client.v1.subscriptions.list({"limit": 100, "status": "all"}).auto_paging_iter())
    canceled = list(client.v1.subscriptions.list({"limit": 100, "status": "canceled"}).auto_paging_iter())
    assert len(everything) == _count(http, "stripe_subscriptions")
    assert canceled and all(s.status == "canceled" for s in canceled)
    assert all(s.status not in ("canceled", "incomplete_expired") for s in default)
    assert len(default) + len(canceled) == len(everything)
    _assert_stripe_error(http.get("/v1/subscriptions", params={"status": "bogus"}), 400, param="status")


def test_created_bounds_filter_lists(st):
    _, _, client, _ = st
    customers = list(client.v1.customers.list({"limit": 100}).auto_paging_iter())
    pivot = customers[len(customers) // 2].created
    newer = list(client.v1.customers.list({"limit": 100, "created": {"gte": pivot}}).auto_paging_iter())
    older = list(client.v1.customers.list({"limit": 100, "created": {"lt": pivot}}).auto_paging_iter())
    assert {c.id for c in newer} == {c.id for c in customers if c.created >= pivot}
    assert {c.id for c in older} == {c.id for c in customers if c.created < pivot}
    exact = client.v1.customers.list({"limit": 100, "created": pivot}).data
    assert exact and all(c.created == pivot for c in exact)
    window = client.v1.customers.list({"limit": 100, "created": {"gt": pivot - 86400 * 30, "lte": pivot}})
    assert all(pivot - 86400 * 30 < c.created <= pivot for c in window.data)


def test_ending_before_pages_backwards(st):
    _, _, client, http = st
    first = http.get("/v1/charges", params={"limit": 5}).json()["data"]
    second = http.get("/v1/charges", params={"limit": 5, "starting_after": first[-1]["id"]}).json()["data"]
    back = http.get("/v1/charges", params={"limit": 5, "ending_before": second[0]["id"]}).json()
    assert [c["id"] for c in back["data"]] == [c["id"] for c in first]  # still newest first
    assert back["has_more"] is False
    page = client.v1.charges.list({"limit": 5, "starting_after": first[-1]["id"]})
    assert [c.id for c in page.data] == [c["id"] for c in second]


def test_auth_errors_look_like_stripes(st):
    base, key, _, _ = st
    missing = httpx.get(f"{base}/v1/customers")
    error = _assert_stripe_error(missing, 401)
    assert error["message"].startswith("You did not provide an API key.")
    wrong_key = "sk_test_wrongwrongwrong9876"
    client = stripe.StripeClient(wrong_key, base_addresses={"api": base}, max_network_retries=0)
    with pytest.raises(stripe.AuthenticationError) as denied:
        client.v1.customers.list()
    assert denied.value.http_status == 401
    assert denied.value.user_message == "Invalid API Key provided: sk_test_****9876"
    # Basic auth with the key as user name works as Bearer does
    assert httpx.get(f"{base}/v1/customers", auth=(key, "")).status_code == 200


def test_idempotent_create_replays_and_rejects_other_parameters(st):
    _, _, client, http = st
    before = _count(http, "stripe_customers")
    key = f"test-{uuid.uuid4()}"
    params = {"name": "Replay Co", "email": "billing@replay.example", "metadata": {"crm_id": "42"}}
    first = client.v1.customers.create(params, {"idempotency_key": key})
    again = client.v1.customers.create(params, {"idempotency_key": key})
    assert again.id == first.id and again.to_dict() == first.to_dict()
    assert again.last_response.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.last_response.headers
    assert _count(http, "stripe_customers") == before + 1  # one customer, not two
    assert first.metadata["crm_id"] == "42" and first.email == "billing@replay.example"
    with pytest.raises(stripe.IdempotencyError):
        client.v1.customers.create({"name": "Someone Else"}, {"idempotency_key": key})
    assert _count(http, "stripe_customers") == before + 1
    log = http.get("/__sandbox__/writes", params={"vendor": "stripe"}).json()["writes"]
    mine = [w for w in log if w["idempotency_key"] == key]
    assert [(w["status"], w["replayed"]) for w in mine] == [(200, False), (200, True), (400, False)]
    assert mine[0]["body"] == {
        "name": "Replay Co",
        "email": "billing@replay.example",
        "metadata": {"crm_id": "42"},
    }
    assert mine[0]["response"]["id"] == first.id and mine[0]["path"] == "/v1/customers"
    long_key = http.post("/v1/customers", data={"name": "x"}, headers={"Idempotency-Key": "k" * 256})
    _assert_stripe_error(long_key, 400)


def test_update_merges_metadata_logs_the_write_and_emits_an_event(st):
    _, _, client, http = st
    customer = client.v1.customers.create({"name": "Before", "metadata": {"a": "1", "b": "2"}})
    updated = client.v1.customers.update(customer.id, {"name": "After", "metadata": {"b": "", "c": "3"}})
    assert updated.name == "After" and updated.metadata.to_dict() == {"a": "1", "c": "3"}
    assert client.v1.customers.retrieve(customer.id).name == "After"
    log = http.get("/__sandbox__/writes", params={"vendor": "stripe"}).json()["writes"]
    write = [w for w in log if w["path"] == f"/v1/customers/{customer.id}"][-1]
    assert write["method"] == "POST" and write["status"] == 200 and write["body"]["name"] == "After"
    assert write["principal"].endswith(st[1][-4:])
    events = client.v1.events.list({"type": "customer.updated", "limit": 100}).data
    event = next(e for e in events if e.data.object["id"] == customer.id)
    assert event.data.previous_attributes["name"] == "Before"
    assert client.v1.events.list({"types": ["customer.*"], "limit": 100}).data
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.customers.update("cus_doesnotexist00", {"name": "x"})
    assert missing.value.http_status == 404


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "param"),
    [
        ("GET", "/v1/customers", {"params": {"limit": 0}}, 400, "limit"),
        ("GET", "/v1/customers", {"params": {"limit": 101}}, 400, "limit"),
        ("GET", "/v1/customers", {"params": {"limit": "ten"}}, 400, "limit"),
        ("GET", "/v1/customers", {"params": {"starting_after": "cus_bogus"}}, 400, "starting_after"),
        ("GET", "/v1/invoices", {"params": {"ending_before": "not-an-id"}}, 400, "ending_before"),
        (
            "GET",
            "/v1/customers",
            {"params": {"starting_after": "cus_a", "ending_before": "cus_b"}},
            400,
            None,
        ),
        ("GET", "/v1/customers", {"params": {"created[gte]": "yesterday"}}, 400, "created[gte]"),
        ("GET", "/v1/customers", {"params": {"colour": "blue"}}, 400, "colour"),
        ("GET", "/v1/nothing_here", {}, 404, None),
        (
            "POST",
            "/v1/customers",
            {"content": b"name=x&&=&", "headers": {"Content-Type": "application/x-www-form-urlencoded"}},
            400,
            None,
        ),
        ("POST", "/v1/customers", {"json": {"name": "x"}}, 400, None),
        ("POST", "/v1/customers", {"data": {"balance": "lots"}}, 400, "balance"),
        ("POST", "/v1/customers", {"data": {"favourite_colour": "blue"}}, 400, "favourite_colour"),
    ],
)
def test_bad_inputs_get_stripe_errors(st, method, path, kwargs, status, param):
    _, _, _, http = st
    _assert_stripe_error(http.request(method, path, **kwargs), status, param=param)


def test_every_response_carries_a_request_id(st):
    _, _, _, http = st
    seen = set()
    for response in (
        http.get("/v1/products"),
        http.get("/v1/prices", params={"limit": 3}),
        http.get("/v1/customers/cus_nope"),
        http.get("/v1/customers", params={"limit": 0}),
    ):
        seen.add(response.headers["Request-Id"])
    assert len(seen) == 4 and all(r.startswith("req_") for r in seen)


def test_billing_meter_event_summaries(st):
    _, _, client, http = st
    meters = http.get("/v1/billing/meters").json()
    assert meters["object"] == "list" and meters["data"]
    meter = meters["data"][0]
    assert meter["object"] == "billing.meter" and meter["id"].startswith("mtr_")
    assert http.get(f"/v1/billing/meters/{meter['id']}").json()["event_name"] == meter["event_name"]
    customer = client.v1.customers.list({"limit": 100}).data[-1].id
    summaries = http.get(
        f"/v1/billing/meters/{meter['id']}/event_summaries",
        params={"customer": customer, "start_time": 0, "end_time": 4_000_000_000},
    ).json()
    assert summaries["url"] == f"/v1/billing/meters/{meter['id']}/event_summaries"
    (total,) = summaries["data"]
    assert total["object"] == "billing.meter_event_summary" and isinstance(total["aggregated_value"], float)
    daily = http.get(
        f"/v1/billing/meters/{meter['id']}/event_summaries",
        params={
            "customer": customer,
            "start_time": 0,
            "end_time": 4_000_000_000,
            "value_grouping_window": "day",
            "limit": 100,
        },
    ).json()["data"]
    assert sum(d["aggregated_value"] for d in daily) == total["aggregated_value"]
    missing = http.get(f"/v1/billing/meters/{meter['id']}/event_summaries", params={"customer": customer})
    _assert_stripe_error(missing, 400, param="start_time")
    _assert_stripe_error(http.get("/v1/billing/meters/mtr_nope"), 404)
