"""dbt canonical marts over the small world (seed 7) built once (`small_built`): one row per world object,
each system's native ids paired the way the world links them, MRR/ARR from the world's prices,
entitlements wrong exactly where the ground truth plants entitlement mismatches; and on a private copy,
an incremental run after a few new raw versions rewrites only those invoices and equals a full refresh."""

from __future__ import annotations

import json
import time
from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import duckdb
import pytest
import yaml
from conftest import DBT_PROJECT, run_dbt

from revsync.connectors.base import Page
from revsync.connectors.registry import CONNECTORS
from revsync.score import expected_keys
from revsync.warehouse.landing import land
from sandbox.world.catalog import CURRENCIES

pytestmark = pytest.mark.integration

VARS = yaml.safe_load((DBT_PROJECT / "dbt_project.yml").read_text())["vars"]
ENTITLEMENT_TYPES = (
    "entitlement_tier_mismatch",
    "entitlement_on_delinquent_account",
    "entitlement_after_cancellation",
)
KEYS = {"invoices": "invoice_key", "payments": "payment_key", "credit_notes": "credit_note_key"}
INCREMENTAL_FACTS = tuple(KEYS)
MILLI = Decimal("0.001")


@pytest.fixture(scope="module")
def con(small_built):
    """The built warehouse, read-only, with the world it was landed from attached as `world`."""
    connection = duckdb.connect(str(small_built.warehouse), read_only=True)
    connection.execute(f"attach '{small_built.world / 'world.duckdb'}' as world (read_only)")
    yield connection
    connection.close()


def _count(con, sql: str) -> int:
    return con.execute(sql).fetchone()[0]


def test_one_row_per_world_object(con):
    pairs = {
        "customers": "company_refs",
        "subscriptions": "stripe_subscriptions",
        "entitlements": "zendesk_organizations",
        "support_cases": "zendesk_tickets",
        "deals": "hubspot_deals",
    }
    for mart, world in pairs.items():
        assert _count(con, f"select count(*) from canonical.{mart}") == _count(
            con, f"select count(*) from world.{world}"
        ), mart
    # facts: every Stripe object once, every ERP object once (paired, or on a row of its own)
    facts = {
        "invoices": ("stripe_invoice_id", "stripe_invoices", "netsuite_invoice_id", "netsuite_invoices"),
        "payments": (
            "stripe_charge_id",
            "stripe_charges",
            "netsuite_customer_payment_id",
            "netsuite_customer_payments",
        ),
        "credit_notes": (
            "stripe_credit_note_id",
            "stripe_credit_notes",
            "netsuite_credit_memo_id",
            "netsuite_credit_memos",
        ),
    }
    for mart, (stripe_col, stripe_table, erp_col, erp_table) in facts.items():
        stripe, erp = con.execute(
            f"select count({stripe_col}), count({erp_col}) from canonical.{mart}"
        ).fetchone()
        assert stripe == _count(con, f"select count(*) from world.{stripe_table}"), mart
        assert erp == _count(con, f"select count(*) from world.{erp_table}"), mart


def test_customers_carry_each_systems_record_of_the_world_company(con):
    # the generator's answer key: one company per customer_ref, its record in each system; NetSuite
    # customers by e-mail domain (the ERP's duplicates belong to one company)
    rows = con.execute("""
        with erp as (
            select r.customer_ref, list(n.id order by n.id) as ids
            from world.netsuite_customers as n
            join world.company_refs as r on r.domain = lower(split_part(n.email, '@', 2))
            group by r.customer_ref
        )
        select r.customer_ref, coalesce(r.stripe_customer_id, 'hubspot:' || r.hubspot_company_id),
            r.stripe_customer_id, r.hubspot_company_id, r.zendesk_organization_id::varchar,
            coalesce(e.ids, []),
            c.customer_key, c.stripe_customer_id, c.hubspot_company_id, c.zendesk_organization_id,
            c.netsuite_customer_ids, c.netsuite_customer_id, c.is_duplicate_in_erp
        from world.company_refs as r
        left join erp as e using (customer_ref)
        left join canonical.customers as c
            on c.customer_key = coalesce(r.stripe_customer_id, 'hubspot:' || r.hubspot_company_id)
    """).fetchall()
    assert len(rows) == 1100
    duplicates = 0
    for ref, key, stripe, hubspot, zendesk, erp_ids, *got in rows:
        got_key, got_stripe, got_hubspot, got_zendesk, got_erp_ids, primary_erp, is_duplicate = got
        assert (got_key, got_stripe, got_hubspot, got_zendesk) == (key, stripe, hubspot, zendesk), ref
        assert sorted(got_erp_ids) == sorted(erp_ids), ref
        assert primary_erp in erp_ids if erp_ids else primary_erp is None, ref
        assert is_duplicate == (len(erp_ids) > 1)
        duplicates += is_duplicate
    assert duplicates > 0, "the small world plants duplicate ERP customers"


def test_facts_pair_the_ids_the_world_links(con):
    # ERP documents carry the Stripe id as external id (in another case for some, on purpose)
    checks = {
        "invoices": """
            select count(*), count(c.invoice_key) from world.netsuite_invoices as n
            left join canonical.invoices as c
                on c.netsuite_invoice_id = n.id and upper(c.stripe_invoice_id) = upper(n.external_id)
                and c.match_status = 'matched'
                and c.netsuite_sales_order_id is not distinct from n.sales_order_id""",
        "subscriptions": """
            select count(*), count(c.subscription_id) from world.netsuite_sales_orders as n
            left join canonical.subscriptions as c
                on c.netsuite_sales_order_id = n.id and upper(c.subscription_id) = upper(n.external_id)""",
        "payments": """
            select count(*), count(c.payment_key) from world.netsuite_customer_payments as n
            join world.netsuite_invoices as i on i.id = n.invoice_id
            left join canonical.payments as c
                on c.netsuite_customer_payment_id = n.id and upper(c.stripe_charge_id) = upper(n.external_id)
                and c.netsuite_invoice_id = n.invoice_id
                and upper(c.stripe_invoice_id) = upper(i.external_id)""",
        "credit_notes": """
            select count(*), count(c.credit_note_key) from world.netsuite_credit_memos as n
            left join canonical.credit_notes as c
                on c.netsuite_credit_memo_id = n.id
                and upper(c.stripe_credit_note_id) = upper(n.external_id)""",
    }
    for mart, sql in checks.items():
        world, paired = con.execute(sql).fetchone()
        assert world > 0 and paired == world, (mart, world, paired)
    # both sides' amounts and currencies as each system states them, customer_key the Stripe customer's
    wrong = _count(
        con,
        """
        select count(*) from canonical.invoices as c
        join world.stripe_invoices as s on s.id = c.stripe_invoice_id
        left join world.netsuite_invoices as n on n.id = c.netsuite_invoice_id
        where c.customer_key <> s.customer or c.stripe_currency <> s.currency or c.stripe_status <> s.status
            or c.stripe_total <> s.total_minor / case s.currency when 'jpy' then 1 else 100 end
            or c.netsuite_total is distinct from n.total
            or c.netsuite_currency is distinct from lower(n.currency)
            or c.netsuite_status is distinct from n.status""",
    )
    assert wrong == 0


def _rounded(value: Decimal) -> Decimal:
    return value.quantize(MILLI, rounding=ROUND_HALF_UP)


def test_mrr_and_arr_follow_the_worlds_prices_in_both_currencies(con):
    rows = con.execute("""
        select s.id, s.customer, s.status, s.quantity, s.currency, p.unit_amount_minor, p.recurring_interval,
            c.mrr, c.arr, c.mrr_reporting, c.arr_reporting, c.reporting_currency, c.plan, c.support_tier
        from world.stripe_subscriptions as s
        join world.stripe_prices as p on p.id = s.price
        join world.stripe_products as pr on pr.id = p.product
        join canonical.subscriptions as c on c.subscription_id = s.id
    """).fetchall()
    assert len(rows) == _count(con, "select count(*) from world.stripe_subscriptions")
    rates = {code: Decimal(str(rate)) for code, rate in VARS["fx_rates"].items()}
    intervals = defaultdict(int)
    customer_arr: dict[str, Decimal] = defaultdict(Decimal)
    for sub, customer, status, quantity, currency, unit_minor, interval, *got in rows:
        mrr, arr, mrr_reporting, arr_reporting, reporting, plan, tier = got
        exponent = CURRENCIES[currency][1]
        per_period = Decimal(unit_minor) * quantity / Decimal(10) ** exponent
        expected_arr = (
            per_period * (12 if interval == "month" else 1) if status in ("active", "past_due") else 0
        )
        expected_arr = Decimal(expected_arr)
        assert (arr, mrr) == (_rounded(expected_arr), _rounded(expected_arr / 12)), sub
        assert arr_reporting == _rounded(expected_arr * rates[currency]), sub
        assert mrr_reporting == _rounded(expected_arr / 12 * rates[currency]), sub
        assert reporting == VARS["reporting_currency"]
        assert tier == VARS["plan_support_tiers"][plan]
        intervals[(interval, status in ("active", "past_due"))] += 1
        customer_arr[customer] += arr_reporting
    # each customer's recurring revenue is the sum over its subscriptions
    customers = dict(
        con.execute(
            "select stripe_customer_id, arr_reporting from canonical.customers"
            " where stripe_customer_id is not null"
        ).fetchall()
    )
    assert customers == {c: customer_arr.get(c, Decimal(0)) for c in customers}
    assert set(customer_arr) <= set(customers)
    # monthly and yearly plans, live and not, all covered
    assert all(intervals[(i, live)] > 0 for i in ("month", "year") for live in (True, False)), intervals
    # USD is the reporting currency: its amounts convert 1:1
    assert _count(con, "select count(*) from canonical.subscriptions where currency = 'usd' and arr > 0") > 0
    assert (
        _count(
            con,
            "select count(*) from canonical.subscriptions where currency = 'usd' and arr_reporting <> arr",
        )
        == 0
    )


def test_entitlements_are_wrong_exactly_where_the_ground_truth_plants_it(con, small_built):
    truth = {
        anchor
        for kind, system, anchor in expected_keys(small_built.world / "ground_truth.jsonl", small_built.as_of)
        if kind in ENTITLEMENT_TYPES
    }
    wrong = {
        row[0]
        for row in con.execute(
            "select zendesk_organization_id from canonical.entitlements where not is_tier_correct"
        ).fetchall()
    }
    assert truth and wrong == truth
    # the expected tier is the one the mismatches report, for the same reason
    disagreeing = _count(
        con,
        """
        select count(*) from reconciliation.mismatches as m
        join canonical.entitlements as e on e.zendesk_organization_id = m.anchor_id
        where m.mismatch_type in ('entitlement_tier_mismatch', 'entitlement_on_delinquent_account',
                                  'entitlement_after_cancellation')
            and (json_extract_string(m.details, '$.expected_tier') is distinct from e.expected_support_tier
                 or (m.mismatch_type = 'entitlement_on_delinquent_account')
                     <> (e.expected_tier_reason = 'delinquent_past_grace_period')
                 or (m.mismatch_type = 'entitlement_after_cancellation')
                     <> (e.expected_tier_reason = 'no_entitled_subscription'))""",
    )
    assert disagreeing == 0
    reasons = dict(
        con.execute("select expected_tier_reason, count(*) from canonical.entitlements group by 1").fetchall()
    )
    assert set(reasons) == {"delinquent_past_grace_period", "no_entitled_subscription", "plan_tier"}, reasons


def test_deals_are_fulfilled_by_the_customers_first_subscription(con, small_built):
    rows = con.execute("""
        with first_subscription as (
            select customer, arg_min(id, start_at) as subscription_id
            from world.stripe_subscriptions group by customer
        )
        select d.id, d.dealstage, coalesce(r.stripe_customer_id, 'hubspot:' || d.company_id),
            f.subscription_id,
            c.customer_key, c.stripe_subscription_id, c.is_onboarding_overdue
        from world.hubspot_deals as d
        join world.company_refs as r on r.hubspot_company_id = d.company_id
        left join first_subscription as f on f.customer = r.stripe_customer_id
        join canonical.deals as c on c.hubspot_deal_id = d.id
    """).fetchall()
    assert len(rows) == _count(con, "select count(*) from world.hubspot_deals")
    fulfilled = 0
    for deal, stage, customer_key, first_sub, key, got_sub, _ in rows:
        assert key == customer_key, deal
        assert got_sub == (first_sub if stage == "closedwon" else None), deal
        fulfilled += got_sub is not None
    assert fulfilled > 900
    overdue = {str(r[0]) for r in rows if r[6]}
    truth = {
        anchor
        for kind, _, anchor in expected_keys(small_built.world / "ground_truth.jsonl", small_built.as_of)
        if kind == "closed_won_without_subscription"
    }
    assert truth and overdue == truth


def test_support_cases_carry_the_organizations_customer_and_tier(con):
    wrong = _count(
        con,
        """
        select count(*) from world.zendesk_tickets as t
        join world.zendesk_organizations as o on o.id = t.organization_id
        join world.company_refs as r on r.zendesk_organization_id = t.organization_id
        join canonical.support_cases as c on c.zendesk_ticket_id = t.id::varchar
        where c.zendesk_organization_id <> t.organization_id::varchar
            or c.customer_key <> coalesce(r.stripe_customer_id, 'hubspot:' || r.hubspot_company_id)
            or c.support_tier <> lower(json_extract_string(o.organization_fields, '$.support_tier'))""",
    )
    assert wrong == 0
    assert _count(con, "select count(*) from canonical.support_cases where customer_key is null") == 0


# -- incremental ----------------------------------------------------------------------------------


def _land_version(con, source: str, stream: str, record: dict, cursor: int, batch_id: str) -> None:
    """Land a new version of `record` as an extract batch does (revsync.warehouse.landing.land)."""
    page = Page([record], f"test://{source}/{stream}", [cursor])
    result = land(con, source, CONNECTORS[source].stream(stream), [page], batch_id)
    assert result.rows == 1


def _latest(con, table: str, pk: str) -> tuple[dict, int]:
    record, cursor = con.execute(
        f"select record, _cursor_value from {table} where _pk = ?"
        " order by _cursor_value::bigint desc, _loaded_at desc limit 1",
        [pk],
    ).fetchone()
    return json.loads(record), int(cursor)


def _counts(con) -> dict[str, int]:
    return {m: con.execute(f"select count(*) from canonical.{m}").fetchone()[0] for m in INCREMENTAL_FACTS}


def _invocation(workdir: Path) -> str:
    return json.loads((workdir / "target" / "run_results.json").read_text())["metadata"]["invocation_id"]


def _rewritten(warehouse: Path, invocation: str) -> tuple[dict[str, dict[str, tuple]], dict[str, int]]:
    """Per incremental fact, the rows `invocation` wrote (key -> match_status, ...), and the row counts."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rewritten = {
            mart: {
                row[0]: row[1:]
                for row in con.execute(
                    f"select {key}, match_status"
                    + (", stripe_status, netsuite_total" if mart == "invoices" else "")
                    + f" from canonical.{mart} where _dbt_invocation_id = ?",
                    [invocation],
                ).fetchall()
            }
            for mart, key in KEYS.items()
        }
        return rewritten, _counts(con)


def _snapshot(warehouse: Path) -> dict[str, set[tuple]]:
    """Each incremental fact's rows without the columns that say which run wrote them."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return {
            mart: set(
                con.execute(
                    f"select * exclude (_dbt_invocation_id, _built_at) from canonical.{mart}"
                ).fetchall()
            )
            for mart in INCREMENTAL_FACTS
        }


def test_incremental_run_rewrites_only_the_changed_invoices_and_equals_a_full_refresh(copy_built, tmp_path):
    # the first run: the session's build of the whole project on the landing (small_built), copied
    landed = copy_built(tmp_path / "incremental")
    dbt_vars = {"as_of": landed.as_of_var}
    # one workdir for every run: dbt reuses its partial parse; run_results.json is read after each run
    workdir = tmp_path / "dbt"

    with duckdb.connect(str(landed.warehouse)) as con:
        before = _counts(con)
        # three matched invoices: A gets paid on Stripe, B's ERP total changes, C's ERP copy loses its
        # external id (so C becomes Stripe-only and its ERP invoice a row of its own)
        a, b, c = con.execute("""
            select stripe_invoice_id, netsuite_invoice_id from canonical.invoices
            where match_status = 'matched' and stripe_status = 'open' order by invoice_key limit 3
        """).fetchall()
        stripe_a, cursor = _latest(con, "raw_stripe.invoices", a[0])
        stripe_a |= {"status": "paid", "amount_paid": stripe_a["total"], "amount_remaining": 0}
        stripe_a["status_transitions"] = {**stripe_a["status_transitions"], "paid_at": cursor + 60}
        _land_version(con, "stripe", "invoices", stripe_a, cursor + 60, "b2")
        erp_b, cursor = _latest(con, "raw_netsuite.invoice", b[1])
        erp_b["foreigntotal"] = f"{Decimal(erp_b['foreigntotal']) + 1:.2f}"
        _land_version(con, "netsuite", "invoice", erp_b, cursor + 60, "b2")
        erp_c, cursor = _latest(con, "raw_netsuite.invoice", c[1])
        erp_c["externalid"] = ""
        _land_version(con, "netsuite", "invoice", erp_c, cursor + 60, "b2")

    started = time.monotonic()
    select = ("-s", *INCREMENTAL_FACTS)  # staging views and identity stay as the first run left them
    second = run_dbt(landed.warehouse, workdir, "run", *select, dbt_vars=dbt_vars)
    incremental_s = time.monotonic() - started
    assert second.returncode == 0 and not second.failures, second.stdout[-3000:]
    rewritten, after = _rewritten(landed.warehouse, _invocation(workdir))
    invoices = rewritten["invoices"]
    assert set(invoices) == {a[0], b[0], c[0], f"netsuite:{c[1]}"}, invoices
    assert invoices[a[0]][:2] == ("matched", "paid")
    assert invoices[b[0]][2] == Decimal(erp_b["foreigntotal"])
    assert invoices[c[0]][0] == "stripe_only" and invoices[f"netsuite:{c[1]}"][0] == "netsuite_only"
    assert rewritten["payments"] == {} and rewritten["credit_notes"] == {}
    assert after == {**before, "invoices": before["invoices"] + 1}

    # C's ERP invoice gets its external id back (in upper case): C is matched again, and the ERP-only
    # row, a key no longer produced, is removed (the post-hook)
    with duckdb.connect(str(landed.warehouse)) as con:
        erp_c, cursor = _latest(con, "raw_netsuite.invoice", c[1])
        erp_c["externalid"] = c[0].upper()
        _land_version(con, "netsuite", "invoice", erp_c, cursor + 60, "b3")
    third = run_dbt(landed.warehouse, workdir, "run", *select, dbt_vars=dbt_vars)
    assert third.returncode == 0 and not third.failures, third.stdout[-3000:]
    rewritten, after = _rewritten(landed.warehouse, _invocation(workdir))
    assert rewritten == {
        "invoices": {c[0]: ("matched", "open", Decimal(erp_c["foreigntotal"]))},
        "payments": {},
        "credit_notes": {},
    }
    assert after == before

    incremental = _snapshot(landed.warehouse)
    full = run_dbt(landed.warehouse, workdir, "run", *select, "--full-refresh", dbt_vars=dbt_vars)
    assert full.returncode == 0 and not full.failures, full.stdout[-3000:]
    assert _snapshot(landed.warehouse) == incremental
    print(
        f"incremental run: {incremental_s:.1f}s, rewrote {len(invoices)} of {before['invoices'] + 1} invoices"
    )
