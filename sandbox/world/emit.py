"""Turn planned customers into vendor rows, keyed by temporary keys (`k`) instead of vendor ids.

Rows land in staging tables `g_<table>`; `finalize.py` orders them by creation time, assigns seqs and
vendor ids, and resolves the temporary foreign keys. Each injected defect or benign difference is
written here, next to the row it changes, together with its ground-truth / benign entry.
"""

from __future__ import annotations

import json
import random
from collections import defaultdict

from sandbox.world.catalog import (
    CURRENCIES,
    DAY,
    DOWNGRADE_TIER,
    FIRST_NAMES,
    GRACE_PERIOD,
    HOUR,
    LAST_NAMES,
    LEGAL_SUFFIX,
    ONBOARDING_SLA,
    PLANS,
    SYNC_SLA,
    TICKET_SUBJECTS,
    TIERS,
    company_name,
)
from sandbox.world.plan import ANCHOR_SYSTEM, Customer, Invoice, Subscription, arr_major, price_minor

DUPLICATE_OFFSET = 10**12  # temp key of a planted duplicate ERP customer
PRODUCT_KEYS = {plan: i + 1 for i, plan in enumerate(PLANS)}
INTERVALS = ("month", "year")
# (plan, interval, currency) -> temp key of its Stripe price, in catalogue order
PRICE_KEYS = {
    combo: n + 1 for n, combo in enumerate((p, i, c) for p in PLANS for i in INTERVALS for c in CURRENCIES)
}
SUBSCRIPTION_METADATA = {plan: json.dumps({"plan": plan}) for plan in PLANS}


# benign differences planned per customer and recorded against its Stripe customer
CUSTOMER_BENIGN = frozenset(
    {"trial", "zero_decimal_currency", "arr_within_tolerance", "cancel_at_period_end"}
)


def uniform(rng: random.Random, lo: int, hi: int) -> int:
    """An int in [lo, hi]; a cheaper stand-in for randint on the hot paths."""
    return lo + int(rng.random() * (hi - lo + 1))


def _major(minor: int, currency: str) -> float:
    return minor / 10 ** CURRENCIES[currency][1]


class Emitter:
    """Collects staging rows for one chunk; `rows[table]` is a list of tuples in staging column order."""

    def __init__(self, seed: int, chunk: int, now: int) -> None:
        self.rng = random.Random(seed * 7_000_003 + chunk)
        self.now = now
        self.rows: dict[str, list[tuple]] = defaultdict(list)

    # -- bookkeeping ------------------------------------------------------------------------------
    def truth(
        self, kind: str, table: str, key: int, customer: Customer, event_at: int, wait: int = 0, **details
    ) -> None:
        self.rows["truth"].append(
            (
                kind,
                ANCHOR_SYSTEM[kind],
                table,
                key,
                customer.ref,
                "generate",
                None,
                event_at,
                event_at + wait,
                json.dumps(details),
            )
        )

    def benign(self, kind: str, system: str, table: str, key: int, customer: Customer, **details) -> None:
        self.rows["benign"].append((kind, system, table, key, customer.ref, json.dumps(details), self.now))

    def _lag(self, after: int, most: int) -> int:
        """A time shortly after `after` (an integration's sync lag), never in the future."""
        return min(after + uniform(self.rng, 60, most), self.now - 1)

    # -- one customer -----------------------------------------------------------------------------
    def customer(self, c: Customer) -> None:
        display, domain = company_name(c.name_index)
        legal = f"{display} {LEGAL_SUFFIX[c.currency]}"
        rng = self.rng
        stripe = c.lifecycle != "prospect"
        in_erp = c.lifecycle in ("active", "churned") and c.defect != "customer_missing_in_erp"
        self.rows["company_refs"].append(
            (
                c.ref,
                c.key if stripe else None,
                c.key,
                c.key if stripe else None,
                c.key if in_erp else None,
                domain,
            )
        )
        self._hubspot(c, display, domain, stripe)
        if not stripe:
            return
        for kind in sorted(c.benign & CUSTOMER_BENIGN):
            if kind == "arr_within_tolerance" and c.defect == "crm_arr_mismatch":
                continue  # the planned noise was replaced by the defect
            self.benign(kind, "stripe", "stripe_customers", c.key, c)
        links_hubspot = rng.random() < 0.85
        self.rows["stripe_customers"].append(
            (
                c.key,
                legal,
                f"billing@{domain}",
                c.currency,
                0,
                c.delinquent_since is not None,
                c.key if links_hubspot else None,
                c.signup,
                c.signup,
            )
        )
        for sub in c.subs:
            self._subscription(c, sub)
        self._zendesk(c, display, domain)
        if c.defect == "customer_missing_in_erp":
            self.truth(c.defect, "stripe_customers", c.key, c, c.signup, live_subscriptions=len(c.live_subs))
        if in_erp:
            self._netsuite(c, legal, domain)

    def _subscription(self, c: Customer, sub: Subscription) -> None:
        now = self.now
        self.rows["stripe_subscriptions"].append(
            (
                sub.key,
                c.key,
                PRICE_KEYS[(sub.plan, sub.interval, c.currency)],
                sub.quantity,
                c.currency,
                sub.status,
                sub.cancel_at_period_end,
                sub.current_period_start,
                sub.current_period_end,
                sub.start if sub.status == "trialing" else None,
                sub.current_period_end if sub.status == "trialing" else None,
                sub.canceled_at,
                sub.ended_at,
                sub.start,
                SUBSCRIPTION_METADATA[sub.plan],
                sub.created,
                sub.canceled_at or sub.created,
            )
        )
        for n, invoice in enumerate(sub.invoices):
            self._invoice(c, sub, invoice, n)
        if sub.live and sub.plan != "starter":
            for week in range(1, 5):
                start = now - week * 7 * DAY
                if start > sub.start:
                    self.rows["stripe_usage_records"].append(
                        (
                            sub.key * 10 + week,
                            c.key,
                            sub.key,
                            "api_calls",
                            uniform(self.rng, 1_000, 90_000) * sub.quantity,
                            start,
                            start + 7 * DAY,
                            start + 7 * DAY,
                            start + 7 * DAY,
                        )
                    )

    def _invoice(self, c: Customer, sub: Subscription, inv: Invoice, n: int) -> None:
        rng = self.rng
        finalized = inv.period_start + 60
        # nothing is stamped after the world's now: an invoice finalized within the hour is paid by now
        paid_at = min(finalized + uniform(rng, 60, HOUR), self.now - 1) if inv.paid else None
        paid = inv.total_minor if inv.paid else 0
        self.rows["stripe_invoices"].append(
            (
                inv.key,
                f"{c.ref}-{n + 1:04d}",
                c.key,
                sub.key,
                c.currency,
                "paid" if inv.paid else "open",
                inv.reason,
                inv.total_minor,
                inv.total_minor,
                paid,
                inv.total_minor - paid,
                inv.period_start,
                inv.period_end,
                finalized,
                finalized,
                paid_at,
                None,
                inv.period_start,
                paid_at or finalized,
            )
        )
        if inv.credit_minor:
            created = min(paid_at + uniform(rng, DAY, 2 * DAY), self.now - 1)
            inv.credit_at = created
            voided = min(created + HOUR, self.now - 1) if inv.credit_void else None
            self.rows["stripe_credit_notes"].append(
                (
                    inv.key,
                    f"{c.ref}-CN-{n + 1:04d}",
                    c.key,
                    inv.key,
                    c.currency,
                    inv.credit_minor,
                    "void" if inv.credit_void else "issued",
                    "post_payment",
                    "requested_by_customer",
                    voided,
                    created,
                    voided or created,
                )
            )
            if inv.credit_void:
                self.benign("void_credit_note", "stripe", "stripe_credit_notes", inv.key, c)

    def _hubspot(self, c: Customer, display: str, domain: str, stripe: bool) -> None:
        rng, now = self.rng, self.now
        name = display.upper() if rng.random() < 0.1 else display
        if name != display:
            self.benign("name_formatting", "hubspot", "hubspot_companies", c.key, c)
        billing_arr = sum(arr_major(s, c.currency) for s in c.live_subs)
        if c.lifecycle == "trial":  # sales books the expected ARR at close; billing has none during trial
            arr = sum(arr_major(s, c.currency) for s in c.subs)
        elif c.defect == "crm_arr_mismatch":
            arr = billing_arr * rng.choice((0.6, 0.75, 1.2, 1.4))
            self.truth(c.defect, "hubspot_companies", c.key, c, now, billing_arr=billing_arr, crm_arr=arr)
        else:
            arr = billing_arr * (1 + c.arr_noise)
        stage = "customer" if stripe else ("customer" if c.deal_closed_at else "opportunity")
        created = c.signup - uniform(rng, DAY, 30 * DAY)
        self.rows["hubspot_companies"].append(
            (
                c.key,
                name,
                domain,
                stage,
                round(arr, 2),
                c.currency.upper(),
                c.key if stripe and rng.random() < 0.6 else None,
                False,
                created,
                max(created, c.subs[-1].created if c.subs else created),
            )
        )
        for j in range(uniform(rng, 1, 3)):
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            self.rows["hubspot_contacts"].append(
                (
                    c.key * 10 + j,
                    f"{first.lower()}.{last.lower()}{j}@{domain}",
                    first,
                    last,
                    c.key,
                    False,
                    created + j * HOUR,
                    created + j * HOUR,
                )
            )
        if c.deal_closed_at is not None:
            plan = c.subs[0].plan if c.subs else rng.choice(list(PLANS))
            amount = arr_major(c.subs[0], c.currency) if c.subs else PLANS[plan][1] * 12
            opened = min(c.deal_closed_at - 20 * DAY, created)
            self.rows["hubspot_deals"].append(
                (
                    c.key * 10,
                    f"{display} - new business",
                    "closedwon",
                    "default",
                    round(amount, 2),
                    c.currency.upper(),
                    plan,
                    c.key,
                    c.deal_closed_at,
                    False,
                    opened,
                    c.deal_closed_at,
                )
            )
            if c.defect == "closed_won_without_subscription":
                self.truth(c.defect, "hubspot_deals", c.key * 10, c, c.deal_closed_at, ONBOARDING_SLA)
            if "onboarding_pending" in c.benign:
                self.benign("onboarding_pending", "hubspot", "hubspot_deals", c.key * 10, c)
        if rng.random() < 0.3 or not stripe:
            stage = rng.choice(("appointmentscheduled", "qualifiedtobuy", "closedlost"))
            at = now - uniform(rng, DAY, 90 * DAY)
            self.rows["hubspot_deals"].append(
                (
                    c.key * 10 + 1,
                    f"{display} - expansion",
                    stage,
                    "default",
                    5000.0,
                    c.currency.upper(),
                    "growth",
                    c.key,
                    at if stage == "closedlost" else None,
                    False,
                    at - 10 * DAY,
                    at,
                )
            )

    def _expected_tier(self, c: Customer) -> str:
        if c.past_grace or not any(s.status in ("active", "past_due", "trialing") for s in c.subs):
            return DOWNGRADE_TIER
        live = [s for s in c.subs if s.status in ("active", "past_due", "trialing")]
        return max((PLANS[s.plan][0] for s in live), key=TIERS.index)

    def _zendesk(self, c: Customer, display: str, domain: str) -> None:
        rng, now = self.rng, self.now
        expected = self._expected_tier(c)
        tier = expected
        plan = max((s.plan for s in c.subs), key=list(PLANS).index)
        if c.defect == "entitlement_tier_mismatch":
            tier = rng.choice([t for t in TIERS if t != expected])
            self.truth(c.defect, "zendesk_organizations", c.key, c, now, expected=expected, actual=tier)
        elif c.defect == "entitlement_on_delinquent_account":
            tier = PLANS[plan][0]
            self.truth(
                c.defect, "zendesk_organizations", c.key, c, c.delinquent_since, GRACE_PERIOD, tier=tier
            )
        elif c.defect == "entitlement_after_cancellation":
            ended = max(s.ended_at for s in c.subs)
            tier = PLANS[plan][0]
            self.truth(c.defect, "zendesk_organizations", c.key, c, ended, tier=tier)
        if c.past_grace and c.defect is None:
            self.benign("delinquent_downgraded", "zendesk", "zendesk_organizations", c.key, c)
        if c.delinquent_since is not None and not c.past_grace:
            self.benign("past_due_within_grace", "zendesk", "zendesk_organizations", c.key, c)
        shown_tier = tier.capitalize() if c.defect is None and rng.random() < 0.1 else tier
        if shown_tier != tier:
            self.benign("tier_case", "zendesk", "zendesk_organizations", c.key, c)
        link = rng.random()
        upper = 0.85 <= link < 0.9
        if upper:
            self.benign("id_case", "zendesk", "zendesk_organizations", c.key, c)
        created = c.signup + uniform(rng, HOUR, DAY)
        created = min(created, now - 60)
        self.rows["zendesk_organizations"].append(
            (
                c.key,
                display,
                c.key if link < 0.9 else None,
                upper,
                json.dumps([domain]),
                json.dumps({"support_tier": shown_tier, "plan": plan}),
                json.dumps([c.lifecycle]),
                created,
                created,
            )
        )
        users = []
        for j in range(uniform(rng, 1, 3)):
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            users.append(c.key * 10 + j)
            self.rows["zendesk_users"].append(
                (
                    c.key * 10 + j,
                    f"{first} {last}",
                    f"{first.lower()}.{last.lower()}{j}@{domain}",
                    "end-user",
                    c.key,
                    created,
                    created,
                )
            )
        for j in range(rng.choice((0, 1, 1, 2, 3, 5))):
            opened = uniform(rng, created, now - 60)
            status = rng.choice(("new", "open", "pending", "solved", "closed", "closed"))
            self.rows["zendesk_tickets"].append(
                (
                    c.key * 10 + j,
                    rng.choice(TICKET_SUBJECTS),
                    status,
                    rng.choice(("low", "normal", "high")),
                    rng.choice(users),
                    c.key,
                    opened,
                    min(opened + uniform(rng, 60, 5 * DAY), now - 1),
                )
            )

    def _netsuite(self, c: Customer, legal: str, domain: str) -> None:
        rng = self.rng
        subsidiary = CURRENCIES[c.currency][3]
        link = rng.random()
        upper = 0.85 <= link < 0.9
        if upper:
            self.benign("id_case", "netsuite", "netsuite_customers", c.key, c)
        name = legal.upper() if rng.random() < 0.1 else legal
        if name != legal:
            self.benign("name_formatting", "netsuite", "netsuite_customers", c.key, c)
        created = self._lag(c.signup, 12 * HOUR)
        currency = c.currency.upper()
        self.rows["netsuite_customers"].append(
            (
                c.key,
                c.key if link < 0.9 else None,
                upper,
                f"CUST{c.key:07d}",
                name,
                f"billing@{domain}",
                subsidiary,
                currency,
                False,
                created,
                created,
            )
        )
        if c.defect == "duplicate_erp_customer":
            dup = c.key + DUPLICATE_OFFSET
            later = self._lag(created + 30 * DAY, 5 * DAY)
            self.rows["netsuite_customers"].append(
                (
                    dup,
                    None,
                    False,
                    f"CUST{c.key:07d}-1",
                    legal.replace(",", "").lower().title(),
                    f"ap@{domain}",
                    subsidiary,
                    currency,
                    False,
                    later,
                    later,
                )
            )
            for key in (c.key, dup):
                self.truth(c.defect, "netsuite_customers", key, c, later, group=c.ref)
        for sub in c.subs:
            self._netsuite_order(c, sub, currency)

    def _netsuite_order(self, c: Customer, sub: Subscription, currency: str) -> None:
        now = self.now
        per_period = _major(price_minor(sub.plan, sub.interval, c.currency) * sub.quantity, c.currency)
        if sub.defect == "subscription_missing_in_erp":
            self.truth(sub.defect, "stripe_subscriptions", sub.key, c, sub.created, status=sub.status)
        else:
            created = self._lag(sub.created, max(120, min(6 * HOUR, (now - sub.created) // 2)))
            open_order = sub.live or sub.defect == "erp_contract_without_active_subscription"
            closed_at = sub.ended_at if not open_order else None
            self.rows["netsuite_sales_orders"].append(
                (
                    sub.key,
                    sub.key,
                    c.key,
                    currency,
                    per_period,
                    "pendingBilling" if open_order else "closed",
                    f"{sub.plan.title()} ({sub.interval}ly)",
                    sub.start,
                    sub.ended_at,
                    created,
                    max(created, closed_at or created),
                )
            )
            if sub.defect == "erp_contract_without_active_subscription":
                self.truth(
                    sub.defect,
                    "netsuite_sales_orders",
                    sub.key,
                    c,
                    sub.ended_at,
                    subscription_status=sub.status,
                )
        for inv in sub.invoices:
            self._netsuite_invoice(c, sub, inv, currency)

    def _netsuite_invoice(self, c: Customer, sub: Subscription, inv: Invoice, currency: str) -> None:
        rng = self.rng
        finalized = inv.period_start + 60
        if inv.in_erp_lagging:
            self.benign("invoice_sync_lag", "stripe", "stripe_invoices", inv.key, c)
            return
        if inv.defect == "invoice_missing_in_erp":
            self.truth(inv.defect, "stripe_invoices", inv.key, c, finalized, SYNC_SLA)
            return
        total = _major(inv.total_minor, c.currency)
        erp_currency = currency
        paid_in_erp = inv.paid
        if inv.defect == "invoice_amount_mismatch":
            total = round(total + rng.choice((-1, 1)) * max(1.0, round(total * 0.07, 2)), 2)
            self.truth(inv.defect, "stripe_invoices", inv.key, c, finalized, erp_total=total)
        elif inv.defect == "invoice_currency_mismatch":
            erp_currency = rng.choice([k.upper() for k in CURRENCIES if k.upper() != currency])
            self.truth(inv.defect, "stripe_invoices", inv.key, c, finalized, erp_currency=erp_currency)
        elif inv.defect == "payment_status_mismatch":
            paid_in_erp = False
            self.truth(
                inv.defect, "stripe_invoices", inv.key, c, finalized, stripe_status="paid", erp_status="open"
            )
        created = self._lag(finalized, 2 * HOUR)
        so_key = sub.key if sub.defect != "subscription_missing_in_erp" else None
        self.rows["netsuite_invoices"].append(
            (
                inv.key,
                inv.key,
                c.key,
                so_key,
                erp_currency,
                total,
                0.0 if paid_in_erp else total,
                "paidInFull" if paid_in_erp else "open",
                finalized,
                finalized,
                created,
                created,
            )
        )
        if inv.credit_minor and not inv.credit_void:
            if inv.defect == "credit_note_missing_in_erp":
                self.truth(inv.defect, "stripe_credit_notes", inv.key, c, inv.credit_at)
            else:
                at = self._lag(inv.credit_at, 6 * HOUR)
                self.rows["netsuite_credit_memos"].append(
                    (
                        inv.key,
                        inv.key,
                        c.key,
                        inv.key,
                        erp_currency,
                        _major(inv.credit_minor, c.currency),
                        at,
                        at,
                        at,
                    )
                )
