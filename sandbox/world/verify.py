"""Check a world's ground truth against the mismatch rules, using the generator's identity answer key.

`detect(con, as_of)` applies the 14 rules of ARCHITECTURE.md to the vendor tables exactly as stated
there, with the precisions below, and resolves identity through `company_refs` (NetSuite customers by
their email domain) instead of the fuzzy matching a real pipeline needs. A world is consistent when
what the rules detect equals the truth entries detectable at `as_of`: nothing injected is invisible,
and no benign difference or side effect of an injection looks like a discrepancy.

Rule precisions (the contract the reconciliation models are scored against):
- ids compare case-insensitively; currencies case-insensitively; Stripe minor units are divided by
  10^exponent of the currency (JPY: 0) before comparing with NetSuite decimals (to the cent).
- live subscription: active or past_due. A trialing subscription is not live for billing and ERP rules
  but keeps its plan's support tier.
- A customer missing from the ERP implies its subscriptions, invoices and credit notes are missing
  too; only `customer_missing_in_erp` is reported for it.
- invoice rules compare a Stripe invoice (open or paid) with the NetSuite invoice whose externalId
  is its id; amounts only when the currencies agree; payment status: paid vs open either way.
- support tier: expected = the highest plan tier among live and trialing subscriptions; `basic` when
  the customer is delinquent past the grace period (an open invoice due more than the grace period
  ago) or has no live or trialing subscription. Reported as `entitlement_on_delinquent_account` or
  `entitlement_after_cancellation` when those causes apply and the tier is above basic, else as
  `entitlement_tier_mismatch`.
- closed-won deal satisfied by any Stripe subscription of the company's customer created at or after
  the close date minus one day.
- CRM ARR compared for customers with a live subscription: sum over live subscriptions of price x
  quantity x (12 for monthly), in the billing currency; tolerance relative to billing ARR.
"""

from __future__ import annotations

import duckdb

from sandbox.world.catalog import ARR_TOLERANCE, CURRENCIES, GRACE_PERIOD, ONBOARDING_SLA, PLANS, SYNC_SLA

_EXPONENT = " ".join(f"when '{c}' then {e}" for c, (_, e, *_) in CURRENCIES.items())
_PLAN_TIER = " ".join(f"when '{p}' then '{t}'" for p, (t, _) in PLANS.items())
_TIER_RANK = "case {} end".format(
    " ".join(f"when '{t}' then {r}" for r, t in enumerate(("basic", "standard", "premium", "enterprise")))
)

_SETUP = f"""
create or replace temp view v_ns_customer as
    select n.id, r.customer_ref from netsuite_customers n
    join company_refs r on r.domain = lower(split_part(n.email, '@', 2));
create or replace temp view v_in_erp as select distinct customer_ref from v_ns_customer;
create or replace temp view v_sub as
    select s.id, s.customer, r.customer_ref, s.status, s.quantity, s.created_at, pr.unit_amount_minor,
        pr.recurring_interval, lower(p.name) as plan, s.currency,
        case lower(p.name) {_PLAN_TIER} end as tier,
        case s.currency {_EXPONENT} end as exponent
    from stripe_subscriptions s
    join stripe_prices pr on pr.id = s.price join stripe_products p on p.id = pr.product
    join company_refs r on r.stripe_customer_id = s.customer;
create or replace temp view v_invoice as
    select i.*, r.customer_ref, case i.currency {_EXPONENT} end as exponent
    from stripe_invoices i join company_refs r on r.stripe_customer_id = i.customer
    where i.status in ('open', 'paid');
create or replace temp view v_pair as
    select i.id, i.customer_ref, i.status, i.total_minor / 10 ^ i.exponent as total, i.currency,
        n.total as erp_total, lower(n.currency) as erp_currency, n.status as erp_status
    from v_invoice i join netsuite_invoices n on upper(n.external_id) = upper(i.id);
create or replace temp view v_delinquent as
    select distinct customer_ref from v_invoice where status = 'open' and due_at < $as_of - {GRACE_PERIOD};
create or replace temp view v_org as
    select o.id, r.customer_ref, lower(json_extract_string(o.organization_fields, '$.support_tier')) as tier
    from zendesk_organizations o join company_refs r on r.zendesk_organization_id = o.id;
create or replace temp view v_expected_tier as
    select o.id, o.customer_ref, o.tier,
        o.customer_ref in (select customer_ref from v_delinquent) as delinquent,
        not exists (select 1 from v_sub s where s.customer_ref = o.customer_ref
            and s.status in ('active', 'past_due', 'trialing')) as ended,
        (select arg_max(s.tier, {_TIER_RANK.replace("case ", "case s.tier ", 1)}) from v_sub s
            where s.customer_ref = o.customer_ref and s.status in ('active', 'past_due', 'trialing'))
            as plan_tier
    from v_org o;
"""

RULES = {
    "customer_missing_in_erp": """
        select distinct s.customer from v_sub s
        where s.status in ('active', 'past_due') and s.customer_ref not in (select * from v_in_erp)""",
    "duplicate_erp_customer": """
        select id from v_ns_customer where customer_ref in
            (select customer_ref from v_ns_customer group by 1 having count(*) > 1)""",
    "subscription_missing_in_erp": """
        select s.id from v_sub s where s.status in ('active', 'past_due')
        and s.customer_ref in (select * from v_in_erp)
        and not exists (select 1 from netsuite_sales_orders o where upper(o.external_id) = upper(s.id))""",
    "erp_contract_without_active_subscription": """
        select o.id from netsuite_sales_orders o left join stripe_subscriptions s
            on upper(s.id) = upper(o.external_id)
        where o.status <> 'closed' and (s.id is null or s.status = 'canceled')""",
    "invoice_missing_in_erp": f"""
        select i.id from v_invoice i where i.finalized_at < $as_of - {SYNC_SLA}
        and i.customer_ref in (select * from v_in_erp)
        and not exists (select 1 from netsuite_invoices n where upper(n.external_id) = upper(i.id))""",
    "invoice_amount_mismatch": """
        select id from v_pair where currency = erp_currency and abs(total - erp_total) >= 0.005""",
    "invoice_currency_mismatch": "select id from v_pair where currency <> erp_currency",
    "payment_status_mismatch": """
        select id from v_pair
        where (status = 'paid' and erp_status = 'open') or (status = 'open' and erp_status = 'paidInFull')""",
    "credit_note_missing_in_erp": """
        select c.id from stripe_credit_notes c join company_refs r on r.stripe_customer_id = c.customer
        where c.status = 'issued' and r.customer_ref in (select * from v_in_erp)
        and not exists (select 1 from netsuite_credit_memos m where upper(m.external_id) = upper(c.id))""",
    "entitlement_on_delinquent_account": """
        select id::varchar from v_expected_tier where delinquent and tier <> 'basic'""",
    "entitlement_after_cancellation": """
        select id::varchar from v_expected_tier where ended and not delinquent and tier <> 'basic'""",
    "entitlement_tier_mismatch": """
        select id::varchar from v_expected_tier
        where not delinquent and not ended and tier <> plan_tier""",
    "closed_won_without_subscription": f"""
        select d.id from hubspot_deals d join company_refs r on r.hubspot_company_id = d.company_id
        where d.dealstage = 'closedwon' and d.closedate_at < $as_of - {ONBOARDING_SLA}
        and not exists (select 1 from v_sub s where s.customer_ref = r.customer_ref
            and s.created_at >= d.closedate_at - 86400)""",
    "crm_arr_mismatch": f"""
        with billing as (
            select customer_ref, sum(unit_amount_minor * quantity / 10 ^ exponent
                * case recurring_interval when 'month' then 12 else 1 end) as arr
            from v_sub where status in ('active', 'past_due') group by 1)
        select h.id from hubspot_companies h join company_refs r on r.hubspot_company_id = h.id
        join billing b on b.customer_ref = r.customer_ref
        where abs(coalesce(h.arr, 0) - b.arr) > {ARR_TOLERANCE} * b.arr""",
}


def detect(con: duckdb.DuckDBPyConnection, as_of: int) -> set[tuple[str, str]]:
    """Every (mismatch_type, anchor_id) the rules find in the world as of `as_of` (epoch seconds)."""
    for statement in _SETUP.replace("$as_of", str(int(as_of))).split(";"):
        if statement.strip():
            con.execute(statement)
    found = set()
    for kind, sql in RULES.items():
        for (anchor,) in con.execute(sql.replace("$as_of", str(int(as_of)))).fetchall():
            found.add((kind, str(anchor)))
    return found


def expected(con: duckdb.DuckDBPyConnection, as_of: int) -> set[tuple[str, str]]:
    """The truth entries detectable at `as_of`."""
    rows = con.execute("select mismatch_type, anchor_id from truth where detectable_at <= ?", [int(as_of)])
    return {(kind, str(anchor)) for kind, anchor in rows.fetchall()}


def compare(con: duckdb.DuckDBPyConnection, as_of: int) -> dict[str, dict[str, list[str]]]:
    """Per mismatch type: anchors the truth has but the rules miss, and anchors found but not in truth."""
    found, truth = detect(con, as_of), expected(con, as_of)
    report: dict[str, dict[str, list[str]]] = {}
    for kind in RULES:
        missed = sorted(a for k, a in truth - found if k == kind)
        extra = sorted(a for k, a in found - truth if k == kind)
        if missed or extra:
            report[kind] = {"missed": missed, "unexpected": extra}
    return report
