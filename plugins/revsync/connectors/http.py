"""A small httpx fetcher with the retry policy every connector shares.

429 waits for `Retry-After` (or the rate-limit reset header); 5xx, timeouts, transport errors and
unparseable or truncated JSON bodies back off exponentially with full jitter. Attempts and total time
are bounded; when they run out a `SourceError` names the URL (without its credentials), the cursor,
the last status and the reason. Auth (static headers or an `httpx.Auth` that signs each request) is
supplied by the connector and never logged.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from typing import Any

import httpx

log = logging.getLogger(__name__)

RETRY_AFTER_HEADERS = ("Retry-After", "X-RateLimit-Reset", "X-Rate-Limit-Reset")


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

    def backoff(self, attempt: int) -> float:
        """Full-jitter exponential backoff for the given (1-based) attempt."""
        return random.uniform(0, min(self.max_delay_s, self.base_delay_s * 2 ** (attempt - 1)))


def _retry_after(response: httpx.Response) -> float | None:
    for name in RETRY_AFTER_HEADERS:
        value = response.headers.get(name)
        if value is None:
            continue
        try:
            return max(0.0, float(value))
        except ValueError:
            return None
    return None


def _classify(response: httpx.Response) -> Any:
    """Return the parsed JSON body; raise `_Retryable` (worth another try) or `_Fatal` (not)."""
    if response.status_code == 429:
        raise _Retryable(429, "rate limited", _retry_after(response))
    if response.status_code >= 500:
        raise _Retryable(response.status_code, f"server error {response.status_code}")
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
    """GET/POST JSON with retries. One per connector run.

    `auth` is either static headers (a bearer token, Basic) or an `httpx.Auth` that signs each request
    as it is sent (NetSuite TBA), so retries are signed afresh. `retries` counts retried attempts.
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
        self.retries = 0

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
            try:
                response = self.client.request(method, url, **kwargs)
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

    def _wait(self, exc: _Retryable, attempt: int) -> float:
        if exc.wait is not None:
            return min(exc.wait, self.policy.max_retry_after_s) + random.uniform(0, 0.1)
        return self.policy.backoff(attempt)


def _safe_url(url: str) -> str:
    """The URL without any userinfo (credentials never travel in query strings here)."""
    parsed = httpx.URL(url)
    return str(parsed.copy_with(username=None, password=None)) if parsed.userinfo else str(parsed)
