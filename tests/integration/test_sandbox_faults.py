"""Each fault appears as configured, over real HTTP on private sandboxes (`start_sandbox`).

Rate limits (Stripe 25/s, HubSpot 100/10 s, Zendesk 700/min, NetSuite 15 concurrent) answer 429 with
Retry-After in the vendor's error shape; `hostile` injects 5xx, slow responses, truncated pages,
duplicated records across pages and schema drift, seeded so the same requests see the same faults; the
ERP maintenance window answers 503; `/__sandbox__/faults` counts what the client saw; a per-vendor
profile touches only that vendor.

Bursts use `Connection: close`: on a kept-alive connection every small sandbox response currently
waits ~40 ms (Nagle's algorithm is left on; see the note in the fault-test report), which would keep a
sequential client under Stripe's 25/s forever.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
import pytest

from sandbox.server.runner import client_headers

pytestmark = pytest.mark.integration


VENDORS = ("stripe", "hubspot", "zendesk", "netsuite")
SLOW_S = 0.75  # hostile slow responses sleep 0.8 s; nothing else on loopback takes this long


def _headers(sandbox, vendor: str) -> dict[str, str]:
    return {**client_headers(vendor, sandbox.creds(vendor)), "Connection": "close"}


def _client(sandbox, vendor: str) -> httpx.Client:
    return httpx.Client(base_url=sandbox.base_url(vendor), headers=_headers(sandbox, vendor), timeout=30)


@dataclass
class Seen:
    status: int
    elapsed: float
    body: dict | None  # None: not parseable JSON
    headers: httpx.Headers

    @property
    def truncated(self) -> bool:
        return self.status == 200 and self.body is None


def _fetch(client: httpx.Client, path: str, **params) -> Seen:
    started = time.perf_counter()
    response = client.get(path, params=params)
    elapsed = time.perf_counter() - started
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        body = None
    return Seen(response.status_code, elapsed, body, response.headers)


def _until_ok(client: httpx.Client, path: str, tries: int = 30, **params) -> tuple[Seen, int]:
    """Retry like a well-behaved client (honouring Retry-After) until a parseable 200."""
    for attempt in range(1, tries + 1):
        seen = _fetch(client, path, **params)
        if seen.status == 200 and seen.body is not None:
            return seen, attempt
        if seen.status == 429:
            time.sleep(float(seen.headers.get("retry-after", "1")))
    raise AssertionError(f"{path} {params} did not succeed in {tries} tries (last {seen.status})")


def _copy_world(small_world: Path, tmp_path_factory, name: str) -> Path:
    target = tmp_path_factory.mktemp(name)
    for file in ("world.duckdb", "ground_truth.jsonl"):
        shutil.copy(small_world / file, target / file)
    return target


@pytest.fixture(scope="module")
def hostile(small_world, tmp_path_factory, start_sandbox_factory):
    """All vendors hostile. Its scheduled NetSuite window opens 20 s after start: the test using it
    runs last, and no test before it talks to this server's NetSuite."""
    with start_sandbox_factory(
        _copy_world(small_world, tmp_path_factory, "hostile"), faults="hostile"
    ) as running:
        watcher = threading.Thread(target=_watch_maintenance, args=(running, WINDOW), daemon=True)
        watcher.start()
        WINDOW["thread"] = watcher
        yield running
        watcher.join(timeout=60)


WINDOW: dict = {}


def _watch_maintenance(sandbox, out: dict) -> None:
    """Observe the hostile profile's scheduled NetSuite window (20 s after start, 8 s long) in the
    background, so the other tests run meanwhile; the last test checks what it saw."""
    try:
        window = _faults(sandbox)["maintenance"]["netsuite"]
        out["window"] = window
        with _client(sandbox, "netsuite") as client:
            out["before"] = _fetch(client, "/services/rest/record/v1/subsidiary")
            time.sleep(max(window["from"] - time.time(), 0) + 0.3)
            out["during"] = _fetch(client, "/services/rest/record/v1/subsidiary")
            time.sleep(max(window["until"] - time.time(), 0) + 0.3)
            out["after"], _ = _until_ok(client, "/services/rest/record/v1/subsidiary")
    except BaseException as exc:  # reported by the test that reads `out`
        out["error"] = exc


@pytest.fixture(scope="module")
def realistic(small_world, tmp_path_factory, start_sandbox_factory):
    with start_sandbox_factory(
        _copy_world(small_world, tmp_path_factory, "realistic"), "realistic"
    ) as running:
        yield running


@pytest.fixture(scope="module")
def stripe_only(small_world, tmp_path_factory, start_sandbox_factory):
    with start_sandbox_factory(
        _copy_world(small_world, tmp_path_factory, "stripe_only"), "stripe=hostile"
    ) as running:
        yield running


def _faults(sandbox) -> dict:
    return sandbox.admin("faults")


# -- hostile: 5xx, slow, truncation, duplicates, drift; seeded replay --------------------------------
REPLAY_PAGES = 100  # offset pages of 10 tickets
REPLAY_SHOWS = 50


def _replay_sequence(sandbox) -> list[tuple[str, dict]]:
    seq = [("/api/v2/tickets.json", {"page": k, "per_page": 10}) for k in range(1, REPLAY_PAGES + 1)]
    seq += [(f"/api/v2/tickets/{k}.json", {}) for k in range(1, REPLAY_SHOWS + 1)]
    return seq


def _run(sandbox, sequence) -> list[Seen]:
    with _client(sandbox, "zendesk") as client:
        return [_fetch(client, path, **params) for path, params in sequence]


def test_hostile_faults_replay_and_match_the_counters(
    hostile, small_world, tmp_path_factory, start_sandbox_factory
):
    sequence = _replay_sequence(hostile)
    twin_dir = _copy_world(small_world, tmp_path_factory, "hostile_twin")
    with start_sandbox_factory(twin_dir, faults="hostile") as twin:
        results: dict[str, list[Seen]] = {}
        threads = [
            threading.Thread(target=lambda s=s, k=k: results.__setitem__(k, _run(s, sequence)))
            for s, k in ((hostile, "a"), (twin, "b"))
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        twin_faults = _faults(twin)

    a, b = results["a"], results["b"]
    # the replay property: same seed, same requests -> same faults
    assert [s.status for s in a] == [s.status for s in b]
    assert [s.truncated for s in a] == [s.truncated for s in b]
    assert [s.elapsed > SLOW_S for s in a] == [s.elapsed > SLOW_S for s in b]

    statuses = Counter(s.status for s in b)
    errors = {code: n for code, n in statuses.items() if code >= 500}
    slow = sum(s.elapsed > SLOW_S for s in b)
    truncated = sum(s.truncated for s in b)
    assert errors and slow and truncated, (statuses, slow, truncated)
    assert sum(errors.values()) < 0.15 * len(b)  # 5 % configured
    assert statuses[429] == 0  # 150 requests stay well inside Zendesk's 700/min

    # the 5xx bodies are Zendesk's error shape
    for seen in b:
        if seen.status >= 500:
            assert set(seen.body) == {"error", "description"}, seen.body

    # duplicates: an offset page starting one record early (ticket ids are their seq here)
    duplicated = drifted = 0
    for k, seen in enumerate(b[:REPLAY_PAGES], 1):
        if seen.status == 200 and seen.body is not None:
            first = int(seen.body["tickets"][0]["id"])
            assert first in ((k - 1) * 10 + 1, (k - 1) * 10), (k, first)
            duplicated += first == (k - 1) * 10
            drifted += "custom_status_id" in seen.body["tickets"][0]
    for seen in b[REPLAY_PAGES:]:  # single-record responses drift too
        if seen.status == 200 and seen.body is not None:
            drifted += "custom_status_id" in seen.body["ticket"]
    assert duplicated > 0 and drifted > 0

    injected = twin_faults["injected"]["zendesk"]
    assert {f"http_{code}": n for code, n in errors.items()} == {
        k: v for k, v in injected.items() if k.startswith("http_")
    }
    assert injected.get("slow", 0) == slow
    assert injected.get("truncated_page", 0) == truncated
    # a truncated page may also have been duplicated or drifted; the client cannot tell
    assert duplicated <= injected.get("duplicate_record", 0) <= duplicated + truncated
    assert drifted <= injected.get("schema_drift", 0) <= drifted + truncated
    assert set(twin_faults["injected"]) == {"zendesk"}


def test_a_retried_request_eventually_succeeds(hostile):
    with _client(hostile, "zendesk") as client:
        failed = [
            (path, params)
            for (path, params), seen in zip(
                _replay_sequence(hostile), _run(hostile, _replay_sequence(hostile)), strict=True
            )
            if seen.status >= 500 or seen.truncated
        ]
        assert failed
        for path, params in failed[:5]:
            seen, attempts = _until_ok(client, path, tries=20, **params)
            assert seen.status == 200 and seen.body is not None


def test_duplicated_record_across_cursor_pages(hostile):
    with _client(hostile, "zendesk") as client:
        previous_last, params = None, {"page[size]": 25}
        for _ in range(60):
            seen, _ = _until_ok(client, "/api/v2/tickets.json", **params)
            ids = [int(t["id"]) for t in seen.body["tickets"]]
            assert ids == sorted(ids)
            if previous_last is not None and ids[0] == previous_last:
                assert ids[1] == previous_last + 1  # the rest of the page carries on in order
                return
            assert previous_last is None or ids[0] == previous_last + 1
            previous_last = ids[-1]
            params = {"page[size]": 25, "page[after]": seen.body["meta"]["after_cursor"]}
    raise AssertionError("no page repeated the previous page's last record in 60 pages")


# -- rate limits -------------------------------------------------------------------------------------
def _burst(
    sandbox, vendor: str, path: str, count: int, workers: int = 4, **params
) -> tuple[list[Seen], float]:
    with _client(sandbox, vendor) as client:
        started = time.monotonic()
        with ThreadPoolExecutor(workers) as pool:
            seen = list(pool.map(lambda _: _fetch(client, path, **params), range(count)))
        return seen, time.monotonic() - started


def _check_429(seen: Seen) -> None:
    assert seen.status == 429
    assert int(seen.headers["retry-after"]) >= 1


def test_stripe_rate_limit_25_per_second(realistic):
    seen, elapsed = _burst(realistic, "stripe", "/v1/products", 60, limit=1)
    limited = [s for s in seen if s.status == 429]
    assert limited, f"60 requests in {elapsed:.2f}s and no 429"
    assert len(seen) - len(limited) <= 25 * (int(elapsed) + 1)
    _check_429(limited[0])
    assert limited[0].body["error"]["code"] == "rate_limit"
    assert limited[0].body["error"]["type"] == "invalid_request_error"
    with _client(realistic, "stripe") as client:
        time.sleep(int(limited[-1].headers["retry-after"]))
        assert _fetch(client, "/v1/products", limit=1).status == 200


def test_hubspot_rate_limit_100_per_10_seconds(realistic):
    seen, elapsed = _burst(realistic, "hubspot", "/crm/v3/objects/companies", 120, limit=1)
    limited = [s for s in seen if s.status == 429]
    assert elapsed < 10, "the burst was too slow to test a 10 s window"
    assert len(limited) == 20
    _check_429(limited[0])
    assert limited[0].body["category"] == "RATE_LIMITS" and limited[0].body["status"] == "error"


def test_zendesk_rate_limit_700_per_minute(realistic):
    seen, elapsed = _burst(realistic, "zendesk", "/api/v2/tickets/1.json", 720, workers=6)
    limited = [s for s in seen if s.status == 429]
    assert elapsed < 60
    assert len(limited) == 20
    _check_429(limited[0])
    assert limited[0].body["error"] == "TooManyRequests"


def test_netsuite_concurrency_limit_15(realistic):
    """40 requests at once on 40 open connections: at most 15 may be in flight, the rest get 429."""
    base = realistic.base_url("netsuite")
    headers = {**_headers(realistic, "netsuite"), "Connection": "keep-alive"}
    clients = [httpx.Client(headers=headers, timeout=60) for _ in range(40)]
    gate = threading.Barrier(len(clients))
    try:
        for client in clients:
            client.get(base + "/__sandbox__/health")  # connected before the burst

        def one(client):
            gate.wait()
            return _fetch(client, base + "/services/rest/record/v1/invoice", limit=1000)

        with ThreadPoolExecutor(len(clients)) as pool:
            seen = list(pool.map(one, clients))
    finally:
        for client in clients:
            client.close()
    limited = [s for s in seen if s.status == 429]
    assert limited and len(seen) - len(limited) >= 15, Counter(s.status for s in seen)
    _check_429(limited[0])
    detail = limited[0].body["o:errorDetails"][0]
    assert detail["o:errorCode"] == "CONCURRENCY_LIMIT_EXCEEDED" and limited[0].body["status"] == 429
    # the slots are given back: requests one at a time get through again
    with _client(realistic, "netsuite") as client:
        assert {
            _fetch(client, base + "/services/rest/record/v1/invoice", limit=10).status for _ in range(5)
        } <= {
            200,
            500,
            502,
            503,
        }
    assert _faults(realistic)["injected"]["netsuite"]["concurrency_limit"] == len(limited)


# -- per-vendor profiles, drift, the maintenance window -------------------------------------------
def test_schema_drift_after_the_threshold(stripe_only):
    with _client(stripe_only, "stripe") as client:
        pages = 0  # 200 responses to GETs, as the injector counts them
        observed = []
        after = None
        while pages < 12:
            params = {"limit": 3, **({"starting_after": after} if after else {})}
            seen = _fetch(client, "/v1/customers", **params)
            if seen.status == 429:
                time.sleep(float(seen.headers["retry-after"]))
                continue
            if seen.status != 200:
                continue
            pages += 1
            if seen.body is None:
                continue
            record = seen.body["data"][0]
            observed.append((pages, "billing_mode" in record, type(record["created"])))
            after = seen.body["data"][-1]["id"]
    settings = _faults(stripe_only)["settings"]["stripe"]
    threshold = settings["drift_after"]
    assert threshold == 5
    for page, new_field, created_type in observed:
        drifting = page > threshold
        assert new_field == drifting, observed
        assert created_type is (str if drifting else int), observed
    assert any(p > threshold for p, *_ in observed) and any(p <= threshold for p, *_ in observed)


def test_per_vendor_profile_touches_only_that_vendor(stripe_only):
    paths = {
        "hubspot": ("/crm/v3/objects/contacts", {"limit": 5}),
        "zendesk": ("/api/v2/tickets.json", {"per_page": 5}),
        "netsuite": ("/services/rest/record/v1/customer", {"limit": 5}),
    }
    for vendor, (path, params) in paths.items():
        with _client(stripe_only, vendor) as client:
            for _ in range(40):
                seen = _fetch(client, path, **params)
                assert seen.status == 200 and seen.body is not None, (vendor, seen.status)
                assert seen.elapsed < SLOW_S
                text = orjson.dumps(seen.body).decode()
                assert "custom_status_id" not in text and "custentity_sandbox_segment" not in text
    state = _faults(stripe_only)
    assert state["profiles"] == {
        "stripe": "hostile",
        "hubspot": "none",
        "zendesk": "none",
        "netsuite": "none",
    }
    assert set(state["injected"]) == {"stripe"} and state["injected"]["stripe"]
    assert "netsuite" not in state["maintenance"]


def test_maintenance_window_on_demand(stripe_only):
    until = stripe_only.admin("maintenance", "POST", vendor="netsuite", seconds=2)["maintenance_until"]
    with _client(stripe_only, "netsuite") as netsuite, _client(stripe_only, "hubspot") as hubspot:
        seen = _fetch(netsuite, "/services/rest/record/v1/customer", limit=5)
        assert seen.status == 503
        assert 1 <= int(seen.headers["retry-after"]) <= 3
        assert seen.body["status"] == 503 and seen.body["title"] == "Service Unavailable"
        assert seen.body["o:errorDetails"][0]["o:errorCode"] == "SERVICE_UNAVAILABLE"
        assert _fetch(hubspot, "/crm/v3/objects/contacts", limit=5).status == 200  # only the ERP is down
        time.sleep(max(until - time.time(), 0) + 0.2)
        assert _fetch(netsuite, "/services/rest/record/v1/customer", limit=5).status == 200
    assert _faults(stripe_only)["injected"]["netsuite"] == {"maintenance": 1}


def test_hostile_scheduled_maintenance_window(hostile):
    """Last in the module: what the background watcher saw of the scheduled NetSuite window."""
    WINDOW["thread"].join(timeout=60)
    assert "error" not in WINDOW, WINDOW.get("error")
    window = WINDOW["window"]
    assert window["until"] - window["from"] == pytest.approx(8.0)
    assert WINDOW["before"].status != 503 or WINDOW["before"].body["o:errorDetails"][0]["o:errorCode"] != (
        "SERVICE_UNAVAILABLE"
    )
    during = WINDOW["during"]
    assert during.status == 503
    assert during.body["o:errorDetails"][0]["o:errorCode"] == "SERVICE_UNAVAILABLE"
    assert during.body["title"] == "Service Unavailable"
    assert 1 <= int(during.headers["retry-after"]) <= 9
    assert WINDOW["after"].status == 200 and WINDOW["after"].body["totalResults"] == 4
    assert _faults(hostile)["injected"]["netsuite"]["maintenance"] == 1
