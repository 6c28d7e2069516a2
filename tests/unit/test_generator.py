"""The seeded world generator on small worlds: determinism, every mismatch type planted where the ground
truth says (and really visible in the data), benign noise present and not in the truth, the `rates`
override, `parse_scale`, and the id encoding the servers page by.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import duckdb
import numpy as np
import pytest

from sandbox.world import ids
from sandbox.world.catalog import CURRENCIES, GRACE_PERIOD, HOUR, ONBOARDING_SLA, SYNC_SLA, TIERS
from sandbox.world.generator import SCALES, TRUTH_FILE, WORLD_FILE, generate, parse_scale
from sandbox.world.plan import ANCHOR_SYSTEM, MISMATCH_TYPES

NOW = 1_750_000_000  # fixed generation time: worlds compare byte for byte
SEED = 11
SMALL = 300
NOISY = 2000  # big enough that every benign kind shows up

# mismatch type -> the table its anchor id lives in
ANCHOR_TABLE = {
    "customer_missing_in_erp": "stripe_customers",
    "duplicate_erp_customer": "netsuite_customers",
    "subscription_missing_in_erp": "stripe_subscriptions",
    "erp_contract_without_active_subscription": "netsuite_sales_orders",
    "invoice_missing_in_erp": "stripe_invoices",
    "invoice_amount_mismatch": "stripe_invoices",
    "invoice_currency_mismatch": "stripe_invoices",
    "payment_status_mismatch": "stripe_invoices",
    "credit_note_missing_in_erp": "stripe_credit_notes",
    "entitlement_tier_mismatch": "zendesk_organizations",
    "entitlement_on_delinquent_account": "zendesk_organizations",
    "entitlement_after_cancellation": "zendesk_organizations",
    "closed_won_without_subscription": "hubspot_deals",
    "crm_arr_mismatch": "hubspot_companies",
}
# The benign kinds emit.py writes to the `benign` table, and the mismatch types each must not be.
BENIGN_NOT = {
    "invoice_sync_lag": ("invoice_missing_in_erp",),
    "void_credit_note": ("credit_note_missing_in_erp",),
    "onboarding_pending": ("closed_won_without_subscription",),
    "past_due_within_grace": ("entitlement_on_delinquent_account",),
    "delinquent_downgraded": (
        "entitlement_on_delinquent_account",
        "entitlement_after_cancellation",
        "entitlement_tier_mismatch",
    ),
    "tier_case": ("entitlement_on_delinquent_account", "entitlement_after_cancellation"),
    # recorded against the Stripe customer
    "trial": ("customer_missing_in_erp",),
    "cancel_at_period_end": ("customer_missing_in_erp",),
    "arr_within_tolerance": (),  # checked per customer below: CRM ARR defects are anchored in HubSpot
    "zero_decimal_currency": (),
    # formatting only: such a record may also carry a real defect (a duplicate group's original)
    "id_case": (),
    "name_formatting": (),
}
# Minor-unit divisor per currency, as SQL (JPY has exponent 0).
DIVISOR = (
    "case lower({c}) " + " ".join(f"when '{k}' then {10 ** v[1]}" for k, v in CURRENCIES.items()) + " end"
)


def _tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    rows = con.execute("select table_name from information_schema.tables where table_schema = 'main'")
    return sorted(r[0] for r in rows.fetchall())


def _dump(world_dir: Path) -> dict[str, list[tuple]]:
    """Every table's full contents in a canonical order."""
    with duckdb.connect(str(world_dir / WORLD_FILE), read_only=True) as con:
        return {t: con.execute(f'select * from "{t}" order by all').fetchall() for t in _tables(con)}


@pytest.fixture(scope="module")
def worlds(tmp_path_factory) -> dict[str, Path]:
    """Two worlds with the same seed and `now`, one with another seed."""
    out = {}
    for name, seed in (("a", SEED), ("b", SEED), ("other", SEED + 1)):
        out[name] = tmp_path_factory.mktemp(f"world_{name}")
        generate(out[name], SMALL, seed, now=NOW)
    return out


@pytest.fixture(scope="module")
def noisy(tmp_path_factory) -> duckdb.DuckDBPyConnection:
    world_dir = tmp_path_factory.mktemp("noisy")
    generate(world_dir, NOISY, SEED, now=NOW)
    con = duckdb.connect(str(world_dir / WORLD_FILE), read_only=True)
    yield con
    con.close()


def _anchors(con, kind: str) -> set[str]:
    rows = con.execute("select anchor_id from truth where mismatch_type = ?", [kind]).fetchall()
    return {r[0] for r in rows}


def _set(con, sql: str, params=()) -> set[str]:
    return {str(r[0]) for r in con.execute(sql, list(params)).fetchall()}


# -- determinism -----------------------------------------------------------------------------------
def test_same_seed_and_now_give_identical_worlds(worlds):
    a, b = _dump(worlds["a"]), _dump(worlds["b"])
    assert sorted(a) == sorted(b)
    for table in a:
        assert a[table] == b[table], f"{table} differs between two generations with one seed"
    # every vendor table is populated, so the comparison covers real rows (stripe_events is change-only)
    empty = {t for t, rows in a.items() if not rows} - {"stripe_events", "writes"}
    assert not empty
    assert (worlds["a"] / TRUTH_FILE).read_bytes() == (worlds["b"] / TRUTH_FILE).read_bytes()
    assert (worlds["a"] / TRUTH_FILE).stat().st_size > 0


def test_another_seed_gives_another_world(worlds):
    a, other = _dump(worlds["a"]), _dump(worlds["other"])
    for table in ("stripe_customers", "stripe_invoices", "hubspot_companies", "netsuite_invoices", "truth"):
        assert a[table] != other[table], table
    assert (worlds["a"] / TRUTH_FILE).read_bytes() != (worlds["other"] / TRUTH_FILE).read_bytes()


def test_truth_file_mirrors_truth_table(worlds):
    lines = (worlds["a"] / TRUTH_FILE).read_text().splitlines()
    with duckdb.connect(str(worlds["a"] / WORLD_FILE), read_only=True) as con:
        rows = con.execute(
            "select mismatch_type, anchor_system, anchor_id from truth order by seq"
        ).fetchall()
        meta = dict(con.execute("select key, value from meta").fetchall())
    assert [
        tuple(json.loads(x)[k] for k in ("mismatch_type", "anchor_system", "anchor_id")) for x in lines
    ] == [tuple(r) for r in rows]
    assert meta["seed"] == str(SEED) and meta["generated_at"] == str(NOW) and meta["customers"] == str(SMALL)


# -- the truth: every type, anchored in the right system --------------------------------------------
def test_every_mismatch_type_is_planted_with_anchors_in_its_system(noisy):
    counts = dict(noisy.execute("select mismatch_type, count(*) from truth group by 1").fetchall())
    assert set(counts) == set(MISMATCH_TYPES), set(MISMATCH_TYPES) - set(counts)
    for kind, table in ANCHOR_TABLE.items():
        rows = noisy.execute(
            "select distinct anchor_system from truth where mismatch_type = ?", [kind]
        ).fetchall()
        assert rows == [(ANCHOR_SYSTEM[kind],)]
        assert table.startswith(ANCHOR_SYSTEM[kind])
        missing = noisy.execute(
            f"select t.anchor_id from truth t left join {table} x on x.id::varchar = t.anchor_id "
            "where t.mismatch_type = ? and x.id is null",
            [kind],
        ).fetchall()
        assert not missing, f"{kind}: anchors not in {table}: {missing[:5]}"
    dupes = noisy.execute(
        "select mismatch_type, anchor_id from truth group by all having count(*) > 1"
    ).fetchall()
    assert not dupes
    # detectable no earlier than its event; an age-based one (sync SLA, grace, onboarding) at least an
    # hour away from `now`, so a pipeline run minutes later sees the same truth
    early = noisy.execute("select count(*) from truth where detectable_at < event_at").fetchone()[0]
    near = noisy.execute(
        "select count(*) from truth where detectable_at > event_at and abs(detectable_at - ?) < ?",
        [NOW, HOUR],
    ).fetchone()[0]
    future = noisy.execute("select count(*) from truth where detectable_at > ?", [NOW]).fetchone()[0]
    assert early == 0 and near == 0 and future == 0


def test_customer_missing_in_erp_has_live_subscription_and_no_erp_customer(noisy):
    anchors = _anchors(noisy, "customer_missing_in_erp")
    in_erp = _set(noisy, "select upper(external_id) from netsuite_customers where external_id is not null")
    live = _set(noisy, "select customer from stripe_subscriptions where status in ('active', 'past_due')")
    assert anchors and not {a.upper() for a in anchors} & in_erp
    assert anchors <= live
    unlinked = _set(noisy, "select stripe_customer_id from company_refs where netsuite_customer_id is null")
    assert anchors <= unlinked


def test_duplicate_erp_customers_come_in_groups_sharing_one_domain(noisy):
    rows = noisy.execute(
        "select t.details->>'group', c.id, split_part(c.email, '@', 2) from truth t "
        "join netsuite_customers c on c.id = t.anchor_id where t.mismatch_type = 'duplicate_erp_customer'"
    ).fetchall()
    groups: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for group, member, domain in rows:
        groups[group].append((member, domain))
    assert groups
    for group, members in groups.items():
        assert len(members) >= 2, group
        assert len({d for _, d in members}) == 1, (group, members)
    # no other ERP customers share a domain: the planted groups are the only duplicates
    shared = _set(
        noisy,
        "select split_part(email, '@', 2) from netsuite_customers group by 1 having count(*) > 1",
    )
    assert shared == {m[0][1] for m in groups.values()}


def test_subscription_and_contract_defects(noisy):
    missing = _anchors(noisy, "subscription_missing_in_erp")
    ordered = _set(noisy, "select upper(external_id) from netsuite_sales_orders")
    live = _set(noisy, "select id from stripe_subscriptions where status in ('active', 'past_due')")
    assert missing and missing <= live and not {m.upper() for m in missing} & ordered

    orders = noisy.execute(
        "select o.id, o.status, s.status, s.ended_at from truth t join netsuite_sales_orders o "
        "on o.id = t.anchor_id left join stripe_subscriptions s on s.id = o.external_id "
        "where t.mismatch_type = 'erp_contract_without_active_subscription'"
    ).fetchall()
    assert orders
    for order, erp_status, sub_status, ended in orders:
        assert erp_status == "pendingBilling", order  # still open in the ERP
        assert sub_status in (None, "canceled"), order
        assert ended is None or ended < NOW
    # the only open orders whose subscription is over are the planted ones
    open_dead = _set(
        noisy,
        "select o.id from netsuite_sales_orders o join stripe_subscriptions s on s.id = o.external_id "
        "where o.status = 'pendingBilling' and s.status = 'canceled'",
    )
    assert open_dead == {o[0] for o in orders}


def test_invoice_missing_in_erp_is_absent_and_older_than_the_sync_sla(noisy):
    anchors = _anchors(noisy, "invoice_missing_in_erp")
    assert anchors
    synced = _set(noisy, "select upper(external_id) from netsuite_invoices where external_id is not null")
    assert not {a.upper() for a in anchors} & synced
    finalized = dict(
        noisy.execute(
            "select id, finalized_at from stripe_invoices where id in (select anchor_id from truth "
            "where mismatch_type = 'invoice_missing_in_erp')"
        ).fetchall()
    )
    assert all(NOW - at > SYNC_SLA + HOUR for at in finalized.values())
    # every Stripe invoice missing from the ERP is accounted for: planted, lagging (benign), or its
    # customer is missing from the ERP altogether
    absent = _set(
        noisy,
        "select i.id from stripe_invoices i left join netsuite_invoices n on n.external_id = i.id "
        "where n.id is null",
    )
    lagging = _set(noisy, "select record_id from benign where kind = 'invoice_sync_lag'")
    orphaned = _set(
        noisy,
        "select i.id from stripe_invoices i join truth t on t.anchor_id = i.customer "
        "and t.mismatch_type = 'customer_missing_in_erp'",
    )
    assert absent == anchors | lagging | orphaned
    assert not lagging & anchors
    lag_ages = noisy.execute(
        "select max(? - finalized_at) from stripe_invoices where id in "
        "(select record_id from benign where kind = 'invoice_sync_lag')",
        [NOW],
    ).fetchone()[0]
    assert lag_ages < SYNC_SLA - HOUR


def _pairs(con, predicate: str) -> set[str]:
    return _set(
        con,
        "select i.id from stripe_invoices i join netsuite_invoices n on n.external_id = i.id "
        f"where {predicate}",
    )


def test_invoice_amount_currency_and_payment_defects_are_exactly_the_planted_ones(noisy):
    divisor = DIVISOR.format(c="i.currency")
    amount = _pairs(noisy, f"n.total <> round(i.total_minor / {divisor}, 2)")
    assert amount and amount == _anchors(noisy, "invoice_amount_mismatch")
    currency = _pairs(noisy, "n.currency <> upper(i.currency)")
    assert currency and currency == _anchors(noisy, "invoice_currency_mismatch")
    payment = _pairs(noisy, "i.status = 'paid' and n.status = 'open'")
    assert payment and payment == _anchors(noisy, "payment_status_mismatch")
    # the other way round (open in Stripe, paid in the ERP) never happens
    assert not _pairs(noisy, "i.status = 'open' and n.status = 'paidInFull'")
    # JPY is zero-decimal: Stripe's minor units are yen, and the ERP agrees on untouched invoices
    jpy = noisy.execute(
        "select count(*) filter (where n.total = i.total_minor), count(*) from stripe_invoices i "
        "join netsuite_invoices n on n.external_id = i.id where i.currency = 'jpy' and i.id not in "
        "(select anchor_id from truth)"
    ).fetchone()
    assert jpy[1] > 0 and jpy[0] == jpy[1]


def test_credit_note_missing_in_erp(noisy):
    anchors = _anchors(noisy, "credit_note_missing_in_erp")
    issued = _set(noisy, "select id from stripe_credit_notes where status = 'issued'")
    memos = _set(noisy, "select external_id from netsuite_credit_memos")
    assert anchors and anchors <= issued and not anchors & memos
    # every issued credit note of a customer in the ERP is either in the ERP or planted
    in_erp = _set(
        noisy,
        "select cn.id from stripe_credit_notes cn join stripe_invoices i on i.id = cn.invoice "
        "join netsuite_invoices n on n.external_id = i.id where cn.status = 'issued'",
    )
    assert in_erp - memos == anchors


def _org_state(con, kind: str) -> list[tuple]:
    return con.execute(
        "select o.id, lower(o.organization_fields->>'support_tier'), t.details, r.stripe_customer_id, "
        "c.delinquent from truth t join zendesk_organizations o on o.id::varchar = t.anchor_id "
        "join company_refs r on r.zendesk_organization_id = o.id "
        "join stripe_customers c on c.id = r.stripe_customer_id where t.mismatch_type = ?",
        [kind],
    ).fetchall()


def _sub_statuses(con, customer: str) -> list[tuple]:
    return con.execute(
        "select status, ended_at from stripe_subscriptions where customer = ?", [customer]
    ).fetchall()


def test_entitlement_defects_have_a_paid_tier_and_the_right_billing_state(noisy):
    tier_rows = _org_state(noisy, "entitlement_tier_mismatch")
    assert tier_rows
    for org, tier, details, _, _ in tier_rows:
        details = json.loads(details)
        assert tier == details["actual"] != details["expected"], org
        assert tier in TIERS

    delinquent = _org_state(noisy, "entitlement_on_delinquent_account")
    assert delinquent
    for org, tier, _, customer, is_delinquent in delinquent:
        assert TIERS.index(tier) > 0, org  # kept above `basic`
        assert is_delinquent
        assert "past_due" in {s for s, _ in _sub_statuses(noisy, customer)}
        oldest_open = noisy.execute(
            "select min(period_start_at) from stripe_invoices where customer = ? and status = 'open'",
            [customer],
        ).fetchone()[0]
        assert NOW - oldest_open > GRACE_PERIOD + HOUR, org

    canceled = _org_state(noisy, "entitlement_after_cancellation")
    assert canceled
    for org, tier, _, customer, _ in canceled:
        assert TIERS.index(tier) > 0, org
        subs = _sub_statuses(noisy, customer)
        assert subs and all(s == "canceled" and ended < NOW for s, ended in subs), org


def test_closed_won_without_subscription(noisy):
    rows = noisy.execute(
        "select d.id, d.dealstage, d.closedate_at, r.stripe_customer_id from truth t "
        "join hubspot_deals d on d.id = t.anchor_id "
        "join company_refs r on r.hubspot_company_id = d.company_id "
        "where t.mismatch_type = 'closed_won_without_subscription'"
    ).fetchall()
    assert rows
    for deal, stage, closed, customer in rows:
        assert stage == "closedwon"
        assert NOW - closed > ONBOARDING_SLA + HOUR, deal
        subs = noisy.execute(
            "select count(*) from stripe_subscriptions where customer = ?", [customer]
        ).fetchone()[0]
        assert subs == 0, deal


def test_crm_arr_mismatch_is_beyond_tolerance_and_noise_within_it(noisy):
    divisor = DIVISOR.format(c="s.currency")
    rows = noisy.execute(
        "with billing as (select s.customer, sum(p.unit_amount_minor * s.quantity / "
        f"{divisor} * case p.recurring_interval when 'month' then 12 else 1 end) as arr "
        "from stripe_subscriptions s join stripe_prices p on p.id = s.price "
        "where s.status in ('active', 'past_due') group by 1) "
        "select h.id, h.arr::double, b.arr::double from hubspot_companies h "
        "join company_refs r on r.hubspot_company_id = h.id "
        "join billing b on b.customer = r.stripe_customer_id"
    ).fetchall()
    off = {company for company, crm, billing in rows if abs(crm - billing) > 0.01 * billing}
    assert off and off == _anchors(noisy, "crm_arr_mismatch")
    # benign: some companies differ from billing, but within the 1 % tolerance
    within = [c for c, crm, billing in rows if 0.01 < abs(crm - billing) <= 0.01 * billing]
    assert within


# -- benign noise ----------------------------------------------------------------------------------
def test_every_benign_kind_is_present_and_not_in_the_truth(noisy):
    counts = dict(noisy.execute("select kind, count(*) from benign group by 1").fetchall())
    assert set(counts) == set(BENIGN_NOT), counts
    assert all(n > 0 for n in counts.values())
    for kind, confusable in BENIGN_NOT.items():
        if not confusable:
            continue
        clash = noisy.execute(
            "select b.record_id, t.mismatch_type from benign b join truth t on t.anchor_id = b.record_id "
            f"where b.kind = ? and t.mismatch_type in ({', '.join('?' * len(confusable))})",
            [kind, *confusable],
        ).fetchall()
        assert not clash, (kind, clash[:5])
    clash = noisy.execute(
        "select b.customer_ref from benign b join truth t using (customer_ref) "
        "where b.kind = 'arr_within_tolerance' and t.mismatch_type = 'crm_arr_mismatch'"
    ).fetchall()
    assert not clash, clash[:5]


def test_benign_differences_are_visible_in_the_data(noisy):
    # tier and name case, upper-cased external ids: present and only a matter of case
    assert (
        noisy.execute(
            "select count(*) from zendesk_organizations where organization_fields->>'support_tier' "
            "<> lower(organization_fields->>'support_tier')"
        ).fetchone()[0]
        == noisy.execute("select count(*) from benign where kind = 'tier_case'").fetchone()[0]
    )
    upper_ids = noisy.execute(
        "select count(*) from netsuite_customers n join stripe_customers s on upper(s.id) = n.external_id "
        "where n.external_id <> s.id"
    ).fetchone()[0]
    assert (
        upper_ids
        == noisy.execute(
            "select count(*) from benign where kind = 'id_case' and system = 'netsuite'"
        ).fetchone()[0]
    )
    assert upper_ids > 0
    # past due inside the grace period: an open invoice younger than 14 days, no entitlement defect
    within_grace = noisy.execute(
        "select count(*) from stripe_invoices where status = 'open' and ? - period_start_at < ?",
        [NOW, GRACE_PERIOD - HOUR],
    ).fetchone()[0]
    assert within_grace > 0
    # trials and cancel-at-period-end subscriptions exist (plan.py tracks these as benign too)
    statuses = dict(noisy.execute("select status, count(*) from stripe_subscriptions group by 1").fetchall())
    assert statuses.get("trialing", 0) > 0 and statuses.get("past_due", 0) > 0
    assert noisy.execute("select count(*) from stripe_subscriptions where cancel_at_period_end").fetchone()[0]
    assert noisy.execute("select count(*) from stripe_customers where currency = 'jpy'").fetchone()[0] > 0


# -- the rates override ----------------------------------------------------------------------------
def test_rates_override_plants_only_the_chosen_type(tmp_path):
    only = "invoice_amount_mismatch"
    rates = dict.fromkeys(MISMATCH_TYPES, 0.0) | {only: 0.01}
    generate(tmp_path, SMALL, SEED, rates=rates, now=NOW)
    with duckdb.connect(str(tmp_path / WORLD_FILE), read_only=True) as con:
        counts = dict(con.execute("select mismatch_type, count(*) from truth group by 1").fetchall())
        eligible = con.execute("select count(*) from netsuite_invoices").fetchone()[0]
    assert set(counts) == {only}
    # at least MIN_PER_TYPE (2), otherwise about 1 % of the eligible invoices
    assert 2 <= counts[only] <= max(2, round(0.02 * eligible))
    lines = [json.loads(x) for x in (tmp_path / TRUTH_FILE).read_text().splitlines()]
    assert {x["mismatch_type"] for x in lines} == {only} and len(lines) == counts[only]


def test_rates_reject_unknown_types(tmp_path):
    with pytest.raises(ValueError, match="unknown mismatch types"):
        generate(tmp_path, 10, SEED, rates={"invoice_gone": 0.1}, now=NOW)


# -- parse_scale ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("scale", "expected"), [("small", 1_000), ("medium", 100_000), ("large", 1_000_000), ("42", 42), (7, 7)]
)
def test_parse_scale_accepts_names_and_counts(scale, expected):
    assert parse_scale(scale) == expected
    assert SCALES["medium"] == 100_000


@pytest.mark.parametrize("scale", ["huge", "", "-3", "1e3", "0", 0, -1, "Small"])
def test_parse_scale_rejects_bad_input(scale):
    with pytest.raises(ValueError, match="scale"):
        parse_scale(scale)


# -- id encoding -------------------------------------------------------------------------------------
@pytest.mark.parametrize("table", sorted(ids.STRIPE_PREFIX))
def test_stripe_ids_round_trip(table):
    top = 36**7 - 1
    seqs = np.array([1, 2, 35, 36, 1295, 1296, 99_999, 123_456_789, top])
    batch = ids.stripe_ids(table, seqs)
    for seq, object_id in zip(seqs, batch, strict=True):
        assert object_id == ids.stripe_id(table, int(seq))
        assert object_id.startswith(ids.STRIPE_PREFIX[table])
        assert len(object_id) == len(ids.STRIPE_PREFIX[table]) + 14
        assert ids.stripe_seq(table, object_id) == seq


def test_stripe_ids_stay_unique_when_uppercased():
    seqs = np.arange(1, 200_001)
    batch = ids.stripe_ids("stripe_invoices", seqs)
    assert len(set(batch)) == len(seqs)
    assert len({s.upper() for s in batch}) == len(seqs)
    assert all(
        ids.stripe_seq("stripe_invoices", str(s)) == i for i, s in zip(seqs[:2000], batch, strict=False)
    )


def test_garbage_ids_decode_to_none():
    good = ids.stripe_id("stripe_invoices", 4242)
    tail_changed = good[:-1] + ("A" if good[-1] != "A" else "B")
    for bad in (
        "",
        "in_",
        "in_!!!!!!!!!!!!!!",
        "in_0000000aaaaaaa",  # seq 0
        good.upper(),  # an upper-cased id is not ours (the ERP's copy must be compared case-blind)
        tail_changed,
        good + "x",
        "cus_" + good[3:],
        ids.stripe_id("stripe_customers", 4242).replace("cus_", "in_"),  # another table's tail
    ):
        assert ids.stripe_seq("stripe_invoices", bad) is None, bad
    with pytest.raises(ValueError):
        ids.stripe_ids("stripe_invoices", np.array([0]))
    with pytest.raises(ValueError):
        ids.stripe_ids("stripe_invoices", np.array([36**7]))


@pytest.mark.parametrize("table", sorted(ids.NUMERIC_BASE))
def test_numeric_ids_round_trip(table):
    for seq in (1, 2, 999, 123_456):
        object_id = ids.numeric_id(table, seq)
        assert ids.numeric_seq(table, object_id) == seq
        assert ids.numeric_seq(table, str(object_id)) == seq
    for bad in ("abc", "", None, "1.5", ids.NUMERIC_BASE[table], ids.NUMERIC_BASE[table] - 7):
        assert ids.numeric_seq(table, bad) is None, bad


def test_generated_ids_decode_to_their_seq(worlds):
    with duckdb.connect(str(worlds["a"] / WORLD_FILE), read_only=True) as con:
        for table in ("stripe_customers", "stripe_invoices", "stripe_subscriptions"):
            for seq, object_id in con.execute(f"select seq, id from {table}").fetchall():
                assert ids.stripe_seq(table, object_id) == seq
        for table in ("hubspot_companies", "zendesk_tickets", "netsuite_invoices"):
            for seq, object_id in con.execute(f"select seq, id from {table}").fetchall():
                assert ids.numeric_seq(table, object_id) == seq
        seqs = con.execute("select count(*), max(seq), min(seq) from stripe_invoices").fetchone()
        assert seqs[0] == seqs[1] and seqs[2] == 1  # dense 1..n
