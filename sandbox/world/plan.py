"""Plan one chunk of customers: who they are, what they subscribe to, and which defect each carries.

A plan is light Python data (no vendor shapes yet); `emit.py` turns it into rows. Planning and defect
assignment are separate from emission so the rules that decide what is a discrepancy live in one place.

Defect assignment keeps the ground truth unambiguous: every customer carries at most one
customer-level defect, a record carries at most one record-level defect, and records belonging to a
customer missing from the ERP carry none (their absence is implied by the customer's).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from sandbox.world.catalog import (
    ANNUAL_MONTHS,
    CURRENCIES,
    DAY,
    GRACE_PERIOD,
    HOUR,
    MARGIN,
    MONTH,
    PLAN_WEIGHTS,
    PLANS,
    SYNC_SLA,
    THRESHOLDS,
    YEAR,
)

MISMATCH_TYPES = (
    "customer_missing_in_erp",
    "duplicate_erp_customer",
    "subscription_missing_in_erp",
    "erp_contract_without_active_subscription",
    "invoice_missing_in_erp",
    "invoice_amount_mismatch",
    "invoice_currency_mismatch",
    "payment_status_mismatch",
    "credit_note_missing_in_erp",
    "entitlement_tier_mismatch",
    "entitlement_on_delinquent_account",
    "entitlement_after_cancellation",
    "closed_won_without_subscription",
    "crm_arr_mismatch",
)
ANCHOR_SYSTEM = {
    "customer_missing_in_erp": "stripe",
    "duplicate_erp_customer": "netsuite",
    "subscription_missing_in_erp": "stripe",
    "erp_contract_without_active_subscription": "netsuite",
    "invoice_missing_in_erp": "stripe",
    "invoice_amount_mismatch": "stripe",
    "invoice_currency_mismatch": "stripe",
    "payment_status_mismatch": "stripe",
    "credit_note_missing_in_erp": "stripe",
    "entitlement_tier_mismatch": "zendesk",
    "entitlement_on_delinquent_account": "zendesk",
    "entitlement_after_cancellation": "zendesk",
    "closed_won_without_subscription": "hubspot",
    "crm_arr_mismatch": "hubspot",
}
DEFAULT_RATE = 0.02
MIN_PER_TYPE = 2  # each type appears at least this often per chunk when enough records are eligible


@dataclass
class Invoice:
    key: int
    period_start: int
    period_end: int
    total_minor: int
    paid: bool
    reason: str = "subscription_cycle"
    credit_minor: int = 0  # a post-payment credit note of this amount (0: none)
    credit_void: bool = False
    credit_at: int = 0  # when the credit note was issued (set at emission)
    in_erp_lagging: bool = False  # benign: finalized within the sync SLA, not yet in the ERP
    defect: str | None = None


@dataclass
class Subscription:
    key: int
    plan: str
    interval: str
    quantity: int
    status: str  # trialing | active | past_due | canceled
    start: int
    created: int
    current_period_start: int
    current_period_end: int
    ended_at: int | None = None
    canceled_at: int | None = None
    cancel_at_period_end: bool = False
    invoices: list[Invoice] = field(default_factory=list)
    defect: str | None = None

    @property
    def live(self) -> bool:
        return self.status in ("active", "past_due")


@dataclass
class Customer:
    key: int
    ref: str
    name_index: int
    currency: str
    signup: int
    lifecycle: str  # trial | active | churned | prospect
    subs: list[Subscription] = field(default_factory=list)
    deal_closed_at: int | None = None
    delinquent_since: int | None = None  # due date of the oldest unpaid invoice
    defect: str | None = None
    benign: set[str] = field(default_factory=set)
    arr_noise: float = 0.0

    @property
    def live_subs(self) -> list[Subscription]:
        return [s for s in self.subs if s.live]

    past_grace: bool = False  # delinquent for longer than the grace period


def price_minor(plan: str, interval: str, currency: str) -> int:
    """List price per seat and period, in the currency's minor units."""
    _, exponent, rate, _ = CURRENCIES[currency]
    monthly = PLANS[plan][1] * rate
    major = monthly * (ANNUAL_MONTHS if interval == "year" else 1)
    return int(round(major)) * 10**exponent


def arr_major(sub: Subscription, currency: str) -> float:
    _, exponent, _, _ = CURRENCIES[currency]
    per_period = price_minor(sub.plan, sub.interval, currency) * sub.quantity / 10**exponent
    return per_period * (12 if sub.interval == "month" else 1)


def _away_from_thresholds(age: int) -> int:
    """Nudge an age so it lies at least MARGIN from every rule threshold."""
    for threshold in THRESHOLDS:
        if abs(age - threshold) < MARGIN:
            age = threshold + MARGIN + 60
    return age


def _choice(rng: random.Random, weights: dict[str, float]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


class Planner:
    """Plans customers `first_key..first_key+count-1` with a chunk-local random stream."""

    def __init__(self, seed: int, chunk: int, now: int, rates: dict[str, float]):
        self.rng = random.Random(seed * 1_000_003 + chunk)
        self.now = now
        self.rates = rates
        self._keys = {"sub": 0, "inv": 0}
        self.chunk = chunk

    def _key(self, kind: str) -> int:
        self._keys[kind] += 1
        return self.chunk * 100_000_000 + self._keys[kind]

    # -- customers --------------------------------------------------------------------------------
    def customers(self, first_key: int, count: int, prospects: int) -> list[Customer]:
        plans = [self._customer(first_key + i) for i in range(count)]
        plans += [self._prospect(first_key + count + i) for i in range(prospects)]
        self._assign_defects(plans)
        return plans

    def _customer(self, key: int) -> Customer:
        rng, now = self.rng, self.now
        currency = _choice(rng, {c: w for c, (w, *_) in CURRENCIES.items()})
        roll = rng.random()
        lifecycle = "trial" if roll < 0.05 else "churned" if roll < 0.13 else "active"
        if lifecycle == "trial":
            signup = now - _away_from_thresholds(rng.randint(2 * HOUR, 13 * DAY))
        else:
            signup = now - rng.randint(40 * DAY, 420 * DAY)
        customer = Customer(key, f"C{key:07d}", key - 1, currency, signup, lifecycle)
        n_subs = 1 if lifecycle == "trial" else rng.choices((1, 2, 3), weights=(70, 22, 8))[0]
        for index in range(n_subs):
            customer.subs.append(self._subscription(customer, index))
        if lifecycle == "active" and not customer.live_subs:
            customer.lifecycle = "churned"
        if lifecycle == "churned" and any(s.live for s in customer.subs):
            customer.lifecycle = "active"
        first = min(customer.subs, key=lambda s: s.start)
        customer.deal_closed_at = first.start - rng.randint(HOUR, 3 * DAY)
        if customer.lifecycle == "active" and rng.random() < 0.06:
            self._make_past_due(customer)
        if customer.lifecycle == "active" and rng.random() < 0.2:
            customer.arr_noise = rng.choice((-1, 1)) * rng.uniform(0.0005, 0.005)
            customer.benign.add("arr_within_tolerance")
        if customer.lifecycle == "trial":
            customer.benign.add("trial")
        if currency == "jpy":
            customer.benign.add("zero_decimal_currency")
        return customer

    def _prospect(self, key: int) -> Customer:
        rng, now = self.rng, self.now
        currency = _choice(rng, {c: w for c, (w, *_) in CURRENCIES.items()})
        customer = Customer(
            key, f"C{key:07d}", key - 1, currency, now - rng.randint(10 * DAY, 400 * DAY), "prospect"
        )
        if rng.random() < 0.25:  # won recently, onboarding still inside its SLA
            customer.deal_closed_at = now - rng.randint(HOUR, 2 * DAY)
            customer.benign.add("onboarding_pending")
        return customer

    def _subscription(self, customer: Customer, index: int) -> Subscription:
        rng, now = self.rng, self.now
        plan = _choice(rng, PLAN_WEIGHTS)
        interval = "year" if rng.random() < 0.25 else "month"
        length = YEAR if interval == "year" else MONTH
        quantity = rng.randint(1, 12)
        key = self._key("sub")
        if customer.lifecycle == "trial":
            start = customer.signup
            sub = Subscription(
                key, plan, interval, quantity, "trialing", start, start, start, start + 14 * DAY
            )
            return sub
        earliest = customer.signup + (0 if index == 0 else rng.randint(DAY, 60 * DAY))
        canceled = customer.lifecycle == "churned" or (index > 0 and rng.random() < 0.15)
        if canceled:
            periods_available = (now - 2 * DAY - earliest) // length
            if periods_available >= 1:
                periods = rng.randint(1, int(min(periods_available, 18)))
                start = earliest + rng.randint(0, HOUR)
                ended = start + periods * length
                sub = Subscription(
                    key,
                    plan,
                    interval,
                    quantity,
                    "canceled",
                    start,
                    start,
                    ended - length,
                    ended,
                    ended_at=ended,
                    canceled_at=ended - rng.randint(DAY, 20 * DAY),
                )
                self._invoices(sub, customer, periods)
                return sub
        phase = _away_from_thresholds(rng.randint(5 * 60, length - HOUR))
        current_start = now - phase
        if current_start < earliest:  # too young for a previous period: start the subscription now-phase
            earliest = current_start
        periods_before = (current_start - earliest) // length
        start = current_start - periods_before * length
        sub = Subscription(
            key, plan, interval, quantity, "active", start, start, current_start, current_start + length
        )
        if rng.random() < 0.04:
            sub.cancel_at_period_end = True
            customer.benign.add("cancel_at_period_end")
        self._invoices(sub, customer, periods_before + 1)
        return sub

    def _invoices(self, sub: Subscription, customer: Customer, count: int) -> None:
        rng, now = self.rng, self.now
        length = YEAR if sub.interval == "year" else MONTH
        amount = price_minor(sub.plan, sub.interval, customer.currency) * sub.quantity
        for j in range(count):
            start = sub.start + j * length
            invoice = Invoice(
                self._key("inv"),
                start,
                start + length,
                amount,
                True,
                "subscription_create" if j == 0 else "subscription_cycle",
            )
            age = now - start
            if age < SYNC_SLA - MARGIN and rng.random() < 0.5:
                invoice.in_erp_lagging = True
                customer.benign.add("invoice_sync_lag")
            elif age > 3 * DAY and rng.random() < 0.03:
                invoice.credit_minor = max(1, int(amount * rng.choice((0.1, 0.25, 0.5, 1.0))))
                if rng.random() < 0.05:
                    invoice.credit_void = True
                    customer.benign.add("void_credit_note")
            sub.invoices.append(invoice)

    def _make_past_due(self, customer: Customer) -> None:
        """The newest live subscription's current invoice failed; inside or past the grace period."""
        sub = max(customer.live_subs, key=lambda s: s.current_period_start)
        invoice = sub.invoices[-1]
        age = self.now - invoice.period_start
        if age < 2 * HOUR or invoice.credit_minor:
            return
        if age > GRACE_PERIOD + MARGIN or age < GRACE_PERIOD - MARGIN:
            sub.status = "past_due"
            invoice.paid = False
            invoice.in_erp_lagging = False
            customer.delinquent_since = invoice.period_start
            customer.past_grace = age > GRACE_PERIOD
            customer.benign.add("past_due_within_grace" if age < GRACE_PERIOD else "delinquent_downgraded")

    # -- defects ----------------------------------------------------------------------------------
    def _count(self, kind: str, pool_size: int) -> int:
        wanted = round(self.rates.get(kind, DEFAULT_RATE) * pool_size)
        return min(pool_size, max(wanted, MIN_PER_TYPE if self.rates.get(kind, DEFAULT_RATE) > 0 else 0))

    def _draw(self, kind: str, pool: list) -> list:
        return self.rng.sample(pool, self._count(kind, len(pool)))

    def _assign_defects(self, plans: list[Customer]) -> None:
        rng = self.rng

        def take(kind: str, eligible) -> None:
            for customer in self._draw(kind, [c for c in plans if c.defect is None and eligible(c)]):
                customer.defect = kind

        # Customer-level defects go to customers whose state the change stream will not move by itself
        # (no cancellation scheduled at period end, no grace period running out).
        def settled(c: Customer) -> bool:
            pending_end = any(s.cancel_at_period_end for s in c.subs)
            return not pending_end and (c.delinquent_since is None or c.past_grace)

        take("entitlement_on_delinquent_account", lambda c: c.past_grace and settled(c))
        take("entitlement_after_cancellation", lambda c: c.lifecycle == "churned")
        take("customer_missing_in_erp", lambda c: c.lifecycle == "active" and not c.past_grace and settled(c))
        take("duplicate_erp_customer", lambda c: c.lifecycle in ("active", "churned") and settled(c))
        take(
            "entitlement_tier_mismatch", lambda c: c.lifecycle == "active" and not c.past_grace and settled(c)
        )
        take("crm_arr_mismatch", lambda c: c.lifecycle == "active" and settled(c))
        take(
            "closed_won_without_subscription",
            lambda c: c.lifecycle == "prospect" and "onboarding_pending" not in c.benign,
        )
        for customer in plans:
            if customer.defect == "closed_won_without_subscription":
                customer.deal_closed_at = self.now - _away_from_thresholds(rng.randint(8 * DAY, 60 * DAY))

        in_erp = [
            c for c in plans if c.lifecycle in ("active", "churned") and c.defect != "customer_missing_in_erp"
        ]
        subs = [s for c in in_erp for s in c.subs]
        missing_pool = [s for c in in_erp if c.defect is None and settled(c) for s in c.subs if s.live]
        for sub in self._draw("subscription_missing_in_erp", missing_pool):
            sub.defect = "subscription_missing_in_erp"
        for sub in self._draw(
            "erp_contract_without_active_subscription",
            [s for s in subs if s.status == "canceled" and s.defect is None],
        ):
            sub.defect = "erp_contract_without_active_subscription"

        invoices = [
            i
            for c in in_erp
            for s in c.subs
            for i in s.invoices
            if not i.in_erp_lagging and not i.credit_minor and s.defect != "subscription_missing_in_erp"
        ]
        old = [i for i in invoices if self.now - i.period_start > SYNC_SLA + MARGIN]
        for kind, pool in (
            ("invoice_missing_in_erp", old),
            ("invoice_amount_mismatch", invoices),
            ("invoice_currency_mismatch", invoices),
            ("payment_status_mismatch", [i for i in old if i.paid]),
        ):
            for invoice in self._draw(kind, [i for i in pool if i.defect is None]):
                invoice.defect = kind
        credited = [
            i for c in in_erp for s in c.subs for i in s.invoices if i.credit_minor and not i.credit_void
        ]
        for invoice in self._draw("credit_note_missing_in_erp", credited):
            invoice.defect = "credit_note_missing_in_erp"
