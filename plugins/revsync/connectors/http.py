"""A small httpx fetcher with the retry policy every connector shares.

429 waits for `Retry-After` (or the rate-limit reset header); 5xx, timeouts, transport errors and
unparseable or truncated JSON bodies back off exponentially with full jitter. Attempts and total time
are bounded; when they run out a `SourceError` names the URL (without its credentials), the cursor,
the last status and the reason. Auth (static headers or an `httpx.Auth` that signs each request) is
supplied by the connector and never logged.

Pacing: a response whose rate-limit headers say the budget is spent (remaining <= the policy's reserve)
makes the fetcher wait, before its next request, until the window frees a slot, instead of running into
a 429. Understood headers: HubSpot `X-HubSpot-RateLimit-Max|Remaining|Interval-Milliseconds` (a rolling
window; the daily `-Daily-Remaining` is only logged, as its reset is hours away), the IETF draft and
Zendesk `RateLimit-Limit|Remaining|Reset`, Zendesk `X-Rate-Limit|X-Rate-Limit-Remaining` (per minute),
and the generic `X-RateLimit-Limit|Total|Remaining|Reset` (Freshdesk and others; reset in seconds or
epoch seconds, else a minute's window). A reset header gives the wait; a rolling window without one is
timed from the fetcher's own requests (the slot frees when the oldest request in the window ages out),
or the whole window when other clients share the budget. Waits are bounded by `max_pace_s`. Stripe
sends no such headers: it only answers 429, which the retry path handles.
"""

from __future__ import annotations

import logging
import random
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import httpx

log = logging.getLogger(__name__)

RETRY_AFTER_HEADERS = ("Retry-After", "X-RateLimit-Reset", "X-Rate-Limit-Reset")
EPOCH_THRESHOLD = 1_000_000_000  # a reset value above this is a unix time, below it a number of seconds
PACE_MARGIN_S = 0.05  # slack after the computed reset, for clock and bookkeeping differences
SENT_HISTORY = 4096  # request times remembered for timing rolling windows


class SourceError(RuntimeError):
    """A source request that could not be completed within the retry budget."""

    def __init__(self, url: str, cursor: str | None, last_status: int | None, reason: str):
        self.url, self.cursor, self.last_status, self.reason = url, cursor, last_status, reason
        super().__init__(f"{reason} (url={url}, cursor={cursor}, last_status={last_status})")


class _Retryable(Exception):
    def __init__(self, status: int | None, reason: str, wait: float | None = None):
        super().__init__(reason)
        self.status, self.reason, self.wait = status, reason, wait


@dataclass
class RetryPolicy:
    max_attempts: int = 8
    max_total_s: float = 120.0
    base_delay_s: float = 0.25
    max_delay_s: float = 10.0
    max_retry_after_s: float = 60.0
    pace: bool = True  # wait out a spent rate-limit budget before the next request
    pace_reserve: int = 0  # pace once at most this many requests remain in the window
    max_pace_s: float = 60.0  # the longest single pacing wait

    def backoff(self, attempt: int) -> float:
        """Full-jitter exponential backoff for the given (1-based) attempt."""
        return random.uniform(0, min(self.max_delay_s, self.base_delay_s * 2 ** (attempt - 1)))


def seconds_until(value: str | None) -> float | None:
    """A reset header as seconds from now: a delta in seconds, or a unix time when it is that large."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    if seconds > EPOCH_THRESHOLD:
        seconds -= time.time()
    return max(0.0, seconds)


def _retry_after(response: httpx.Response) -> float | None:
    for name in RETRY_AFTER_HEADERS:
        if name in response.headers:
            return seconds_until(response.headers[name])
    return None


def _int_header(headers: httpx.Headers, *names: str) -> int | None:
    for name in names:
        value = headers.get(name)
        if value is not None:
            try:
                return int(float(value))
            except ValueError:
                return None
    return None


# (family, remaining header, limit headers, reset headers, window seconds when no header gives it)
RATE_LIMIT_FAMILIES = (
    ("hubspot", "X-HubSpot-RateLimit-Remaining", ("X-HubSpot-RateLimit-Max",), (), None),
    ("ratelimit", "RateLimit-Remaining", ("RateLimit-Limit",), ("RateLimit-Reset",), 60.0),
    (
        "x-rate-limit",  # Zendesk: per-minute limits; newer responses add `ratelimit-reset`
        "X-Rate-Limit-Remaining",
        ("X-Rate-Limit",),
        ("X-Rate-Limit-Reset", "RateLimit-Reset"),
        60.0,
    ),
    (
        "x-ratelimit",  # Freshdesk (`-Total`) and most others; the window is a guess without `-Reset`
        "X-RateLimit-Remaining",
        ("X-RateLimit-Limit", "X-RateLimit-Total"),
        ("X-RateLimit-Reset",),
        60.0,
    ),
)


@dataclass(frozen=True)
class Budget:
    """One rate-limit window as a response reports it."""

    family: str  # which headers said so (for logs)
    remaining: int
    limit: int | None
    window_s: float | None  # the window's length, when known
    reset_s: float | None  # seconds until the budget refills, when the server says


def rate_budgets(headers: httpx.Headers) -> list[Budget]:
    """Every request budget the response's headers describe (none for Stripe, which sends none)."""
    found = []
    for family, remaining_header, limit_headers, reset_headers, window_s in RATE_LIMIT_FAMILIES:
        remaining = _int_header(headers, remaining_header)
        if remaining is None:
            continue
        if family == "hubspot":
            interval_ms = _int_header(headers, "X-HubSpot-RateLimit-Interval-Milliseconds")
            window_s = interval_ms / 1000 if interval_ms else None
        reset = next((headers[name] for name in reset_headers if name in headers), None)
        limit = _int_header(headers, *limit_headers)
        found.append(Budget(family, remaining, limit, window_s, seconds_until(reset)))
    return found


class Pacer:
    """Decides from each response's rate-limit headers how long to hold the next request."""

    def __init__(self, policy: RetryPolicy):
        self.policy = policy
        self.sent: deque[float] = deque(maxlen=SENT_HISTORY)  # when our responses arrived (monotonic)
        self.resume_at = 0.0
        self.reason = ""
        self.daily_spent_logged = False

    def observe(self, headers: httpx.Headers) -> None:
        """Note one response: its arrival time and, when a budget is spent, when to send again."""
        now = time.monotonic()
        self.sent.append(now)
        if not self.policy.pace:
            return
        if headers.get("X-HubSpot-RateLimit-Daily-Remaining") == "0" and not self.daily_spent_logged:
            self.daily_spent_logged = True
            log.warning("HubSpot daily request budget spent; not paced (it resets at the account's midnight)")
        waits = [
            (self._wait(budget, now), budget)
            for budget in rate_budgets(headers)
            if budget.remaining <= self.policy.pace_reserve
        ]
        if not waits:
            return
        wait, budget = max(waits, key=lambda pair: pair[0])
        wait = min(wait + PACE_MARGIN_S, self.policy.max_pace_s)
        if now + wait > self.resume_at:
            self.resume_at = now + wait
            self.reason = f"{budget.family} budget spent ({budget.remaining} of {budget.limit} left)"

    def _wait(self, budget: Budget, now: float) -> float:
        """Seconds until `budget` has a slot above the reserve again."""
        if budget.reset_s is not None:
            return budget.reset_s
        if budget.window_s is None:
            return 0.0
        if budget.limit is None:
            return budget.window_s
        used = budget.limit - budget.remaining
        needed = min(self.policy.pace_reserve + 1 - budget.remaining, used)  # slots that must free up
        ours = [t for t in self.sent if t > now - budget.window_s]
        if needed < 1 or len(ours) < used:  # others share the budget: their requests' times are unknown
            return budget.window_s
        # The window holds exactly our last `used` requests; the `needed`-th oldest frees the slot.
        return max(0.0, ours[len(ours) - used + needed - 1] + budget.window_s - now)

    def hold(self) -> float:
        """Seconds to wait before the next request (0 when the budget allows it now)."""
        return max(0.0, self.resume_at - time.monotonic())


def _classify(response: httpx.Response) -> Any:
    """Return the parsed JSON body; raise `_Retryable` (worth another try) or `_Fatal` (not)."""
    if response.status_code == 429:
        raise _Retryable(429, "rate limited", _retry_after(response))
    if response.status_code >= 500:  # a 503 may say when to come back (maintenance windows)
        raise _Retryable(response.status_code, f"server error {response.status_code}", _retry_after(response))
    if response.status_code >= 400:
        raise _Fatal(response.status_code, f"client error {response.status_code}: {response.text[:300]}")
    try:
        return response.json()
    except ValueError as exc:
        raise _Retryable(response.status_code, f"malformed JSON body: {exc}") from None


class _Fatal(Exception):
    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status, self.reason = status, reason


class Fetcher:
    """GET/POST JSON with retries and pacing. One per connector run.

    `auth` is either static headers (a bearer token, Basic) or an `httpx.Auth` that signs each request
    as it is sent (NetSuite TBA), so retries are signed afresh. `retries` counts retried attempts,
    `paced` the waits taken because a rate-limit budget was spent (`paced_s` their total seconds).
    """

    def __init__(
        self,
        auth: dict[str, str] | httpx.Auth | None = None,
        policy: RetryPolicy | None = None,
        timeout_s: float = 30.0,
    ):
        self.policy = policy or RetryPolicy()
        if isinstance(auth, httpx.Auth):
            self.client = httpx.Client(auth=auth, timeout=timeout_s)
        else:
            self.client = httpx.Client(headers=auth or {}, timeout=timeout_s)
        self.pacer = Pacer(self.policy)
        self.retries = 0
        self.paced = 0
        self.paced_s = 0.0

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def get_json(self, url: str, params: dict | None = None, cursor: str | None = None) -> Any:
        return self.request("GET", url, params=params, cursor=cursor)

    def post_json(
        self,
        url: str,
        body: Any,
        params: dict | None = None,
        headers: dict | None = None,
        cursor: str | None = None,
    ) -> Any:
        return self.request("POST", url, params=params, json=body, headers=headers, cursor=cursor)

    def request(self, method: str, url: str, cursor: str | None = None, **kwargs) -> Any:
        """Send until a 2xx with a JSON body arrives or the attempt/time budget is spent."""
        return self.fetch(method, url, cursor, **kwargs)[0]

    def fetch(self, method: str, url: str, cursor: str | None = None, **kwargs) -> tuple[Any, httpx.Headers]:
        """`request`, returning the response headers beside the body (paging by `Link`, pacing)."""
        started = time.monotonic()
        last_status, reason = None, "no attempt made"
        for attempt in range(1, self.policy.max_attempts + 1):
            started += self._pace(method, url)  # pacing is not failure: it spends no retry budget
            try:
                response = self.client.request(method, url, **kwargs)
                self.pacer.observe(response.headers)
                return _classify(response), response.headers
            except _Fatal as exc:
                raise SourceError(_safe_url(url), cursor, exc.status, exc.reason) from None
            except _Retryable as exc:
                last_status, reason = exc.status, exc.reason
                wait = self._wait(exc, attempt)
            except httpx.TransportError as exc:  # timeouts, connection resets, truncated bodies
                last_status, reason = None, f"{type(exc).__name__}"
                wait = self.policy.backoff(attempt)
            if (
                attempt == self.policy.max_attempts
                or time.monotonic() - started + wait > self.policy.max_total_s
            ):
                break
            self.retries += 1
            log.info("retrying %s %s in %.2fs: %s", method, _safe_url(url), wait, reason)
            time.sleep(wait)
        raise SourceError(_safe_url(url), cursor, last_status, f"gave up after {attempt} attempts: {reason}")

    def _pace(self, method: str, url: str) -> float:
        """Wait while the last response said the rate-limit budget is spent; return the seconds waited."""
        wait = self.pacer.hold()
        if wait <= 0:
            return 0.0
        self.paced += 1
        self.paced_s += wait
        log.info("pacing %s %s for %.2fs: %s", method, _safe_url(url), wait, self.pacer.reason)
        time.sleep(wait)
        return wait

    def _wait(self, exc: _Retryable, attempt: int) -> float:
        if exc.wait is not None:
            return min(exc.wait, self.policy.max_retry_after_s) + random.uniform(0, 0.1)
        return self.policy.backoff(attempt)


def _safe_url(url: str) -> str:
    """The URL without any userinfo (credentials never travel in query strings here)."""
    parsed = httpx.URL(url)
    return str(parsed.copy_with(username=None, password=None)) if parsed.userinfo else str(parsed)
