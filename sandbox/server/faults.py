"""Vendor-like faults, seeded so that a failing test replays.

Profiles (per vendor): `none`, `realistic`, `hostile`. A decision for a request depends only on the
seed, the vendor, the request (method, path, query) and how many times that same request was made
before; so a retry of a failed request eventually succeeds, and the same client behaviour sees the same
faults. Rate limits and the maintenance window follow the wall clock, as the real ones do.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import Counter, defaultdict, deque
from collections.abc import Callable
from dataclasses import asdict, dataclass

import orjson
from fastapi import Request
from fastapi.responses import Response
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Send

VENDORS = ("stripe", "hubspot", "zendesk", "netsuite")
READ_ONLY_POSTS = ("/suiteql", "/search", "/batch/read")


@dataclass(frozen=True)
class Profile:
    rate_limits: bool = False
    error_rate: float = 0.0  # random 500/502/503
    slow_rate: float = 0.0
    slow_seconds: float = 0.0
    truncate_rate: float = 0.0  # a list page whose JSON is cut short
    duplicate_rate: float = 0.0  # a list page that repeats the previous page's last record
    drift_after: int | None = None  # after this many list pages, records gain a field and one changes type
    maintenance: tuple[float, float] | None = None  # (seconds after start, duration): ERP only


PROFILES = {
    "none": Profile(),
    "realistic": Profile(rate_limits=True, error_rate=0.005, slow_rate=0.01, slow_seconds=0.3),
    "hostile": Profile(
        rate_limits=True,
        error_rate=0.05,
        slow_rate=0.03,
        slow_seconds=0.8,
        truncate_rate=0.03,
        duplicate_rate=0.05,
        drift_after=5,
        maintenance=(20.0, 8.0),
    ),
}

# Documented vendor limits: (requests, window seconds) or a concurrency cap for NetSuite.
RATE_LIMITS = {"stripe": (25, 1.0), "hubspot": (100, 10.0), "zendesk": (700, 60.0)}
NETSUITE_CONCURRENCY = 15
# Time a NetSuite request holds its concurrency slot under rate-limited profiles (the real service takes
# longer still): 15 slots / 0.05 s make the ERP's allowed rate 300 requests/s.
NETSUITE_SERVICE_TIME = 0.05


def parse_faults(spec: str) -> dict[str, str]:
    """`hostile` or `stripe=hostile,netsuite=realistic` -> a profile name per vendor.

    Raises ValueError naming the bad part, so the CLI can say how to fix it.
    """
    chosen = dict.fromkeys(VENDORS, "none")
    parts = [p.strip() for p in spec.split(",") if p.strip()]
    for part in parts:
        vendor, _, profile = part.rpartition("=")
        if profile not in PROFILES:
            raise ValueError(
                f"unknown fault profile {profile!r} in {spec!r}; use one of {', '.join(PROFILES)}"
            )
        if not vendor:
            chosen = dict.fromkeys(VENDORS, profile)
        elif vendor in VENDORS:
            chosen[vendor] = profile
        else:
            raise ValueError(f"unknown vendor {vendor!r} in {spec!r}; use one of {', '.join(VENDORS)}")
    return chosen


class FaultInjector:
    def __init__(
        self, profiles: dict[str, str], seed: int, *, drift: dict[str, Callable[[dict], None]] | None = None
    ):
        self.names = {v: profiles.get(v, "none") for v in VENDORS}
        self.profiles = {v: PROFILES[name] for v, name in self.names.items()}
        self.seed = seed
        self.started = time.monotonic()
        self.attempts: Counter[str] = Counter()
        self.injected: dict[str, Counter[str]] = defaultdict(Counter)
        self.pages: Counter[str] = Counter()
        self.windows: dict[str, deque[float]] = defaultdict(deque)
        self.inflight: Counter[str] = Counter()
        self.maintenance: dict[str, tuple[float, float]] = {}
        self.drift = drift or {}
        for vendor, profile in self.profiles.items():
            if profile.maintenance and vendor == "netsuite":
                start, duration = profile.maintenance
                now = time.time()
                self.maintenance[vendor] = (now + start, now + start + duration)

    # -- admin ----------------------------------------------------------------------------------
    def describe(self) -> dict:
        return {
            "seed": self.seed,
            "profiles": self.names,
            "settings": {v: asdict(p) for v, p in self.profiles.items()},
            "injected": {v: dict(c) for v, c in self.injected.items()},
            "maintenance": {v: {"from": a, "until": b} for v, (a, b) in self.maintenance.items()},
        }

    def open_maintenance(self, vendor: str, seconds: float) -> float:
        now = time.time()
        self.maintenance[vendor] = (now, now + seconds)
        return now + seconds

    def maintenance_until(self, vendor: str) -> float | None:
        window = self.maintenance.get(vendor)
        now = time.time()
        return window[1] if window and window[0] <= now < window[1] else None

    # -- decisions ------------------------------------------------------------------------------
    def _roll(self, key: str, kind: str) -> float:
        digest = hashlib.blake2b(f"{self.seed}|{key}|{kind}".encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big") / 2**64

    def _rate_limited(self, vendor: str) -> float | None:
        """Seconds to wait when `vendor`'s request budget is spent, else None (and spends one)."""
        if vendor not in RATE_LIMITS:
            return None
        limit, window = RATE_LIMITS[vendor]
        now = time.monotonic()
        stamps = self.windows[vendor]
        while stamps and stamps[0] <= now - window:
            stamps.popleft()
        if len(stamps) >= limit:
            return max(stamps[0] + window - now, 0.01)
        stamps.append(now)
        return None

    async def handle(
        self,
        vendor: str,
        request: Request,
        app: ASGIApp,
        send: Send,
        error: Callable[..., Response],
    ) -> None:
        """Serve `request` through `app`, injecting this vendor's faults (ASGI style)."""
        scope, receive = request.scope, request.receive
        profile = self.profiles.get(vendor, PROFILES["none"])
        key = f"{vendor}|{request.method}|{request.url.path}|{request.url.query}"
        attempt = self.attempts[key]
        self.attempts[key] += 1
        rolled = f"{key}|{attempt}"

        async def refuse(status: int, message: str, code: str, headers: dict | None = None) -> None:
            await error(status, message, code, None, headers)(scope, receive, send)

        until = self.maintenance_until(vendor)
        if until is not None:
            self.injected[vendor]["maintenance"] += 1
            wait = str(max(int(until - time.time()) + 1, 1))
            await refuse(
                503,
                "The service is unavailable for scheduled maintenance.",
                "maintenance",
                {"Retry-After": wait},
            )
            return
        if profile.rate_limits:
            limited = self._rate_limited(vendor)
            if limited is not None:
                self.injected[vendor]["rate_limit"] += 1
                await refuse(
                    429,
                    "Too many requests hit the API too quickly.",
                    "rate_limit",
                    {"Retry-After": str(max(1, round(limited + 0.5)))},
                )
                return
        if self._roll(rolled, "error") < profile.error_rate:
            status = (500, 502, 503)[int(self._roll(rolled, "status") * 3)]
            self.injected[vendor][f"http_{status}"] += 1
            await refuse(status, "The server had an error while processing the request.", "server_error")
            return
        if self._roll(rolled, "slow") < profile.slow_rate:
            self.injected[vendor]["slow"] += 1
            await asyncio.sleep(profile.slow_seconds)

        # reads: GETs, and the POSTs that only query (SuiteQL, CRM search)
        is_list_page = request.method == "GET" or request.url.path.endswith(READ_ONLY_POSTS)
        request.state.fault_duplicate = (
            is_list_page and self._roll(rolled, "duplicate") < profile.duplicate_rate
        )
        limits_concurrency = vendor == "netsuite" and profile.rate_limits
        if limits_concurrency:
            if self.inflight[vendor] >= NETSUITE_CONCURRENCY:
                self.injected[vendor]["concurrency_limit"] += 1
                await refuse(
                    429,
                    "Concurrent request limit exceeded.",
                    "CONCURRENCY_LIMIT_EXCEEDED",
                    {"Retry-After": "1"},
                )
                return
            self.inflight[vendor] += 1
            try:
                await asyncio.sleep(NETSUITE_SERVICE_TIME)
            except BaseException:
                self.inflight[vendor] -= 1
                raise
        drifting = (
            is_list_page and profile.drift_after is not None and self.pages[vendor] >= profile.drift_after
        )
        truncating = is_list_page and self._roll(rolled, "truncate") < profile.truncate_rate
        rewrite = (drifting and vendor in self.drift) or truncating
        started: dict = {}
        chunks: list[bytes] = []

        async def watch(message: Message) -> None:
            if message["type"] == "http.response.start":
                started.update(message)
                if message["status"] == 200 and is_list_page:
                    self.pages[vendor] += 1
                if not rewrite or message["status"] != 200:
                    await send(message)
                return
            if not rewrite or started.get("status") != 200:
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                body = self._rewrite(vendor, b"".join(chunks), drifting, truncating)
                headers = MutableHeaders(
                    raw=[(k, v) for k, v in started["headers"] if k != b"content-length"]
                )
                headers["content-length"] = str(len(body))
                await send({**started, "headers": headers.raw})
                await send({"type": "http.response.body", "body": body, "more_body": False})

        try:
            await app(scope, receive, watch)
        finally:
            if limits_concurrency:
                self.inflight[vendor] -= 1
        if getattr(request.state, "duplicated", False):
            self.injected[vendor]["duplicate_record"] += 1

    def _rewrite(self, vendor: str, body: bytes, drifting: bool, truncating: bool) -> bytes:
        if drifting and vendor in self.drift:
            body = self._drift(vendor, body)
        if truncating:
            self.injected[vendor]["truncated_page"] += 1
            body = body[: max(len(body) // 2, 1)]
        return body

    def _drift(self, vendor: str, body: bytes) -> bytes:
        doc = orjson.loads(body)
        touched = 0
        if "id" in doc:
            records = [doc]
        else:  # list envelopes ({"data": [...]}) and single-record envelopes ({"ticket": {...}})
            records = [v for v in doc.values() if isinstance(v, list) or (isinstance(v, dict) and "id" in v)]
        for group in records:
            for record in group if isinstance(group, list) else [group]:
                if isinstance(record, dict):
                    self.drift[vendor](record)
                    touched += 1
        if touched:
            self.injected[vendor]["schema_drift"] += 1
        return orjson.dumps(doc)
