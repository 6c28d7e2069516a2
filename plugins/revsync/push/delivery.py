"""Delivering the outbox to a target: in order, bounded, retried, and never twice.

A run for one target:
1. In-doubt writes first: rows left `sent` by a run that died before recording the answer are checked
   against the target (a read, see revsync.push.targets); applied ones are acknowledged without a
   request, the others go back to `failed` and are sent again below.
2. Waves: the sendable rows (pending, failed, replayed) whose prerequisite is acknowledged and that no
   earlier-sequence write of the same customer is still waiting for (customer -> sales order ->
   invoice -> payment/credit memo) are claimed (`sent`, committed before any request leaves), sent
   with at most the target's concurrency in flight and its pacing between starts, and settled in
   batches, each in one transaction. There is no barrier between waves: while requests are in flight,
   the answered writes are settled and the next eligible ones claimed (a write whose predecessor was
   just settled becomes eligible then), so the slots stay busy. A failed prerequisite holds its
   dependents: they stay pending.
3. Per write: 2xx acknowledges (with the target's internal id); 429 waits the Retry-After for the
   whole target and tries again (not an error); 5xx, timeouts and dropped connections are transient
   errors, retried with full-jitter backoff after checking whether the write landed anyway; after
   `max_errors` of them (across runs) the write is dead-lettered with the last error; any other 4xx is
   the target refusing the record: dead-lettered at once with the target's message.
4. A 503 with Retry-After (maintenance) or a refused connection stops the run: nothing more is sent,
   the writes not yet answered go back to `failed` (not counted as errors) and `TargetUnavailable`
   says until when, so the caller can defer. 401/403 stop it too, as `PushConfigError`.

The warehouse (DuckDB allows one writer) is locked only while writes are claimed or settled: short
sessions, run in a worker thread while the requests already claimed go on; never for a request.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from revsync.connectors.http import seconds_until
from revsync.push.outbox import OUTBOX, SENDABLE, Outcome, claim, rows, settle
from revsync.push.targets import Target
from revsync.warehouse.state import state_engine, writer_lock

log = logging.getLogger(__name__)

PROGRESS_EVERY_S = 5.0


class TargetUnavailable(RuntimeError):
    """The target is in maintenance or unreachable; `until` is its own estimate (epoch s) if it gave one."""

    def __init__(self, target: str, reason: str, until: float | None = None):
        self.target, self.reason, self.until = target, reason, until
        when = f" until {time.strftime('%H:%M:%S', time.gmtime(until))} UTC" if until else ""
        super().__init__(f"{target} is unavailable{when}: {reason}")


class PushConfigError(RuntimeError):
    """The target refused revsync itself (credentials, permissions): no record is at fault."""


@dataclass(frozen=True)
class DeliverySettings:
    chunk: int = 500  # writes claimed per wave
    max_errors: int = 6  # transient errors (across runs) before a write is dead-lettered
    base_delay_s: float = 0.5
    max_delay_s: float = 8.0
    timeout_s: float = 30.0
    max_retry_after_s: float = 120.0  # a longer Retry-After stops the run instead of waiting
    concurrency: int | None = None  # default: the target's documented limit
    min_interval_s: float | None = None  # default: the target's pacing


@dataclass
class DeliveryReport:
    target: str
    run_id: str
    acknowledged: int = 0
    found_applied: int = 0  # in-doubt writes a check found already applied (no request sent)
    dead_lettered: int = 0
    failed: int = 0  # left to retry later (the run stopped)
    held: int = 0  # pending behind a prerequisite that is not acknowledged
    requests: int = 0
    rate_limited: int = 0
    seconds: float = 0.0
    dead_letters: list[dict[str, Any]] = field(default_factory=list)

    @property
    def writes_per_s(self) -> float:
        return round(self.acknowledged / self.seconds, 1) if self.seconds else 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "run_id": self.run_id,
            "acknowledged": self.acknowledged,
            "found_applied": self.found_applied,
            "dead_lettered": self.dead_lettered,
            "failed": self.failed,
            "held": self.held,
            "requests": self.requests,
            "rate_limited": self.rate_limited,
            "seconds": round(self.seconds, 2),
            "writes_per_s": self.writes_per_s,
        }


_SENDABLE = ", ".join(f"'{state}'" for state in SENDABLE)  # pending, failed, replayed
ELIGIBLE = f"""
o.target = :target and o.state in ({_SENDABLE}) and o.errors < :max_errors
and (o.depends_on_idempotency_key is null or exists (
    select 1 from {OUTBOX} as d where d.idempotency_key = o.depends_on_idempotency_key
    and d.state = 'acknowledged'))
and not exists (
    select 1 from {OUTBOX} as p where p.target = o.target and p.customer_key = o.customer_key
    and p.sequence < o.sequence and p.state in ({_SENDABLE}, 'sent'))
"""
HELD = f"""
target = :target and state in ({_SENDABLE}) and depends_on_idempotency_key is not null
and not exists (select 1 from {OUTBOX} as d where d.idempotency_key = {OUTBOX}.depends_on_idempotency_key
    and d.state = 'acknowledged')
"""


def _eligible(
    connection: sa.Connection, target: str, limit: int, max_errors: int, skip: set[str]
) -> list[dict]:
    found = connection.execute(
        sa.text(
            f"select o.* from {OUTBOX} as o where {ELIGIBLE} "
            "order by o.sequence nulls first, o.enqueued_at, o.idempotency_key limit :limit"
        ),
        {"target": target, "max_errors": max_errors, "limit": limit + len(skip)},
    )
    picked = [dict(r._mapping) for r in found if r._mapping["idempotency_key"] not in skip]
    return picked[:limit]


class _Sender:
    """One run's HTTP side: the client, the pacing shared by all writes, and the stop signal."""

    def __init__(
        self,
        target: Target,
        base_url: str,
        auth: dict[str, str] | httpx.Auth,
        settings: DeliverySettings,
        report: DeliveryReport,
    ):
        self.target, self.settings, self.report = target, settings, report
        self.root = base_url.rstrip("/") + target.api_prefix
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        client_auth = None
        if isinstance(auth, dict):
            headers |= auth
        else:
            client_auth = auth
        concurrency = settings.concurrency or target.concurrency
        self.client = httpx.AsyncClient(
            headers=headers,
            auth=client_auth,
            timeout=settings.timeout_s,
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
        )
        self.slots = asyncio.Semaphore(concurrency)
        self.interval = target.min_interval_s if settings.min_interval_s is None else settings.min_interval_s
        self.next_start = 0.0
        self.paused_until = 0.0
        self.unavailable: TargetUnavailable | None = None
        self.config_error: str | None = None

    @property
    def stopped(self) -> bool:
        return self.unavailable is not None or self.config_error is not None

    async def _turn(self) -> None:
        """Wait for pacing and any target-wide pause (429) before a request starts."""
        while True:
            now = time.monotonic()
            start = max(self.next_start, self.paused_until, now)
            if start <= now:
                self.next_start = now + self.interval
                return
            await asyncio.sleep(start - now)

    async def request(self, method: str, path: str, content: str | None = None) -> httpx.Response:
        await self._turn()
        self.report.requests += 1
        return await self.client.request(method, self.root + path, content=content)

    def _stop_unavailable(self, reason: str, until: float | None) -> None:
        if self.unavailable is None:
            self.unavailable = TargetUnavailable(self.target.name, reason, until)

    async def check(self, change: dict[str, Any]) -> str | None:
        """The target's internal id if the write is already applied there, else None (or unknown)."""
        path = self.target.check(change)
        if path is None:
            return None
        try:
            response = await self.request("GET", path)
        except httpx.HTTPError:
            return None
        if response.status_code != 200:
            return None
        try:
            return self.target.applied(change, response.json())
        except ValueError:
            return None

    async def send(self, change: dict[str, Any]) -> Outcome:
        async with self.slots:
            return await self._send(change)

    async def _send(self, change: dict[str, Any]) -> Outcome:
        key = change["idempotency_key"]
        outcome = Outcome(key, "failed", attempts=0)
        budget = self.settings.max_errors - int(change.get("errors") or 0)
        in_doubt = int(change.get("attempts") or 0) > 1  # sent before: it may have landed
        while True:
            if self.stopped:
                outcome.error = outcome.error or f"not sent: {self.unavailable or self.config_error}"
                return outcome
            if in_doubt:
                found = await self.check(change)
                if found is not None:
                    outcome.state, outcome.target_internal_id, outcome.checked = "acknowledged", found, True
                    outcome.http_status = 200
                    return outcome
                in_doubt = False
            outcome.attempts += 1
            try:
                response = await self.request(change["http_method"], change["http_path"], change["payload"])
            except httpx.ConnectError as exc:
                self._stop_unavailable(f"cannot connect ({exc.__class__.__name__})", None)
                outcome.attempts -= 1  # never reached the target
                continue
            except httpx.HTTPError as exc:  # timeouts, dropped connections: the write may have landed
                outcome.errors += 1
                outcome.error, outcome.http_status, in_doubt = f"{exc.__class__.__name__}: {exc}", None, True
            else:
                status = response.status_code
                outcome.http_status = status
                if 200 <= status < 300:
                    outcome.state = "acknowledged"
                    outcome.target_internal_id = self.target.internal_id(change, response)
                    outcome.error = None
                    return outcome
                message = f"HTTP {status}: {self.target.error_message(_body(response))}"
                retry_after = seconds_until(response.headers.get("retry-after"))
                if status == 429:
                    self.report.rate_limited += 1
                    wait = min(
                        retry_after if retry_after is not None else 1.0, self.settings.max_retry_after_s
                    )
                    self.paused_until = max(self.paused_until, time.monotonic() + wait)
                    continue
                if status == 503 and retry_after is not None:
                    self._stop_unavailable(message, time.time() + retry_after)
                    outcome.error = message
                    continue
                if status in (401, 403):
                    self.config_error = (
                        f"{self.target.name} refused revsync's credentials ({message}); fix the "
                        f"`{self.target.source}_default` connection's credentials or the role's permissions"
                    )
                    outcome.error = message
                    continue
                if status >= 500 or status in (408, 409, 425):
                    outcome.errors += 1
                    outcome.error, in_doubt = message, status != 503
                else:
                    outcome.state, outcome.error = "dead_lettered", message
                    return outcome
            if outcome.errors >= budget:
                outcome.state = "dead_lettered"
                outcome.error = (
                    f"gave up after {self.settings.max_errors} transient errors; last: {outcome.error}"
                )
                return outcome
            delay = random.uniform(
                0, min(self.settings.max_delay_s, self.settings.base_delay_s * 2**outcome.errors)
            )
            await asyncio.sleep(delay)

    async def close(self) -> None:
        await self.client.aclose()


def _body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text[:500]


def deliver(
    warehouse: Path | str,
    target: Target,
    base_url: str,
    credentials: dict[str, str],
    run_id: str,
    settings: DeliverySettings | None = None,
    auth_for: Callable[[dict[str, str]], Any] | None = None,
) -> DeliveryReport:
    """Send `target`'s sendable outbox rows; the report. Raises TargetUnavailable / PushConfigError
    after recording what was answered (the rest stays sendable for the next run)."""
    from revsync.connectors.registry import CONNECTORS

    settings = settings or DeliverySettings()
    auth = (auth_for or CONNECTORS[target.source].auth)(credentials)
    return asyncio.run(_deliver(warehouse, target, base_url, auth, run_id, settings))


async def _deliver(
    warehouse: Path | str, target: Target, base_url: str, auth: Any, run_id: str, settings: DeliverySettings
) -> DeliveryReport:
    report = DeliveryReport(target.name, run_id)
    started = time.monotonic()
    engine = state_engine(warehouse)
    sender = _Sender(target, base_url, auth, settings, report)
    try:
        with writer_lock(warehouse), engine.begin() as con:
            doubtful = rows(con, "target = :target and state = 'sent'", {"target": target.name})
        if doubtful:
            log.info(
                "push %s: checking %d in-doubt writes from an interrupted run", target.name, len(doubtful)
            )
            await _settle_checks(engine, warehouse, sender, doubtful, run_id, report)
        await _Pipeline(engine, warehouse, target, sender, settings, run_id, report, started).run()
        with engine.connect() as con:
            report.held = int(
                con.execute(
                    sa.text(f"select count(*) from {OUTBOX} where {HELD}"), {"target": target.name}
                ).scalar_one()
            )
    finally:
        await sender.close()
        engine.dispose()
        report.seconds = time.monotonic() - started
    if sender.config_error:
        raise PushConfigError(sender.config_error)
    if sender.unavailable:
        raise sender.unavailable
    return report


class _Pipeline:
    """The waves without a barrier between them: claimed writes queue for the sender's slots, and while
    requests are in flight the answered ones are settled and the next writes claimed, in one warehouse
    session (lock, transaction) at a time, run in a worker thread so the event loop keeps sending.

    A session settles what was answered since the last one, then claims the writes now eligible (which
    settling may just have made so: a customer's next write waits for its predecessor's outcome), at
    most enough to keep `settings.chunk` queued. Each claim commits before its writes are queued; each
    session's settle is one transaction. Once the sender stops (maintenance, refused credentials), no
    more is claimed; what was claimed drains through the sender (answered `not sent`) and is settled."""

    def __init__(
        self,
        engine: sa.Engine,
        warehouse: Path | str,
        target: Target,
        sender: _Sender,
        settings: DeliverySettings,
        run_id: str,
        report: DeliveryReport,
        started: float,
    ):
        self.engine, self.warehouse, self.target, self.sender = engine, warehouse, target, sender
        self.settings, self.run_id, self.report, self.started = settings, run_id, report, started
        self.queue: asyncio.Queue[dict | None] = asyncio.Queue()
        self.answered: list[tuple[dict, Outcome]] = []  # not settled yet
        self.busy = 0  # claimed writes queued or in a request
        self.attempted: set[str] = set()
        self.wake = asyncio.Event()
        self.concurrency = settings.concurrency or target.concurrency
        # a session when this few writes are left queued (or when this many answers wait to be settled)
        self.low_water = max(4 * self.concurrency, settings.chunk // 4)
        self.last_progress = started

    async def _worker(self) -> None:
        while (change := await self.queue.get()) is not None:
            try:
                outcome = await self.sender.send(change)
            except BaseException:
                self.busy -= 1
                self.wake.set()
                raise
            self.answered.append((change, outcome))
            self.busy -= 1
            self.wake.set()

    def _session(self, answered: list[tuple[dict, Outcome]], want: int) -> list[dict]:
        """One warehouse session (worker thread, writer lock held): settle `answered` in one
        transaction, then claim up to `want` writes in another (committed before they are queued)."""
        with writer_lock(self.warehouse), self.engine.connect() as con:
            if answered:
                with con.begin():
                    changes = {c["idempotency_key"]: c for c, _ in answered}
                    settle(con, [o for _, o in answered], self.run_id, changes)
            if want <= 0:
                return []
            with con.begin():
                batch = _eligible(con, self.target.name, want, self.settings.max_errors, self.attempted)
                claimed = set(claim(con, [c["idempotency_key"] for c in batch], self.run_id))
        return [c for c in batch if c["idempotency_key"] in claimed]

    async def run(self) -> None:
        workers = [asyncio.create_task(self._worker()) for _ in range(self.concurrency)]
        try:
            await self._coordinate()
        except BaseException:
            # claimed writes not answered stay `sent`: in doubt, checked before the next run resends
            for worker in workers:
                worker.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            raise
        for _ in workers:
            self.queue.put_nowait(None)
        await asyncio.gather(*workers)

    async def _coordinate(self) -> None:
        exhausted = False  # the last claim found nothing eligible that was not in flight
        while True:
            queued = self.queue.qsize()
            stopped = self.sender.stopped
            settle_now = len(self.answered) >= self.low_water or (self.busy == 0 and self.answered)
            claim_now = not stopped and queued < self.low_water and (not exhausted or bool(self.answered))
            if self.busy == 0 and not self.answered and (stopped or exhausted):
                return
            if not settle_now and not claim_now:
                self.wake.clear()
                await self.wake.wait()
                continue
            answered, self.answered = self.answered, []
            want = self.settings.chunk - queued if claim_now else 0
            batch = await asyncio.to_thread(self._session, answered, want)
            self._count(answered)
            if want > 0:
                exhausted = not batch
            for change in batch:
                change["attempts"] = int(change.get("attempts") or 0) + 1
                change["payload"] = _text(change["payload"])
                self.attempted.add(change["idempotency_key"])
                self.busy += 1
                self.queue.put_nowait(change)
            self._progress()

    def _count(self, answered: list[tuple[dict, Outcome]]) -> None:
        if answered:
            _count(self.report, [o for _, o in answered], {c["idempotency_key"]: c for c, _ in answered})

    def _progress(self) -> None:
        if time.monotonic() - self.last_progress >= PROGRESS_EVERY_S:
            self.last_progress = time.monotonic()
            log.info(
                "push %s: %d acknowledged, %d dead-lettered, %.0f writes/s",
                self.target.name,
                self.report.acknowledged,
                self.report.dead_lettered,
                self.report.acknowledged / max(self.last_progress - self.started, 1e-9),
            )


async def _settle_checks(
    engine: sa.Engine,
    warehouse: Path | str,
    sender: _Sender,
    doubtful: list[dict],
    run_id: str,
    report: DeliveryReport,
) -> None:
    async def one(change: dict) -> Outcome:
        async with sender.slots:
            found = await sender.check(change)
        if found is not None:
            return Outcome(change["idempotency_key"], "acknowledged", 0, 0, 200, None, found, checked=True)
        return Outcome(
            change["idempotency_key"],
            "failed",
            0,
            0,
            None,
            "in doubt after an interrupted run: not applied, resent",
        )

    outcomes = await asyncio.gather(*(one(c) for c in doubtful))
    with writer_lock(warehouse), engine.begin() as con:
        settle(con, outcomes, run_id, {c["idempotency_key"]: c for c in doubtful})
    report.found_applied += sum(o.state == "acknowledged" for o in outcomes)


def _count(report: DeliveryReport, outcomes: list[Outcome], changes: dict[str, dict]) -> None:
    for outcome in outcomes:
        if outcome.state == "acknowledged":
            report.acknowledged += 1
            report.found_applied += outcome.checked
        elif outcome.state == "dead_lettered":
            report.dead_lettered += 1
            change = changes[outcome.key]
            report.dead_letters.append(
                {
                    "idempotency_key": outcome.key,
                    "record_type": change["record_type"],
                    "source_id": change.get("source_id"),
                    "customer_key": change.get("customer_key"),
                    "error": outcome.error,
                }
            )
        else:
            report.failed += 1


def _text(payload: Any) -> str:
    return payload if isinstance(payload, str) else json.dumps(payload, sort_keys=True, separators=(",", ":"))
