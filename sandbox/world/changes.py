"""The change stream: `advance(con, minutes)` ages the world and applies a step of lifecycle events.

One step, atomically (nothing observes the world halfway):
1. Age: every `*_at` column moves `minutes` into the past (ARCHITECTURE.md, "Time").
2. Catch up: the simulated integration does what is now due, so a benign state never turns into a
   discrepancy the ground truth does not know — invoices lagging inside the sync SLA reach the ERP,
   grace periods that ran out end in a recovery or a tier downgrade, won deals are onboarded,
   trials convert, subscriptions renew or end at period end.
3. Events: sign-ups, upgrades with proration, cancellations, refunds, recoveries and usage hit
   customers that carry no discrepancy yet. Some downstream effects are deliberately lost (the
   integration bugs revsync exists to catch); each loss is written to the truth with its event time
   and the time its rule can first see it.
4. Serve what aging changed: records whose aged timestamps a mismatch rule compares with a threshold
   are re-served as changed (see `Step.serve_aged`), so a pipeline's copy landed before the step
   cannot disagree with the world about which side of the threshold they are on.

Everything written gets `updated_at` = now, and every Stripe change gets an event, as the vendors do.
Change clocks (`updated_at`, the events' `created`) of live changes are not aged: they are the vendors'
change feeds, on the wall clock (see `age`).
"""

from __future__ import annotations

import functools
import json
import random
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import duckdb

from sandbox.world.catalog import (
    CURRENCIES,
    DAY,
    DOWNGRADE_TIER,
    GRACE_PERIOD,
    HOUR,
    LEGAL_SUFFIX,
    MARGIN,
    MONTH,
    NAME_SPACE,
    ONBOARDING_SLA,
    PLANS,
    SYNC_SLA,
    TIERS,
    YEAR,
    company_name,
)
from sandbox.world.ids import STRIPE_PREFIX, numeric_id, stripe_id
from sandbox.world.plan import ANCHOR_SYSTEM, price_minor
from sandbox.world.truth import export_truth

EVENT_RATE = 0.002  # lifecycle events per customer per simulated hour
LOSS_RATE = 0.15  # share of events that lose one downstream effect
FAILED_RENEWAL_RATE = 0.05
LAG_SYNCED_AFTER = 12 * HOUR  # the integration's worst-case invoice lag, well inside the sync SLA
ONBOARDED_AFTER = 2 * DAY
# A customer with one of these discrepancies is frozen: catch-up work would change the very state the
# discrepancy is about (end its subscriptions, move its tier), so it only ages and renews.
CUSTOMER_LEVEL = frozenset(
    {
        "customer_missing_in_erp",
        "duplicate_erp_customer",
        "subscription_missing_in_erp",
        "entitlement_tier_mismatch",
        "entitlement_on_delinquent_account",
        "entitlement_after_cancellation",
        "closed_won_without_subscription",
        "crm_arr_mismatch",
    }
)
EVENT_KINDS = {
    "signup": 0.2,
    "upgrade": 0.2,
    "cancellation": 0.15,
    "refund": 0.15,
    "recovery": 0.1,
    "usage": 0.2,
}
STRIPE_PATHS = {
    "stripe_customers": "customers",
    "stripe_subscriptions": "subscriptions",
    "stripe_invoices": "invoices",
    "stripe_charges": "charges",
    "stripe_credit_notes": "credit_notes",
}
CREATED_EVENT = {
    "stripe_customers": "customer.created",
    "stripe_subscriptions": "customer.subscription.created",
    "stripe_invoices": "invoice.created",
    "stripe_credit_notes": "credit_note.created",
}
# world column -> the Stripe field it is served as, for events' previous_attributes
STRIPE_FIELD = {
    "current_period_start_at": "current_period_start",
    "current_period_end_at": "current_period_end",
    "amount_paid_minor": "amount_paid",
    "amount_remaining_minor": "amount_remaining",
    "amount_refunded_minor": "amount_refunded",
    "paid_at": "status_transitions.paid_at",
}
TIER_RANK = {tier: rank for rank, tier in enumerate(TIERS)}


@functools.cache
def _event_sql(select: str) -> str:
    from sandbox.server.world import struct_json

    return struct_json(select)


class Writer:
    """Writes records the way the vendors would: next seq, the id it encodes, updated_at = now."""

    def __init__(self, con: duckdb.DuckDBPyConnection, now: int) -> None:
        self.con = con
        self.now = now
        self.written: Counter[str] = Counter()
        self.ids: dict[str, set[str | int]] = defaultdict(set)  # table -> ids written in this step
        self._next: dict[str, int] = {}

    def peek_seq(self, table: str) -> int:
        """The seq the next row of `table` will get (this step is the only writer: counted here)."""
        if table not in self._next:
            self._next[table] = self.one(f"select coalesce(max(seq), 0) + 1 from {table}")[0]
        return self._next[table]

    def next_seq(self, table: str) -> int:
        seq = self.peek_seq(table)
        self._next[table] += 1
        return seq

    def one(self, sql: str, params: list | None = None) -> tuple | None:
        rows = self.con.execute(sql, params or []).fetchall()
        return rows[0] if rows else None

    def all(self, sql: str, params: list | None = None) -> list[tuple]:
        return self.con.execute(sql, params or []).fetchall()

    def insert(self, table: str, event: str | None = None, **values: Any) -> str | int:
        seq = self.next_seq(table)
        if table in STRIPE_PREFIX:
            new_id: str | int = stripe_id(table, seq)
        else:
            new_id = numeric_id(table, seq)
            new_id = new_id if table.startswith("zendesk_") else str(new_id)
        values.setdefault("created_at", self.now)
        values.setdefault("updated_at", self.now)
        columns = ["seq", "id", *values]
        self.con.execute(
            f"insert into {table} ({', '.join(columns)}) values ({', '.join('?' * len(columns))})",
            [seq, new_id, *values.values()],
        )
        self.written[f"{table}.created"] += 1
        self.ids[table].add(new_id)
        event = event or CREATED_EVENT.get(table)
        if event:
            self.event(event, table, new_id)
        return new_id

    def update(self, table: str, record_id: str | int, event: str | None = None, **values: Any) -> None:
        previous = None
        if event:
            previous = dict(
                zip(
                    values,
                    self.one(f"select {', '.join(values)} from {table} where id = ?", [record_id]),
                    strict=True,
                )
            )
        values["updated_at"] = self.now
        assignments = ", ".join(f"{column} = ?" for column in values)
        self.con.execute(f"update {table} set {assignments} where id = ?", [*values.values(), record_id])
        self.written[f"{table}.updated"] += 1
        self.ids[table].add(record_id)
        if event:
            self.event(event, table, record_id, previous)

    def touch(self, table: str, record_id: str | int, event: str | None = None) -> None:
        """Serve the record as changed now (updated_at = now, and a Stripe event) without changing it."""
        self.con.execute(f"update {table} set updated_at = ? where id = ?", [self.now, record_id])
        self.written[f"{table}.touched"] += 1
        self.ids[table].add(record_id)
        if event:
            self.event(event, table, record_id)

    def event(self, kind: str, table: str, object_id: str | int, previous: dict | None = None) -> None:
        """A Stripe event whose data.object is the object exactly as the API serves it now."""
        from sandbox.server.vendors.stripe_api import KINDS

        seq = self.one(f"select seq from {table} where id = ?", [object_id])[0]
        select = _event_sql(KINDS[STRIPE_PATHS[table]].resource.select)
        select = select.replace("$lo", str(seq)).replace("$hi", str(seq))
        doc = self.one(select)[1]
        previous_json = None
        if previous:
            previous_json = json.dumps({STRIPE_FIELD.get(k, k): v for k, v in previous.items()})
        event_seq = self.next_seq("stripe_events")
        self.con.execute(
            "insert into stripe_events values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                event_seq,
                stripe_id("stripe_events", event_seq),
                kind,
                STRIPE_PATHS[table].rstrip("s"),
                object_id,
                doc,
                previous_json,
                self.now,
                self.now,
            ],
        )
        self.written["stripe_events.created"] += 1


class Step:
    """One advance step over a world: catch-up work, then seeded lifecycle events."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        now: int,
        rng: random.Random,
        forced: frozenset[str] | None = None,
        customer: str | None = None,
    ) -> None:
        self.w = Writer(con, now)
        self.now = now
        self.rng = rng
        # steering (tests and demos, see `apply_event`): with `forced`, exactly these downstream effects
        # are lost wherever they may be, none else, and no coin decides; `customer` is the one events pick
        self.forced = forced
        self.chosen = customer
        self.touched: set[str] = set()  # customer refs changed in this step: one event each
        # customers already carrying a discrepancy: no new event may touch them
        truth = con.execute("select distinct customer_ref, mismatch_type from truth").fetchall()
        self.in_truth: set[str] = {ref for ref, _ in truth}
        self.frozen: set[str] = {ref for ref, kind in truth if kind in CUSTOMER_LEVEL}
        self.summary: Counter[str] = Counter()
        self._customers: dict[str, dict] = {}
        self._candidates: dict[tuple, list[str]] = {}

    # -- ground truth -------------------------------------------------------------------------------
    def lost(
        self,
        kind: str,
        anchor_id: str | int,
        ref: str,
        event: str,
        event_at: int,
        wait: int = 0,
        **details: Any,
    ) -> None:
        seq = self.w.next_seq("truth")
        self.w.con.execute(
            "insert into truth values (?, ?, ?, ?, ?, 'advance', ?, ?, ?, ?)",
            [
                seq,
                kind,
                ANCHOR_SYSTEM[kind],
                str(anchor_id),
                ref,
                event,
                event_at,
                event_at + wait,
                json.dumps(details),
            ],
        )
        self.summary[f"lost.{kind}"] += 1
        self.in_truth.add(ref)
        if kind in CUSTOMER_LEVEL:
            self.frozen.add(ref)

    def loses(self, *kinds: str) -> bool:
        """Whether an effect of one of `kinds` is lost here: a coin, or the steering's choice."""
        if self.forced is not None:
            return any(kind in self.forced for kind in kinds)
        return self.rng.random() < LOSS_RATE

    def loss_among(self, kinds: tuple[str, ...]) -> str | None:
        """Which one of `kinds` an event loses, if any (steered: the first of them that is forced)."""
        if self.forced is not None:
            return next((kind for kind in kinds if kind in self.forced), None)
        return self.rng.choice(kinds) if self.rng.random() < LOSS_RATE else None

    # -- lookups ------------------------------------------------------------------------------------
    def customer(self, ref: str) -> dict:
        """The customer's ids in each system and its currency (cached for the step; links update it)."""
        if ref in self._customers:
            return self._customers[ref]
        row = self.w.one(
            "select r.customer_ref, r.stripe_customer_id, r.hubspot_company_id, r.zendesk_organization_id, "
            "r.netsuite_customer_id, r.domain, c.currency from company_refs r "
            "left join stripe_customers c on c.id = r.stripe_customer_id where r.customer_ref = ?",
            [ref],
        )
        keys = ("ref", "stripe", "hubspot", "zendesk", "netsuite", "domain", "currency")
        found = self._customers[ref] = dict(zip(keys, row, strict=True))
        return found

    def link(self, ref: str, column: str, value: str | int) -> None:
        """Record a new system id of a customer in company_refs (and the step's cache)."""
        self.w.con.execute(f"update company_refs set {column} = ? where customer_ref = ?", [value, ref])
        self._customers.pop(ref, None)

    def plan_of(self, subscription_id: str) -> tuple[str, str, int]:
        """(plan, interval, quantity) of a subscription."""
        plan, interval, quantity = self.w.one(
            "select lower(p.name), pr.recurring_interval, s.quantity from stripe_subscriptions s "
            "join stripe_prices pr on pr.id = s.price join stripe_products p on p.id = pr.product "
            "where s.id = ?",
            [subscription_id],
        )
        return plan, interval, quantity

    def price_id(self, plan: str, interval: str, currency: str) -> str:
        return self.w.one(
            "select pr.id from stripe_prices pr join stripe_products p on p.id = pr.product "
            "where lower(p.name) = ? and pr.recurring_interval = ? and pr.currency = ?",
            [plan, interval, currency],
        )[0]

    def live_subscriptions(self, stripe_customer: str) -> list[str]:
        return [
            r[0]
            for r in self.w.all(
                "select id from stripe_subscriptions where customer = ? and status in ('active', 'past_due', "
                "'trialing') order by seq",
                [stripe_customer],
            )
        ]

    def expected_tier(self, stripe_customer: str) -> str:
        """The plan's tier, or the downgrade tier while delinquent past the grace period."""
        overdue = self.w.one(
            "select 1 from stripe_invoices where customer = ? and status = 'open' and due_at < ? limit 1",
            [stripe_customer, self.now - GRACE_PERIOD],
        )
        tiers = [PLANS[self.plan_of(s)[0]][0] for s in self.live_subscriptions(stripe_customer)]
        if overdue or not tiers:
            return DOWNGRADE_TIER
        return max(tiers, key=TIER_RANK.__getitem__)

    def billing_arr(self, stripe_customer: str, currency: str) -> float:
        exponent = CURRENCIES[currency][1]
        total = 0.0
        for sub in self.w.all(
            "select id from stripe_subscriptions where customer = ? and status in ('active', 'past_due')",
            [stripe_customer],
        ):
            plan, interval, quantity = self.plan_of(sub[0])
            per_period = price_minor(plan, interval, currency) * quantity / 10**exponent
            total += per_period * (12 if interval == "month" else 1)
        return round(total, 2)

    def order_of(self, subscription_id: str) -> str | None:
        row = self.w.one("select id from netsuite_sales_orders where external_id = ?", [subscription_id])
        return row[0] if row else None

    def set_tier(self, org_id: int, tier: str) -> None:
        fields = json.loads(
            self.w.one("select organization_fields from zendesk_organizations where id = ?", [org_id])[0]
        )
        fields["support_tier"] = tier
        self.w.update("zendesk_organizations", org_id, organization_fields=json.dumps(fields))

    def set_arr(self, company_id: str, arr: float) -> None:
        self.w.update("hubspot_companies", company_id, arr=arr)

    # -- money movements ----------------------------------------------------------------------------
    def invoice(
        self,
        c: dict,
        sub: str,
        amount: int,
        start: int,
        end: int,
        reason: str,
        *,
        paid: bool,
        lose_erp: bool = False,
        event: str = "",
    ) -> str:
        """A finalized Stripe invoice with its charge, and its ERP invoice and payment unless lost."""
        invoice = self.w.insert(
            "stripe_invoices",
            number=f"{c['ref']}-S{self.w.peek_seq('stripe_invoices')}",
            customer=c["stripe"],
            subscription=sub,
            currency=c["currency"],
            status="paid" if paid else "open",
            billing_reason=reason,
            total_minor=amount,
            amount_due_minor=amount,
            amount_paid_minor=amount if paid else 0,
            amount_remaining_minor=0 if paid else amount,
            period_start_at=start,
            period_end_at=end,
            due_at=self.now,
            finalized_at=self.now,
            paid_at=self.now if paid else None,
            voided_at=None,
        )
        self.w.event("invoice.finalized", "stripe_invoices", invoice)
        charge = self.w.insert(
            "stripe_charges",
            "charge.succeeded" if paid else "charge.failed",
            customer=c["stripe"],
            invoice=invoice,
            amount_minor=amount,
            amount_captured_minor=amount if paid else 0,
            amount_refunded_minor=0,
            currency=c["currency"],
            status="succeeded" if paid else "failed",
            failure_code=None if paid else "card_declined",
        )
        self.w.event("invoice.paid" if paid else "invoice.payment_failed", "stripe_invoices", invoice)
        if not paid:
            self.w.update("stripe_subscriptions", sub, "customer.subscription.updated", status="past_due")
            self.w.update("stripe_customers", c["stripe"], "customer.updated", delinquent=True)
        if c["netsuite"] is None:
            return invoice
        if lose_erp:
            self.lost("invoice_missing_in_erp", invoice, c["ref"], event, self.now, SYNC_SLA)
        else:
            order = self.order_of(sub) if sub else None
            self.erp_invoice(c, invoice, amount, paid, c["currency"], self.now, order, str(charge))
        return invoice

    def erp_invoice(
        self,
        c: dict,
        invoice: str,
        total_minor: int,
        paid: bool,
        currency: str,
        finalized: int,
        order: str | None,
        charge: str | None,
    ) -> None:
        """Post a Stripe invoice to the ERP (and its payment when paid, through `charge`)."""
        total = total_minor / 10 ** CURRENCIES[currency][1]
        erp_id = self.w.insert(
            "netsuite_invoices",
            external_id=invoice,
            tran_id=f"INV-{invoice[-6:]}",
            customer_id=c["netsuite"],
            sales_order_id=order,
            currency=currency.upper(),
            total=total,
            amount_remaining=0.0 if paid else total,
            status="paidInFull" if paid else "open",
            tran_at=finalized,
            due_at=finalized,
        )
        if paid and charge is not None:
            self.erp_payment(c, charge, erp_id, total, currency)

    def erp_payment(self, c: dict, charge: str, erp_invoice: str, amount: float, currency: str) -> None:
        self.w.insert(
            "netsuite_customer_payments",
            external_id=charge,
            tran_id=f"PYMT-{charge[-6:]}",
            customer_id=c["netsuite"],
            invoice_id=erp_invoice,
            currency=currency.upper(),
            amount=amount,
            tran_at=self.now,
        )

    # -- 2. catch up --------------------------------------------------------------------------------
    def catch_up(self) -> None:
        self.sync_lagging_invoices()
        self.end_grace_periods()
        self.onboard_won_deals()
        self.convert_trials()
        self.renew()

    def _clean(self, ref: str) -> bool:
        return ref not in self.in_truth

    def sync_lagging_invoices(self) -> None:
        rows = self.w.all(
            "select i.id, r.customer_ref, i.total_minor, i.amount_paid_minor >= i.total_minor, i.currency, "
            "i.finalized_at, o.id, ch.id from stripe_invoices i "
            "join company_refs r on r.stripe_customer_id = i.customer "
            "left join netsuite_sales_orders o on o.external_id = i.subscription "
            "left join (select invoice, max_by(id, seq) as id from stripe_charges where status = 'succeeded' "
            "group by invoice) ch on ch.invoice = i.id "
            "where i.status in ('open', 'paid') and i.finalized_at <= ? "
            "and r.netsuite_customer_id is not null "
            "and not exists (select 1 from netsuite_invoices n where upper(n.external_id) = upper(i.id)) "
            "and not exists (select 1 from truth t where t.anchor_id = i.id) order by i.seq",
            [self.now - LAG_SYNCED_AFTER],
        )
        for invoice, ref, total_minor, paid, currency, finalized, order, charge in rows:
            self.erp_invoice(
                self.customer(ref), invoice, total_minor, paid, currency, finalized, order, charge
            )
            self.summary["caught_up.invoice_synced"] += 1

    def end_grace_periods(self) -> None:
        self.pay_before_grace_ends()
        rows = self.w.all(
            "select distinct r.customer_ref from stripe_invoices i "
            "join stripe_subscriptions s on s.id = i.subscription "
            "join company_refs r on r.stripe_customer_id = i.customer "
            "join zendesk_organizations o on o.id = r.zendesk_organization_id "
            "where s.status = 'past_due' and i.status = 'open' and i.due_at <= ? "
            "and lower(json_extract_string(o.organization_fields, '$.support_tier')) <> ? order by 1",
            [self.now - GRACE_PERIOD, DOWNGRADE_TIER],
        )
        for (ref,) in rows:
            if ref in self.frozen:
                continue
            c = self.customer(ref)
            tier = json.loads(
                self.w.one(
                    "select organization_fields from zendesk_organizations where id = ?", [c["zendesk"]]
                )[0]
            )["support_tier"].lower()
            if self.forced is None and self.rng.random() < 0.5:
                self.recover(c, "grace_recovery")
                self.summary["caught_up.recovered"] += 1
            elif self._clean(ref) and self.loses("entitlement_on_delinquent_account"):
                since = self.w.one(
                    "select min(i.due_at) from stripe_invoices i where i.customer = ? and i.status = 'open'",
                    [c["stripe"]],
                )[0]
                self.lost(
                    "entitlement_on_delinquent_account",
                    c["zendesk"],
                    ref,
                    "grace_expired",
                    since,
                    GRACE_PERIOD,
                    tier=tier,
                )
            else:
                self.set_tier(c["zendesk"], DOWNGRADE_TIER)
                self.summary["caught_up.downgraded"] += 1
            self.touched.add(ref)

    def pay_before_grace_ends(self) -> None:
        """Customers whose grace period would run out within MARGIN after this step pay now.

        The other catch-ups act well inside their rule's threshold (invoices sync after 12 h of a 24 h
        SLA, deals onboard after 2 of 7 days), but a grace period ends exactly at its threshold: one
        ending minutes after the step would leave a delinquent account on a paid tier that no truth
        entry names until the next step downgrades it, and a pipeline running in between would rightly
        flag it. Paying first keeps every state the world is in between steps at least MARGIN away
        from a threshold, as the generator keeps its own (catalog.MARGIN)."""
        rows = self.w.all(
            "select distinct r.customer_ref from stripe_invoices i "
            "join stripe_subscriptions s on s.id = i.subscription "
            "join company_refs r on r.stripe_customer_id = i.customer "
            "join zendesk_organizations o on o.id = r.zendesk_organization_id "
            "where s.status = 'past_due' and i.status = 'open' and i.due_at > ? and i.due_at <= ? "
            "and lower(json_extract_string(o.organization_fields, '$.support_tier')) <> ? order by 1",
            [self.now - GRACE_PERIOD, self.now - GRACE_PERIOD + MARGIN, DOWNGRADE_TIER],
        )
        for (ref,) in rows:
            if ref in self.frozen:
                continue
            self.recover(self.customer(ref), "paid_before_grace_end")
            self.summary["caught_up.paid_before_grace_end"] += 1
            self.touched.add(ref)

    def onboard_won_deals(self) -> None:
        rows = self.w.all(
            "select d.id, r.customer_ref, d.plan from hubspot_deals d "
            "join company_refs r on r.hubspot_company_id = d.company_id "
            "where d.dealstage = 'closedwon' and r.stripe_customer_id is null and d.closedate_at <= ? "
            "and not exists (select 1 from truth t where t.anchor_id = d.id)",
            [self.now - ONBOARDED_AFTER],
        )
        for _deal, ref, plan in rows:
            self.start_customer(ref, plan, "onboarding")
            self.summary["caught_up.onboarded"] += 1

    def convert_trials(self) -> None:
        rows = self.w.all(
            "select s.id, r.customer_ref from stripe_subscriptions s "
            "join company_refs r on r.stripe_customer_id = s.customer "
            "where s.status = 'trialing' and s.trial_end_at <= ?",
            [self.now],
        )
        for sub, ref in rows:
            c = self.customer(ref)
            if c["netsuite"] is None:
                c["netsuite"] = self.erp_customer(c)
            self.erp_order(c, sub)
            plan, interval, quantity = self.plan_of(sub)
            length = YEAR if interval == "year" else MONTH
            self.w.update(
                "stripe_subscriptions",
                sub,
                "customer.subscription.updated",
                status="active",
                current_period_start_at=self.now,
                current_period_end_at=self.now + length,
            )
            self.invoice(
                c,
                sub,
                price_minor(plan, interval, c["currency"]) * quantity,
                self.now,
                self.now + length,
                "subscription_cycle",
                paid=True,
            )
            self.set_arr(c["hubspot"], self.billing_arr(c["stripe"], c["currency"]))
            self.summary["caught_up.trial_converted"] += 1

    def renew(self) -> None:
        rows = self.w.all(
            "select s.id, r.customer_ref, s.cancel_at_period_end, s.current_period_end_at from "
            "stripe_subscriptions s join company_refs r on r.stripe_customer_id = s.customer "
            "where s.status = 'active' and s.current_period_end_at <= ?",
            [self.now],
        )
        for sub, ref, ending, period_end in rows:
            if ending and ref in self.frozen:
                continue
            c = self.customer(ref)
            if ending:
                self.end_subscription(c, sub, period_end, "period_end_cancellation", lose=None)
                continue
            plan, interval, quantity = self.plan_of(sub)
            length = YEAR if interval == "year" else MONTH
            while period_end <= self.now:
                fails = self.forced is None and self.rng.random() < FAILED_RENEWAL_RATE and self._clean(ref)
                lose = (
                    not fails
                    and self._clean(ref)
                    and ref not in self.touched
                    and self.loses("invoice_missing_in_erp")
                )
                self.w.update(
                    "stripe_subscriptions",
                    sub,
                    "customer.subscription.updated",
                    current_period_start_at=period_end,
                    current_period_end_at=period_end + length,
                )
                self.invoice(
                    c,
                    sub,
                    price_minor(plan, interval, c["currency"]) * quantity,
                    period_end,
                    period_end + length,
                    "subscription_cycle",
                    paid=not fails,
                    lose_erp=lose,
                    event="renewal",
                )
                self.summary["caught_up.renewed" if not fails else "caught_up.renewal_failed"] += 1
                if fails or lose:
                    self.touched.add(ref)
                    break
                period_end += length

    # -- building blocks of events ------------------------------------------------------------------
    def erp_customer(self, c: dict) -> str:
        name, email, currency = self.w.one(
            "select name, email, currency from stripe_customers where id = ?", [c["stripe"]]
        )
        subsidiary = CURRENCIES[currency][3]
        erp_id = self.w.insert(
            "netsuite_customers",
            external_id=c["stripe"],
            entity_id=f"CUST-{c['ref']}",
            company_name=name,
            email=email,
            subsidiary_id=subsidiary,
            currency=currency.upper(),
            is_inactive=False,
        )
        self.link(c["ref"], "netsuite_customer_id", erp_id)
        return erp_id

    def erp_order(self, c: dict, sub: str) -> None:
        plan, interval, quantity = self.plan_of(sub)
        start = self.w.one("select start_at from stripe_subscriptions where id = ?", [sub])[0]
        total = price_minor(plan, interval, c["currency"]) * quantity / 10 ** CURRENCIES[c["currency"]][1]
        self.w.insert(
            "netsuite_sales_orders",
            external_id=sub,
            tran_id=f"SO-{sub[-6:]}",
            customer_id=c["netsuite"],
            currency=c["currency"].upper(),
            total=total,
            status="pendingBilling",
            item=f"{plan.title()} ({interval}ly)",
            start_at=start,
            end_at=None,
        )

    def start_customer(self, ref: str, plan: str, event: str, lose: str | None = None) -> None:
        """A won company becomes a paying customer in billing, ERP, support and CRM."""
        c = self.customer(ref)
        display = self.w.one("select name from hubspot_companies where id = ?", [c["hubspot"]])[0]
        currency = (
            self.w.one("select lower(arr_currency) from hubspot_companies where id = ?", [c["hubspot"]])[0]
            or "usd"
        )
        c["currency"] = currency
        stripe_customer = self.w.insert(
            "stripe_customers",
            name=f"{display.title()} {LEGAL_SUFFIX[currency]}",
            email=f"billing@{c['domain']}",
            currency=currency,
            balance_minor=0,
            delinquent=False,
            metadata=json.dumps({"hubspot_company_id": c["hubspot"]}),
        )
        c["stripe"] = stripe_customer
        self.link(ref, "stripe_customer_id", stripe_customer)
        length = MONTH
        sub = self.w.insert(
            "stripe_subscriptions",
            customer=stripe_customer,
            price=self.price_id(plan, "month", currency),
            item_id=stripe_id(
                "stripe_subscription_items",
                self.w.peek_seq("stripe_subscriptions"),
            ),
            quantity=1,
            currency=currency,
            status="active",
            cancel_at_period_end=False,
            current_period_start_at=self.now,
            current_period_end_at=self.now + length,
            trial_start_at=None,
            trial_end_at=None,
            canceled_at=None,
            ended_at=None,
            start_at=self.now,
            metadata=json.dumps({"plan": plan}),
        )
        if lose == "customer_missing_in_erp":
            self.lost(lose, stripe_customer, ref, event, self.now)
        else:
            c["netsuite"] = self.erp_customer(c)
            self.erp_order(c, sub)
        self.invoice(
            c,
            sub,
            price_minor(plan, "month", currency),
            self.now,
            self.now + length,
            "subscription_create",
            paid=True,
        )
        tier = PLANS[plan][0]
        org = self.w.insert(
            "zendesk_organizations",
            name=display,
            external_id=stripe_customer,
            domain_names=json.dumps([c["domain"]]),
            organization_fields=json.dumps(
                {
                    "support_tier": DOWNGRADE_TIER if lose == "entitlement_tier_mismatch" else tier,
                    "plan": plan,
                }
            ),
            tags=json.dumps(["active"]),
        )
        self.link(ref, "zendesk_organization_id", org)
        if lose == "entitlement_tier_mismatch":
            self.lost(lose, org, ref, event, self.now, expected=tier, actual=DOWNGRADE_TIER)
        self.w.update(
            "hubspot_companies",
            c["hubspot"],
            lifecyclestage="customer",
            arr=self.billing_arr(stripe_customer, currency),
            stripe_customer_id=stripe_customer,
        )

    def end_subscription(self, c: dict, sub: str, ended: int, event: str, lose: str | None) -> None:
        self.w.update(
            "stripe_subscriptions",
            sub,
            "customer.subscription.deleted",
            status="canceled",
            canceled_at=min(ended, self.now),
            ended_at=ended,
            cancel_at_period_end=False,
        )
        order = self.order_of(sub)
        if order and lose == "erp_contract_without_active_subscription":
            self.lost(lose, order, c["ref"], event, ended)
        elif order:
            self.w.update("netsuite_sales_orders", order, status="closed", end_at=ended)
        remaining = self.live_subscriptions(c["stripe"])
        if not remaining:
            if lose == "entitlement_after_cancellation":
                self.lost(lose, c["zendesk"], c["ref"], event, ended)
            else:
                self.set_tier(c["zendesk"], DOWNGRADE_TIER)
        else:
            self.set_tier(c["zendesk"], self.expected_tier(c["stripe"]))
        if remaining and lose == "crm_arr_mismatch":
            self.lost(lose, c["hubspot"], c["ref"], event, self.now)
        else:
            self.set_arr(c["hubspot"], self.billing_arr(c["stripe"], c["currency"]))
        self.summary[f"event.{event}"] += 1

    def recover(self, c: dict, event: str, lose: set[str] | None = None) -> None:
        """The customer pays every open invoice; billing, ERP and support follow (but what `lose` names)."""
        lose = set(lose or ())
        for invoice, amount in self.w.all(
            "select id, total_minor from stripe_invoices where customer = ? and status = 'open'",
            [c["stripe"]],
        ):
            self.w.update(
                "stripe_invoices",
                invoice,
                "invoice.paid",
                status="paid",
                amount_paid_minor=amount,
                amount_remaining_minor=0,
                paid_at=self.now,
            )
            charge = self.w.insert(
                "stripe_charges",
                "charge.succeeded",
                customer=c["stripe"],
                invoice=invoice,
                amount_minor=amount,
                amount_captured_minor=amount,
                amount_refunded_minor=0,
                currency=c["currency"],
                status="succeeded",
                failure_code=None,
            )
            erp = self.w.one("select id, total from netsuite_invoices where external_id = ?", [invoice])
            if erp is None:
                continue
            if "payment_status_mismatch" in lose:
                self.lost(
                    "payment_status_mismatch",
                    invoice,
                    c["ref"],
                    event,
                    self.now,
                    stripe_status="paid",
                    erp_status="open",
                )
                lose.discard("payment_status_mismatch")
                continue
            self.w.update("netsuite_invoices", erp[0], amount_remaining=0.0, status="paidInFull")
            self.erp_payment(c, str(charge), erp[0], float(erp[1]), c["currency"])
        for (sub,) in self.w.all(
            "select id from stripe_subscriptions where customer = ? and status = 'past_due'", [c["stripe"]]
        ):
            self.w.update("stripe_subscriptions", sub, "customer.subscription.updated", status="active")
        self.w.update("stripe_customers", c["stripe"], "customer.updated", delinquent=False)
        expected = self.expected_tier(c["stripe"])
        if "entitlement_tier_mismatch" in lose:
            self.lost(
                "entitlement_tier_mismatch",
                c["zendesk"],
                c["ref"],
                event,
                self.now,
                expected=expected,
                actual=DOWNGRADE_TIER,
            )
        else:
            self.set_tier(c["zendesk"], expected)

    # -- 4. what aging changed ------------------------------------------------------------------------
    def serve_aged(self, before: int) -> None:
        """Serve as changed now the records whose aged timestamps a mismatch rule reads.

        Aging rewrites timestamps without a change a pipeline could see, so a copy landed before a
        step keeps the old ones: too young by every minute advanced since. Where a rule compares such
        a timestamp with a threshold, the copy can fall on the other side of it than the world. So
        after a step, every record in a state whose age a rule reads, and that was on the young side
        of the threshold at the previous step (`before`: an as-of for the current timestamps; it may
        have crossed since), is re-served: its latest version then carries the current timestamps,
        and the stale copy of every other such record is past the threshold as the world's is.
        Records already past the threshold at the previous step were re-served when they crossed it.

        - open invoices (delinquency after the grace period): Stripe's `invoice.overdue`;
        - invoices not in the ERP (sync SLA): `invoice.updated`;
        - won deals without a subscription (onboarding SLA), and the won deals of companies whose
          subscriptions changed in this step: the closed-won rule compares the deal's close date with
          the subscriptions' creation, so both must be served in the same step's timestamps.
        """
        written = self.w.ids

        def fresh(table: str, rows: list[tuple]) -> list:
            return [r[0] for r in rows if r[0] not in written[table]]

        overdue = fresh(
            "stripe_invoices",
            self.w.all(
                "select id from stripe_invoices where status = 'open' and ? - due_at < ? order by seq",
                [before, GRACE_PERIOD],
            ),
        )
        unsynced = fresh(
            "stripe_invoices",
            self.w.all(
                "select i.id from stripe_invoices i where i.status in ('open', 'paid') "
                "and ? - i.finalized_at < ? "
                "and not exists (select 1 from netsuite_invoices n where upper(n.external_id) = upper(i.id)) "
                "order by i.seq",
                [before, SYNC_SLA],
            ),
        )
        for invoice in overdue:
            self.w.touch("stripe_invoices", invoice, "invoice.overdue")
        for invoice in unsynced:
            if invoice not in written["stripe_invoices"]:
                self.w.touch("stripe_invoices", invoice, "invoice.updated")
        pending = fresh(
            "hubspot_deals",
            self.w.all(
                "select d.id from hubspot_deals d join company_refs r on r.hubspot_company_id = d.company_id "
                "where d.dealstage = 'closedwon' and ? - d.closedate_at < ? and not exists (select 1 from "
                "stripe_subscriptions s where s.customer = r.stripe_customer_id "
                "and s.created_at >= d.closedate_at - ?) order by d.seq",
                [before, ONBOARDING_SLA, DAY],
            ),
        )
        customers = [
            r[0]
            for r in self.w.all(
                "select distinct customer from stripe_subscriptions where list_contains(?, id)",
                [sorted(written["stripe_subscriptions"])],
            )
        ]
        followers = fresh(
            "hubspot_deals",
            self.w.all(
                "select d.id from hubspot_deals d join company_refs r on r.hubspot_company_id = d.company_id "
                "where d.dealstage = 'closedwon' and list_contains(?, r.stripe_customer_id) order by d.seq",
                [customers],
            ),
        )
        for deal in dict.fromkeys(pending + followers):
            self.w.touch("hubspot_deals", deal)
        for key, count in (
            ("aged.invoice_overdue", len(overdue)),
            ("aged.invoice_unsynced", len(set(unsynced) - set(overdue))),
            ("aged.deal_pending", len(pending)),
            ("aged.deal_of_changed_subscription", len(set(followers) - set(pending))),
        ):
            if count:
                self.summary[key] += count

    # -- 3. events ----------------------------------------------------------------------------------
    def pick(self, sql: str, params: list | None = None) -> str | None:
        """A random clean customer ref among `sql`'s results (first column), untouched in this step.

        Candidates are read once per step: a customer an event changes is touched, and so excluded
        from every later pick, so what changed since cannot make a stale candidate eligible.
        """
        key = (sql, tuple(params or ()))
        if key not in self._candidates:
            self._candidates[key] = sorted({r[0] for r in self.w.all(sql, params)})
        if self.chosen is not None:  # steered: that customer (past discrepancies allowed) or nobody
            refs = [r for r in self._candidates[key] if r == self.chosen and r not in self.touched]
        else:
            refs = [r for r in self._candidates[key] if r not in self.touched and r not in self.in_truth]
        if not refs:
            return None
        ref = self.rng.choice(refs)
        self.touched.add(ref)
        return ref

    def events(self, count: int) -> None:
        kinds = list(EVENT_KINDS)
        for kind in self.rng.choices(kinds, weights=[EVENT_KINDS[k] for k in kinds], k=count):
            getattr(self, f"event_{kind}")()

    def event_signup(self) -> None:
        index = self.w.one("select count(*) from company_refs")[0]
        if index >= NAME_SPACE:
            return
        display, domain = company_name(index)
        ref = f"C{index + 1:07d}"
        currency = self.rng.choices(list(CURRENCIES), weights=[w for w, *_ in CURRENCIES.values()])[0]
        plan = self.rng.choice(list(PLANS))
        company = self.w.insert(
            "hubspot_companies",
            name=display,
            domain=domain,
            lifecyclestage="opportunity",
            arr=0.0,
            arr_currency=currency.upper(),
            stripe_customer_id=None,
            archived=False,
            created_at=self.now - 30 * DAY,
        )
        self.w.insert(
            "hubspot_contacts",
            email=f"buyer@{domain}",
            firstname="Alex",
            lastname="Buyer",
            company_id=company,
            archived=False,
        )
        deal = self.w.insert(
            "hubspot_deals",
            dealname=f"{display} - new business",
            dealstage="closedwon",
            pipeline="default",
            amount=float(PLANS[plan][1] * 12),
            deal_currency_code=currency.upper(),
            plan=plan,
            company_id=company,
            closedate_at=self.now,
            archived=False,
            created_at=self.now - 20 * DAY,
        )
        self.w.con.execute(
            "insert into company_refs values (?, null, ?, null, null, ?)", [ref, company, domain]
        )
        self.touched.add(ref)
        lose = self.loss_among(
            ("customer_missing_in_erp", "entitlement_tier_mismatch", "closed_won_without_subscription")
        )
        if lose == "closed_won_without_subscription":
            self.lost(lose, deal, ref, "signup", self.now, ONBOARDING_SLA)
        else:
            self.start_customer(ref, plan, "signup", lose)
        self.summary["event.signup"] += 1

    def event_upgrade(self) -> None:
        ref = self.pick(
            "select r.customer_ref from stripe_subscriptions s join company_refs r on r.stripe_customer_id = "
            "s.customer join stripe_prices pr on pr.id = s.price join stripe_products p on p.id = pr.product "
            "where s.status = 'active' and pr.recurring_interval = 'month' and lower(p.name) <> 'enterprise' "
            "and r.netsuite_customer_id is not null and s.current_period_end_at - ? > ?",
            [self.now, DAY],
        )
        if ref is None:
            return
        c = self.customer(ref)
        sub = self.w.one(
            "select s.id from stripe_subscriptions s join stripe_prices pr on pr.id = s.price "
            "join stripe_products p on p.id = pr.product where s.customer = ? and s.status = 'active' "
            "and pr.recurring_interval = 'month' and lower(p.name) <> 'enterprise' order by s.seq",
            [c["stripe"]],
        )[0]
        plan, interval, quantity = self.plan_of(sub)
        new_plan = list(PLANS)[list(PLANS).index(plan) + 1]
        start, end = self.w.one(
            "select current_period_start_at, current_period_end_at from stripe_subscriptions where id = ?",
            [sub],
        )
        old_price = price_minor(plan, interval, c["currency"]) * quantity
        new_price = price_minor(new_plan, interval, c["currency"]) * quantity
        proration = max(1, round((new_price - old_price) * (end - self.now) / (end - start)))
        if c["currency"] != "jpy":
            proration = max(1, proration)
        lose = self.loss_among(("invoice_missing_in_erp", "entitlement_tier_mismatch", "crm_arr_mismatch"))
        self.w.update(
            "stripe_subscriptions",
            sub,
            "customer.subscription.updated",
            price=self.price_id(new_plan, interval, c["currency"]),
        )
        self.invoice(
            c,
            sub,
            proration,
            self.now,
            end,
            "subscription_update",
            paid=True,
            lose_erp=lose == "invoice_missing_in_erp",
            event="upgrade",
        )
        order = self.order_of(sub)
        if order:
            self.w.update(
                "netsuite_sales_orders",
                order,
                total=new_price / 10 ** CURRENCIES[c["currency"]][1],
                item=f"{new_plan.title()} ({interval}ly)",
            )
        expected = self.expected_tier(c["stripe"])
        if lose == "entitlement_tier_mismatch":
            current = json.loads(
                self.w.one(
                    "select organization_fields from zendesk_organizations where id = ?", [c["zendesk"]]
                )[0]
            )["support_tier"].lower()
            if current != expected:
                self.lost(lose, c["zendesk"], ref, "upgrade", self.now, expected=expected, actual=current)
            else:
                self.set_tier(c["zendesk"], expected)
        else:
            self.set_tier(c["zendesk"], expected)
        arr = self.billing_arr(c["stripe"], c["currency"])
        if lose == "crm_arr_mismatch":
            self.lost(lose, c["hubspot"], ref, "upgrade", self.now, billing_arr=arr)
        else:
            self.set_arr(c["hubspot"], arr)
        self.summary["event.upgrade"] += 1

    def event_cancellation(self) -> None:
        sql = (
            "select r.customer_ref from stripe_subscriptions s join company_refs r on r.stripe_customer_id = "
            "s.customer where s.status = 'active' and r.netsuite_customer_id is not null"
        )
        if self.forced is not None and "entitlement_after_cancellation" in self.forced:
            # that loss needs the cancellation to end the customer's last live subscription
            sql += (
                " and (select count(*) from stripe_subscriptions l where l.customer = s.customer "
                "and l.status in ('active', 'past_due', 'trialing')) = 1"
            )
        ref = self.pick(sql)
        if ref is None:
            return
        c = self.customer(ref)
        sub = self.rng.choice(
            self.w.all(
                "select id from stripe_subscriptions where customer = ? and status = 'active'", [c["stripe"]]
            )
        )[0]
        others = len(self.live_subscriptions(c["stripe"])) > 1
        choices = [
            "erp_contract_without_active_subscription",
            "crm_arr_mismatch" if others else "entitlement_after_cancellation",
        ]
        lose = self.loss_among(tuple(choices))
        self.end_subscription(c, sub, self.now, "cancellation", lose)

    def event_refund(self) -> None:
        ref = self.pick(
            "select r.customer_ref from stripe_invoices i join company_refs r on r.stripe_customer_id = "
            "i.customer where i.status = 'paid' and r.netsuite_customer_id is not null "
            "and not exists (select 1 from stripe_credit_notes n where n.invoice = i.id)"
        )
        if ref is None:
            return
        c = self.customer(ref)
        invoice, total = self.rng.choice(
            self.w.all(
                "select i.id, i.total_minor from stripe_invoices i "
                "where i.customer = ? and i.status = 'paid' "
                "and not exists (select 1 from stripe_credit_notes n where n.invoice = i.id) and exists "
                "(select 1 from netsuite_invoices e where upper(e.external_id) = upper(i.id))",
                [c["stripe"]],
            )
            or [(None, 0)]
        )
        if invoice is None:
            return
        amount = max(1, total // 2)
        number = self.w.one("select count(*) + 1 from stripe_credit_notes where customer = ?", [c["stripe"]])[
            0
        ]
        note = self.w.insert(
            "stripe_credit_notes",
            number=f"{ref}-CN-{number:04d}",
            customer=c["stripe"],
            invoice=invoice,
            currency=c["currency"],
            amount_minor=amount,
            status="issued",
            type="post_payment",
            reason="requested_by_customer",
            voided_at=None,
        )
        charge = self.w.one(
            "select id, amount_refunded_minor from stripe_charges where invoice = ? and "
            "status = 'succeeded' order by seq desc",
            [invoice],
        )
        if charge:
            self.w.update(
                "stripe_charges", charge[0], "charge.refunded", amount_refunded_minor=charge[1] + amount
            )
        if self.loses("credit_note_missing_in_erp"):
            self.lost("credit_note_missing_in_erp", note, ref, "refund", self.now)
        else:
            erp_invoice = self.w.one("select id from netsuite_invoices where external_id = ?", [invoice])[0]
            self.w.insert(
                "netsuite_credit_memos",
                external_id=note,
                tran_id=f"CM-{note[-6:]}",
                customer_id=c["netsuite"],
                invoice_id=erp_invoice,
                currency=c["currency"].upper(),
                amount=amount / 10 ** CURRENCIES[c["currency"]][1],
                tran_at=self.now,
            )
        self.summary["event.refund"] += 1

    def event_recovery(self) -> None:
        ref = self.pick(
            "select r.customer_ref from stripe_subscriptions s join company_refs r on r.stripe_customer_id = "
            "s.customer where s.status = 'past_due'"
        )
        if ref is None:
            return
        if self.forced is not None:  # steered: it may lose both
            lost = {k for k in ("payment_status_mismatch", "entitlement_tier_mismatch") if k in self.forced}
        else:
            one = self.loss_among(("payment_status_mismatch", "entitlement_tier_mismatch"))
            lost = {one} if one else set()
        c = self.customer(ref)
        if "entitlement_tier_mismatch" in lost:
            current = json.loads(
                self.w.one(
                    "select organization_fields from zendesk_organizations where id = ?", [c["zendesk"]]
                )[0]
            )["support_tier"].lower()
            if current != DOWNGRADE_TIER:
                lost.discard("entitlement_tier_mismatch")
        self.recover(c, "recovery", lost)
        self.summary["event.recovery"] += 1

    # Events only steering applies (`apply_event`): not drawn by `events`, so seeded streams are unchanged.
    def event_payment_failure(self) -> None:
        """A monthly renewal whose charge fails: the invoice stays open, the subscription goes past due."""
        ref = self.pick(
            "select r.customer_ref from stripe_subscriptions s join company_refs r on r.stripe_customer_id = "
            "s.customer join stripe_prices pr on pr.id = s.price where s.status = 'active' "
            "and pr.recurring_interval = 'month' and r.netsuite_customer_id is not null "
            "and (select count(*) from stripe_subscriptions o where o.customer = s.customer "
            "and o.status in ('active', 'past_due', 'trialing')) = 1"
        )
        if ref is None:
            return
        c = self.customer(ref)
        sub = self.w.one(
            "select id from stripe_subscriptions where customer = ? and status = 'active'", [c["stripe"]]
        )[0]
        plan, interval, quantity = self.plan_of(sub)
        self.w.update(
            "stripe_subscriptions",
            sub,
            "customer.subscription.updated",
            current_period_start_at=self.now,
            current_period_end_at=self.now + MONTH,
        )
        amount = price_minor(plan, interval, c["currency"]) * quantity
        self.invoice(c, sub, amount, self.now, self.now + MONTH, "subscription_cycle", paid=False)
        self.summary["event.payment_failure"] += 1

    def event_renewal(self) -> None:
        """A monthly subscription reaches its period end now and renews (see `renew`)."""
        ref = self.pick(
            "select r.customer_ref from stripe_subscriptions s join company_refs r on r.stripe_customer_id = "
            "s.customer join stripe_prices pr on pr.id = s.price where s.status = 'active' "
            "and not s.cancel_at_period_end and pr.recurring_interval = 'month' "
            "and r.netsuite_customer_id is not null"
        )
        if ref is None:
            return
        c = self.customer(ref)
        sub = self.w.one(
            "select id from stripe_subscriptions where customer = ? and status = 'active' order by seq",
            [c["stripe"]],
        )[0]
        self.w.update(
            "stripe_subscriptions",
            sub,
            "customer.subscription.updated",
            current_period_start_at=self.now - MONTH,
            current_period_end_at=self.now,
        )
        self.touched.discard(ref)  # renew() skips losing for customers an event touched
        self.renew()
        self.touched.add(ref)
        self.summary["event.renewal"] += 1

    def event_usage(self) -> None:
        ref = self.pick(
            "select r.customer_ref from stripe_subscriptions s join company_refs r on r.stripe_customer_id = "
            "s.customer where s.status = 'active'"
        )
        if ref is None:
            return
        self.touched.discard(ref)  # usage changes nothing that reconciliation checks
        c = self.customer(ref)
        sub = self.w.one(
            "select id from stripe_subscriptions where customer = ? and status = 'active' order by seq",
            [c["stripe"]],
        )[0]
        self.w.insert(
            "stripe_usage_records",
            customer=c["stripe"],
            subscription=sub,
            meter="api_calls",
            quantity=self.rng.randint(100, 20_000),
            period_start_at=self.now - HOUR,
            period_end_at=self.now,
        )
        self.summary["event.usage"] += 1


def age(con: duckdb.DuckDBPyConnection, seconds: int, generated: int | None = None) -> None:
    """Move every timestamp of the world `seconds` into the past, except the live change clocks.

    `updated_at` (served as HubSpot's hs_lastmodifieddate, Zendesk's and NetSuite's last-modified
    times, Chargebee's updated_at) and the Stripe events' `created` say when a vendor changed a record.
    Those up to `generated` (the generation's wall-clock time) are the generated history and age with
    the world; later ones are changes made live (by steps, or written through the APIs) and stay on
    the wall clock, as change feeds do: a change stays after an incremental cursor taken before it,
    however far later steps age the world. Without `generated`, every timestamp ages.
    """
    columns = con.execute(
        "select c.table_name, list(c.column_name order by c.ordinal_position) "
        "from information_schema.columns c "
        "join information_schema.tables t on t.table_name = c.table_name and t.table_schema = c.table_schema "
        "where t.table_type = 'BASE TABLE' and t.table_schema = 'main' "
        "and c.column_name like '%\\_at' escape '\\' group by 1 order by 1"
    ).fetchall()
    for table, names in columns:
        clocks = {"updated_at"} | ({"created_at"} if table == "stripe_events" else set())
        assignments = ", ".join(
            f"{name} = case when {name} <= {generated} then {name} - {seconds} else {name} end"
            if name in clocks and generated is not None
            else f"{name} = {name} - {seconds}"
            for name in names
        )
        con.execute(f"update {table} set {assignments}")
    con.execute("update meta set value = (value::bigint - ?)::varchar where key = 'generated_at'", [seconds])


def advance(
    con: duckdb.DuckDBPyConnection,
    minutes: int,
    *,
    events: int | None = None,
    truth_path: Path | None = None,
    now: int | None = None,
    losses: frozenset[str] | None = None,
) -> dict[str, Any]:
    """Age the world by `minutes`, catch up, and apply `events` lifecycle events (default: scaled to the
    world's size and the time advanced). Rewrites the ground-truth file when `truth_path` is given.
    `losses` steers the step: exactly those downstream effects are lost wherever they may be (an
    empty set: none), instead of by chance."""
    if minutes < 1:
        raise ValueError("minutes must be at least 1")
    started = time.monotonic()
    now = int(time.time()) if now is None else now
    meta = dict(con.execute("select key, value from meta").fetchall())
    step = int(meta.get("advance_steps", "0")) + 1
    customers = con.execute("select count(*) from stripe_customers").fetchall()[0][0]
    if events is None:
        events = max(1, round(customers * EVENT_RATE * minutes / 60))
    # the previous step's time (or the generation's), in the timestamps as they are after this aging
    advanced = int(meta.get("advanced_minutes", "0")) * 60
    generated = int(meta.get("generated_at", now)) + advanced  # meta's generated_at ages with the world
    before = int(meta.get("stepped_at", generated)) - minutes * 60
    con.execute("begin transaction")
    try:
        age(con, minutes * 60, generated)
        run = Step(con, now, random.Random(f"{meta.get('seed', '0')}:{step}"), forced=losses)
        run.catch_up()
        run.events(events)
        run.serve_aged(before)
        for key, value in (
            ("stepped_at", str(now)),
            ("advance_steps", str(step)),
            ("advanced_minutes", str(int(meta.get("advanced_minutes", "0")) + minutes)),
        ):
            con.execute("insert or replace into meta values (?, ?)", [key, value])
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise
    if truth_path is not None:
        export_truth(con, truth_path)
    summary = dict(sorted(run.summary.items()))
    return {
        "step": step,
        "minutes": minutes,
        "events_requested": events,
        **summary,
        "records_written": dict(sorted(run.w.written.items())),
        "seconds": round(time.monotonic() - started, 3),
    }


STEERED_EVENTS = ("signup", "upgrade", "cancellation", "refund", "recovery", "payment_failure", "renewal")


def apply_event(
    con: duckdb.DuckDBPyConnection,
    kind: str,
    *,
    losses: frozenset[str] = frozenset(),
    customer: str | None = None,
    truth_path: Path | None = None,
    now: int | None = None,
) -> dict[str, Any]:
    """Apply one lifecycle event of `kind` now, without aging: to `customer` (a customer ref) or one
    picked by the seeded stream, losing exactly the downstream effects in `losses` that the event can
    lose. The steering a test or demo uses to stage a business workflow. Returns the summary with
    `customer`: the ref the event hit, or None when no customer was eligible."""
    if kind not in STEERED_EVENTS:
        raise ValueError(f"unknown event {kind!r}; one of {', '.join(STEERED_EVENTS)}")
    now = int(time.time()) if now is None else now
    meta = dict(con.execute("select key, value from meta").fetchall())
    rng = random.Random(f"{meta.get('seed', '0')}:event:{kind}:{customer}:{now}")
    con.execute("begin transaction")
    try:
        run = Step(con, now, rng, forced=frozenset(losses), customer=customer)
        getattr(run, f"event_{kind}")()
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise
    if truth_path is not None:
        export_truth(con, truth_path)
    hit = sorted(run.touched)
    ids = run.customer(hit[0]) if hit else None
    return {
        "event": kind,
        "customer": hit[0] if hit else None,
        "ids": ids,
        "losses": sorted(losses),
        **dict(sorted(run.summary.items())),
        "records_written": dict(sorted(run.w.written.items())),
    }
