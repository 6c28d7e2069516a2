"""The fetcher's retry policy, pacing and auth against a tiny scripted HTTP server on loopback.

Real sockets, no mocks. The server records each request's headers plus `:path` and `:at` (when it
arrived, monotonic), so tests can check what was signed and how long the fetcher held back.
"""

from __future__ import annotations

import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import httpx
import pytest
from oauthlib.oauth1.rfc5849 import signature as oauth_sig
from oauthlib.oauth1.rfc5849 import utils as oauth_utils

from revsync.connectors.http import Fetcher, Pacer, RetryPolicy, SourceError, rate_budgets
from revsync.connectors.oauth1 import TokenAuth

SECRET = "sk_test_do_not_leak"
FAST = RetryPolicy(max_attempts=4, max_total_s=5, base_delay_s=0.01, max_delay_s=0.05, max_pace_s=2)


def _serve(script: list[tuple[int, dict, bytes]]):
    """Start a server answering each request with the next (status, headers, body) of `script`."""
    seen: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def _answer(self):
            seen.append({**self.headers, ":path": self.path, ":at": time.monotonic()})
            status, headers, body = script.pop(0) if len(script) > 1 else script[0]
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _answer

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/v1/things", seen


@pytest.fixture
def scripted():
    servers = []

    def start(script):
        server, url, seen = _serve(script)
        servers.append(server)
        return url, seen

    yield start
    for server in servers:
        server.shutdown()


def test_429_honours_retry_after_then_succeeds(scripted):
    url, seen = scripted([(429, {"Retry-After": "0"}, b"slow down"), (200, {}, b'{"ok": true}')])
    with Fetcher({"Authorization": f"Bearer {SECRET}"}, FAST) as fetch:
        assert fetch.get_json(url) == {"ok": True}
        assert fetch.retries == 1
    assert seen[0]["Authorization"] == f"Bearer {SECRET}"


def test_503_with_retry_after_waits_that_long_beyond_the_backoff_cap(scripted):
    """A maintenance window: the server says when to come back; the fetcher waits rather than burning
    its attempts on a backoff capped below the outage."""
    url, seen = scripted([(503, {"Retry-After": "1"}, b"maintenance"), (200, {}, b'{"ok": true}')])
    started = time.monotonic()
    with Fetcher({}, FAST) as fetch:
        assert fetch.get_json(url) == {"ok": True}
    assert time.monotonic() - started >= 1.0 > FAST.max_delay_s
    assert len(seen) == 2


def test_5xx_and_truncated_json_are_retried(scripted):
    url, _ = scripted([(503, {}, b"down"), (200, {}, b'{"data": [1, 2'), (200, {}, b'{"data": []}')])
    with Fetcher({}, FAST) as fetch:
        assert fetch.post_json(url, {"q": 1}) == {"data": []}
        assert fetch.retries == 2


def test_persistent_truncation_fails_loudly_without_secrets(scripted):
    url, _ = scripted([(200, {}, b'{"data": [')])
    with Fetcher({"Authorization": f"Bearer {SECRET}"}, FAST) as fetch, pytest.raises(SourceError) as err:
        fetch.get_json(url, params={"starting_after": "cus_1"}, cursor="cus_1")
    assert err.value.url == url and err.value.cursor == "cus_1" and err.value.last_status == 200
    assert "malformed JSON" in err.value.reason and SECRET not in str(err.value)


def test_client_error_is_not_retried(scripted):
    url, seen = scripted([(400, {}, b'{"error": "bad"}')])
    with Fetcher({}, FAST) as fetch, pytest.raises(SourceError) as err:
        fetch.get_json(url)
    assert err.value.last_status == 400 and len(seen) == 1


# -- auth: static headers or an httpx.Auth that signs each attempt -------------------------------
def _verify_tba(url: str, seen: dict, consumer_secret: str, token_secret: str) -> dict[str, str]:
    """Check a request's OAuth header the way the sandbox's NetSuite server does; return its params."""
    header = seen["Authorization"]
    target = httpx.URL(url).join(seen[":path"])
    collected = oauth_sig.collect_parameters(
        uri_query=target.query.decode(), headers={"Authorization": header}, with_realm=False
    )
    base = oauth_sig.signature_base_string(
        "GET", oauth_sig.base_string_uri(str(target)), oauth_sig.normalize_parameters(collected)
    )
    secrets = SimpleNamespace(client_secret=consumer_secret, resource_owner_secret=token_secret)
    params = {k: oauth_utils.unescape(v) for k, v in oauth_utils.parse_authorization_header(header)}
    assert params["oauth_signature"] == oauth_sig.sign_hmac_sha256_with_client(base, secrets)
    return params


def test_httpx_auth_signs_every_attempt_afresh(scripted):
    """A retried request is signed again: a new nonce, and a signature over the same query."""
    url, seen = scripted([(503, {}, b"down"), (200, {}, b'{"items": []}')])
    auth = TokenAuth("ACCT_1", "ck", "cs-" + SECRET, "tid", "ts-" + SECRET)
    with Fetcher(auth, FAST) as fetch:
        assert fetch.get_json(url, params={"limit": 1000, "offset": 0}) == {"items": []}
        assert fetch.retries == 1
    first, second = (_verify_tba(url, s, "cs-" + SECRET, "ts-" + SECRET) for s in seen)
    assert first["oauth_nonce"] != second["oauth_nonce"]
    assert seen[0][":path"] == seen[1][":path"] == "/v1/things?limit=1000&offset=0"


def test_client_error_with_httpx_auth_keeps_secrets_out(scripted):
    url, _ = scripted([(401, {}, b'{"title": "Unauthorized"}')])
    auth = TokenAuth("ACCT_1", "ck", "cs-" + SECRET, "tid", "ts-" + SECRET)
    with Fetcher(auth, FAST) as fetch, pytest.raises(SourceError) as err:
        fetch.get_json(url)
    assert err.value.last_status == 401 and SECRET not in str(err.value) and SECRET not in repr(auth)


# -- pacing from rate-limit headers ----------------------------------------------------------------
def _hubspot(remaining: int, limit: int = 3, interval_ms: int = 600) -> dict[str, str]:
    return {
        "X-HubSpot-RateLimit-Max": str(limit),
        "X-HubSpot-RateLimit-Remaining": str(remaining),
        "X-HubSpot-RateLimit-Interval-Milliseconds": str(interval_ms),
        "X-HubSpot-RateLimit-Daily": "500000",
        "X-HubSpot-RateLimit-Daily-Remaining": "499000",
    }


def test_pacing_waits_for_the_window_when_remaining_hits_zero(scripted, caplog):
    """HubSpot 3 per 600 ms: after the third call (Remaining 0) the fourth waits for the first to age out."""
    ok = b'{"results": []}'
    url, seen = scripted([(200, _hubspot(r), ok) for r in (2, 1, 0)] + [(200, _hubspot(2), ok)])
    caplog.set_level(logging.INFO, logger="revsync.connectors.http")
    with Fetcher({"Authorization": f"Bearer {SECRET}"}, FAST) as fetch:
        for _ in range(4):
            fetch.get_json(url)
        assert fetch.paced == 1 and fetch.retries == 0
        assert 0.3 < fetch.paced_s < 0.7
    assert seen[3][":at"] - seen[0][":at"] >= 0.6  # the window of the first request had passed
    assert seen[2][":at"] - seen[0][":at"] < 0.3  # the first three went at once
    assert "pacing GET" in caplog.text and "hubspot budget spent (0 of 3 left)" in caplog.text
    assert SECRET not in caplog.text


def test_no_pacing_while_budget_remains(scripted):
    url, seen = scripted([(200, _hubspot(5, limit=10, interval_ms=10_000), b"{}")])
    started = time.monotonic()
    with Fetcher({}, FAST) as fetch:
        for _ in range(5):
            fetch.get_json(url)
        assert fetch.paced == 0
    assert len(seen) == 5 and time.monotonic() - started < 0.5


def test_pacing_follows_a_reset_header(scripted):
    """Zendesk: `X-Rate-Limit-Remaining: 0` with `ratelimit-reset: 1` holds the next call ~1 s."""
    spent = {"X-Rate-Limit": "700", "X-Rate-Limit-Remaining": "0", "ratelimit-reset": "1"}
    url, seen = scripted([(200, spent, b"{}"), (200, {"X-Rate-Limit-Remaining": "699"}, b"{}")])
    with Fetcher({}, FAST) as fetch:
        fetch.get_json(url)
        fetch.get_json(url)
        assert fetch.paced == 1
    assert 1.0 <= seen[1][":at"] - seen[0][":at"] < 1.5


def test_pacing_wait_is_bounded(scripted):
    """A reset an hour away (generic `X-RateLimit-Reset` as a unix time) waits only `max_pace_s`."""
    reset = str(int(time.time()) + 3600)
    spent = {"X-RateLimit-Limit": "50", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset}
    url, seen = scripted([(200, spent, b"{}")])
    policy = RetryPolicy(max_attempts=2, max_total_s=5, max_pace_s=0.2)
    with Fetcher({}, policy) as fetch:
        fetch.get_json(url)
        fetch.get_json(url)
        assert fetch.paced == 1 and fetch.paced_s <= 0.2
    assert seen[1][":at"] - seen[0][":at"] < 0.5


def test_pacing_can_be_switched_off(scripted):
    url, _ = scripted([(200, _hubspot(0, interval_ms=10_000), b"{}")])
    with Fetcher({}, RetryPolicy(pace=False)) as fetch:
        fetch.get_json(url)
        fetch.get_json(url)
        assert fetch.paced == 0


def test_rate_budgets_read_each_vendors_headers():
    budgets = rate_budgets(httpx.Headers(_hubspot(7, limit=100, interval_ms=10_000)))
    assert [(b.family, b.remaining, b.limit, b.window_s, b.reset_s) for b in budgets] == [
        ("hubspot", 7, 100, 10.0, None)
    ]
    zendesk = rate_budgets(httpx.Headers({"X-Rate-Limit": "700", "X-Rate-Limit-Remaining": "12"}))
    assert [(b.family, b.remaining, b.limit, b.window_s) for b in zendesk] == [
        ("x-rate-limit", 12, 700, 60.0)
    ]
    freshdesk = rate_budgets(httpx.Headers({"X-RateLimit-Total": "400", "X-RateLimit-Remaining": "3"}))
    assert [(b.family, b.remaining, b.limit) for b in freshdesk] == [("x-ratelimit", 3, 400)]
    epoch = rate_budgets(
        httpx.Headers({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(time.time()) + 30)})
    )
    assert 28 <= epoch[0].reset_s <= 30
    assert rate_budgets(httpx.Headers({"Request-Id": "req_1"})) == []  # Stripe sends none


def test_a_shared_budget_waits_the_whole_window():
    """Remaining 0 of 700 after one request of ours: others spent the rest, so the full minute is waited."""
    pacer = Pacer(RetryPolicy(max_pace_s=120))
    pacer.observe(httpx.Headers({"X-Rate-Limit": "700", "X-Rate-Limit-Remaining": "0"}))
    assert 59.9 < pacer.hold() <= 60.05


def test_a_page_that_stays_malformed_fails_the_stream_and_lands_nothing(scripted, tmp_path):
    """A second page without its record list: retried, then the stream fails with the URL and cursor,
    and the first page does not land on its own (no silent partial success)."""
    import duckdb

    from revsync.connectors.base import Connector, Stream, StripeCursor
    from revsync.connectors.load import load_source

    first = b'{"object": "list", "has_more": true, "data": [{"id": "cus_1", "created": 1}]}'
    url, seen = scripted([(200, {}, first), (200, {}, b'{"object": "list", "has_more": false}')])
    base = url.removesuffix("/v1/things")
    stream = Stream("things", "/v1/things", "id", StripeCursor(), "data", cursor_field="created")
    connector = Connector("stripe", (stream,), lambda creds: {})
    con = duckdb.connect(str(tmp_path / "wh.duckdb"))
    with pytest.raises(SourceError) as err:
        load_source(con, connector, base, {}, "b1", policy=FAST)
    assert err.value.cursor == "cus_1" and "starting_after=cus_1" in err.value.url
    assert "malformed page: no list at 'data'" in err.value.reason
    assert len(seen) == 1 + 3  # the bad page was asked for three times
    assert con.execute("select count(*) from raw_stripe.things").fetchone()[0] == 0
    assert con.execute("select count(*) from revsync_state.cursors").fetchone()[0] == 0


def test_suiteql_restarts_when_the_result_cap_says_no_more(scripted, tmp_path):
    """At the 100k cap SuiteQL answers `hasMore: false` though more rows match: the paginator restarts
    at `id > last` and stops only when a restart comes back empty."""
    import duckdb

    from revsync.connectors.base import Connector, Stream, SuiteQLOffset
    from revsync.connectors.load import load_source

    def page(ids, more):
        items = ",".join(f'{{"id": "{i}", "lastmodifieddate": "2026-11-01 10:00:00"}}' for i in ids)
        return (200, {}, f'{{"items": [{items}], "hasMore": {str(more).lower()}}}'.encode())

    script = [page([1, 2], True), page([3, 4], False), page([5], False), page([], False)]
    url, seen = scripted(script)
    base = url.removesuffix("/v1/things")
    pager = SuiteQLOffset(limit=2, max_results=4)
    stream = Stream("customer", "/v1/things", "id", pager, "items", params={"from": "customer"})
    con = duckdb.connect(str(tmp_path / "wh.duckdb"))
    results = load_source(con, Connector("netsuite", (stream,), lambda c: {}), base, {}, "b1", policy=FAST)
    assert results["customer"].rows == 5
    assert len(seen) == 3  # offset 0, offset 2 (the cap), then the restart at id > 4 (one record)
