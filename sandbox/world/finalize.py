"""Staging tables → the world's vendor tables: seqs in creation order, vendor ids, resolved keys.

Staging rows (`g_<table>`) carry temporary keys `k` and `<name>_k` references. Here every table gets
`seq = row_number() over (order by created_at, k)` (so seq order is creation order, which the servers'
paging and `created` filters rely on), the id that seq encodes (sandbox/world/ids.py), and each
reference is swapped for the referenced row's vendor id.
"""

from __future__ import annotations

import time

import duckdb
import numpy as np
import pyarrow as pa

from sandbox.world.ids import NUMERIC_BASE, STRIPE_PREFIX, stripe_ids

# Staging columns per table, in the order emit.py writes them.
STAGING = {
    "stripe_products": "k, name, tier, created_at, updated_at",
    "stripe_prices": (
        "k, product_k, currency, unit_amount_minor, recurring_interval, nickname, created_at, updated_at"
    ),
    "stripe_customers": (
        "k, name, email, currency, balance_minor, delinquent, hubspot_k, created_at, updated_at"
    ),
    "stripe_subscriptions": (
        "k, customer_k, price_k, quantity, currency, status, cancel_at_period_end, "
        "current_period_start_at, current_period_end_at, trial_start_at, trial_end_at, canceled_at, "
        "ended_at, start_at, metadata, created_at, updated_at"
    ),
    "stripe_invoices": (
        "k, number, customer_k, subscription_k, currency, status, billing_reason, total_minor, "
        "amount_due_minor, amount_paid_minor, amount_remaining_minor, period_start_at, period_end_at, "
        "due_at, finalized_at, paid_at, voided_at, created_at, updated_at"
    ),
    "stripe_charges": (
        "k, customer_k, invoice_k, amount_minor, amount_captured_minor, amount_refunded_minor, currency, "
        "status, failure_code, created_at, updated_at"
    ),
    "stripe_credit_notes": (
        "k, number, customer_k, invoice_k, currency, amount_minor, status, type, reason, voided_at, "
        "created_at, updated_at"
    ),
    "stripe_usage_records": (
        "k, customer_k, subscription_k, meter, quantity, period_start_at, period_end_at, created_at, "
        "updated_at"
    ),
    "hubspot_companies": (
        "k, name, domain, lifecyclestage, arr, arr_currency, stripe_customer_k, archived, created_at, "
        "updated_at"
    ),
    "hubspot_contacts": "k, email, firstname, lastname, company_k, archived, created_at, updated_at",
    "hubspot_deals": (
        "k, dealname, dealstage, pipeline, amount, deal_currency_code, plan, company_k, closedate_at, "
        "archived, created_at, updated_at"
    ),
    "zendesk_organizations": (
        "k, name, external_k, external_upper, domain_names, organization_fields, tags, created_at, updated_at"
    ),
    "zendesk_users": "k, name, email, role, organization_k, created_at, updated_at",
    "zendesk_tickets": "k, subject, status, priority, requester_k, organization_k, created_at, updated_at",
    "netsuite_subsidiaries": "k, name, currency, created_at, updated_at",
    "netsuite_customers": (
        "k, external_k, external_upper, entity_id, company_name, email, subsidiary_id, currency, "
        "is_inactive, created_at, updated_at"
    ),
    "netsuite_sales_orders": (
        "k, external_k, customer_k, currency, total, status, item, start_at, end_at, created_at, updated_at"
    ),
    "netsuite_invoices": (
        "k, external_k, customer_k, sales_order_k, currency, total, amount_remaining, status, tran_at, "
        "due_at, created_at, updated_at"
    ),
    "netsuite_customer_payments": (
        "k, external_k, customer_k, invoice_k, currency, amount, tran_at, created_at, updated_at"
    ),
    "netsuite_credit_memos": (
        "k, external_k, customer_k, invoice_k, currency, amount, tran_at, created_at, updated_at"
    ),
    "truth": (
        "mismatch_type, anchor_system, anchor_table, anchor_k, customer_ref, origin, event_kind, "
        "event_at, detectable_at, details"
    ),
    "benign": "kind, system, record_table, record_k, customer_ref, details, created_at",
    "company_refs": "customer_ref, stripe_k, hubspot_k, zendesk_k, netsuite_k, domain",
}
VENDOR_TABLES = [t for t in STAGING if t not in ("truth", "benign", "company_refs")]

# Final column -> (staging reference column, referenced table).
REFERENCES = {
    "stripe_prices": {"product": ("product_k", "stripe_products")},
    "stripe_subscriptions": {
        "customer": ("customer_k", "stripe_customers"),
        "price": ("price_k", "stripe_prices"),
    },
    "stripe_invoices": {
        "customer": ("customer_k", "stripe_customers"),
        "subscription": ("subscription_k", "stripe_subscriptions"),
    },
    "stripe_charges": {
        "customer": ("customer_k", "stripe_customers"),
        "invoice": ("invoice_k", "stripe_invoices"),
    },
    "stripe_credit_notes": {
        "customer": ("customer_k", "stripe_customers"),
        "invoice": ("invoice_k", "stripe_invoices"),
    },
    "stripe_usage_records": {
        "customer": ("customer_k", "stripe_customers"),
        "subscription": ("subscription_k", "stripe_subscriptions"),
    },
    "hubspot_companies": {"stripe_customer_id": ("stripe_customer_k", "stripe_customers")},
    "hubspot_contacts": {"company_id": ("company_k", "hubspot_companies")},
    "hubspot_deals": {"company_id": ("company_k", "hubspot_companies")},
    "zendesk_organizations": {"external_id": ("external_k", "stripe_customers")},
    "zendesk_users": {"organization_id": ("organization_k", "zendesk_organizations")},
    "zendesk_tickets": {
        "requester_id": ("requester_k", "zendesk_users"),
        "organization_id": ("organization_k", "zendesk_organizations"),
    },
    "netsuite_customers": {"external_id": ("external_k", "stripe_customers")},
    "netsuite_sales_orders": {
        "external_id": ("external_k", "stripe_subscriptions"),
        "customer_id": ("customer_k", "netsuite_customers"),
    },
    "netsuite_invoices": {
        "external_id": ("external_k", "stripe_invoices"),
        "customer_id": ("customer_k", "netsuite_customers"),
        "sales_order_id": ("sales_order_k", "netsuite_sales_orders"),
    },
    "netsuite_customer_payments": {
        "external_id": ("external_k", "stripe_charges"),
        "customer_id": ("customer_k", "netsuite_customers"),
        "invoice_id": ("invoice_k", "netsuite_invoices"),
    },
    "netsuite_credit_memos": {
        "external_id": ("external_k", "stripe_credit_notes"),
        "customer_id": ("customer_k", "netsuite_customers"),
        "invoice_id": ("invoice_k", "netsuite_invoices"),
    },
}
# Final columns computed from other parts of the row ("$seq", "$ref.<column>" and staging columns).
EXPRESSIONS = {
    "stripe_customers": {
        "metadata": "case when g.hubspot_k is null then '{}' "
        "else json_object('hubspot_company_id', hc.id)::varchar end",
    },
    "stripe_subscriptions": {"item_id": "si.id"},
    "netsuite_sales_orders": {"tran_id": "'SO' || m.seq"},
    "netsuite_invoices": {"tran_id": "'INV' || m.seq"},
    "netsuite_customer_payments": {"tran_id": "'PYMT' || m.seq"},
    "netsuite_credit_memos": {"tran_id": "'CM' || m.seq"},
}
EXTRA_JOINS = {
    "stripe_customers": "left join key_hubspot_companies hc on hc.k = g.hubspot_k",
    "stripe_subscriptions": "left join key_stripe_subscription_items si on si.seq = m.seq",
}
UPPER_FLAGS = {
    "zendesk_organizations": {"external_id": "external_upper"},
    "netsuite_customers": {"external_id": "external_upper"},
}


def _column_types(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, str]:
    rows = con.execute(
        "select column_name, data_type from information_schema.columns where table_name = ? "
        "order by ordinal_position",
        [table],
    ).fetchall()
    return dict(rows)


def create_staging(con: duckdb.DuckDBPyConnection) -> None:
    for table, columns in STAGING.items():
        final = _column_types(con, table)
        defs = []
        for col in (c.strip() for c in columns.split(",")):
            if col in final:
                kind = final[col]
            elif col == "k" or col.endswith("_k"):
                kind = "bigint"
            elif col == "external_upper":
                kind = "boolean"
            else:
                kind = "varchar"
            defs.append(f"{col} {kind}")
        con.execute(f"create table g_{table} ({', '.join(defs)})")


def to_arrow(table: str, rows: list[tuple]) -> pa.Table:
    """Staged rows of `table` as an Arrow table with the staging column names."""
    columns = [c.strip() for c in STAGING[table].split(",")]
    return pa.table(
        {name: pa.array(values) for name, values in zip(columns, zip(*rows, strict=True), strict=True)}
    )


def append(con: duckdb.DuckDBPyConnection, table: str, batch: pa.Table) -> None:
    if batch.num_rows == 0:
        return
    con.register("staged_batch", batch)
    con.execute(f"insert into g_{table} select * from staged_batch")
    con.unregister("staged_batch")


def derive_payments(con: duckdb.DuckDBPyConnection, now: int) -> None:
    """Stripe charges and NetSuite payments follow from their invoices one to one: build them in SQL.

    A charge settles (or fails on) every finalized invoice; each ERP invoice paid in full has one
    customer payment, a few hours after the ERP invoice. Lags come from an integer hash of the key, so
    they are deterministic without a random stream.
    """
    # a failed charge is the payment attempt an hour after finalizing, or has not happened yet: never
    # stamped in the future (measured: 27 of 710k charges of a medium world were, which a real Stripe
    # never serves and the quality gate rightly blocks)
    attempted = "least(coalesce(i.paid_at, i.finalized_at + 3600), ?)"
    con.execute(
        "insert into g_stripe_charges select i.k, i.customer_k, i.k, i.total_minor, i.amount_paid_minor, "
        "coalesce(n.amount_minor, 0), i.currency, "
        "case when i.status = 'paid' then 'succeeded' else 'failed' end, "
        "case when i.status = 'paid' then null else 'card_declined' end, "
        f"{attempted}, {attempted} "
        "from g_stripe_invoices i left join g_stripe_credit_notes n on n.k = i.k and n.status = 'issued'",
        [now - 1] * 2,
    )
    # keys reach ~3.5e9 at large scale: reduce before multiplying so the hash stays inside INT64
    lag = "least(i.created_at + 60 + ((i.k % 1000003) * 2654435761) % 10741, ?)"
    con.execute(
        f"insert into g_netsuite_customer_payments select i.k, i.k, i.customer_k, i.k, i.currency, i.total, "
        f"{lag}, {lag}, {lag} from g_netsuite_invoices i where i.status = 'paidInFull'",
        [now - 1] * 3,
    )


def _key_table(con: duckdb.DuckDBPyConnection, table: str) -> None:
    """key_<table>(k, seq, id): the seq and vendor id each staged row will get."""
    con.execute(
        f"create temp table seq_{table} as "
        f"select k, row_number() over (order by created_at, k) as seq from g_{table}"
    )
    count = con.execute(f"select count(*) from seq_{table}").fetchall()[0][0]
    if table in STRIPE_PREFIX:
        ids = pa.table(
            {
                "seq": pa.array(np.arange(1, count + 1, dtype=np.int64)),
                "id": pa.array(stripe_ids(table, np.arange(1, count + 1)) if count else [], type=pa.string()),
            }
        )
        con.register("id_batch", ids)
        con.execute(
            f"create temp table key_{table} as select s.k, s.seq, i.id from seq_{table} s "
            "join id_batch i using (seq)"
        )
        con.unregister("id_batch")
    else:
        cast = "" if table.startswith("zendesk_") else "::varchar"
        con.execute(
            f"create temp table key_{table} as "
            f"select k, seq, ({NUMERIC_BASE[table]} + seq){cast} as id from seq_{table}"
        )


def _subscription_item_keys(con: duckdb.DuckDBPyConnection) -> None:
    count = con.execute("select count(*) from seq_stripe_subscriptions").fetchall()[0][0]
    seqs = np.arange(1, count + 1)
    items = pa.table(
        {
            "seq": pa.array(seqs.astype(np.int64)),
            "id": pa.array(stripe_ids("stripe_subscription_items", seqs) if count else [], type=pa.string()),
        }
    )
    con.register("item_batch", items)
    con.execute("create temp table key_stripe_subscription_items as select * from item_batch")
    con.unregister("item_batch")


def _insert(con: duckdb.DuckDBPyConnection, table: str) -> None:
    final = list(_column_types(con, table))
    refs = REFERENCES.get(table, {})
    exprs = EXPRESSIONS.get(table, {})
    upper = UPPER_FLAGS.get(table, {})
    joins = [f"join key_{table} m on m.k = g.k"]
    select = []
    for col in final:
        if col == "seq":
            select.append("m.seq")
        elif col == "id":
            select.append("m.id")
        elif col in exprs:
            select.append(exprs[col])
        elif col in refs:
            staged, target = refs[col]
            alias = f"r_{col}"
            joins.append(f"left join key_{target} {alias} on {alias}.k = g.{staged}")
            value = f"{alias}.id"
            if col in upper:
                value = f"case when g.{upper[col]} then upper({value}) else {value} end"
            select.append(value)
        else:
            select.append(f"g.{col}")
    if table in EXTRA_JOINS:
        joins.append(EXTRA_JOINS[table])
    con.execute(
        f"insert into {table} select {', '.join(select)} from g_{table} g {' '.join(joins)} order by m.seq"
    )


def finalize(con: duckdb.DuckDBPyConnection, now: int, progress=lambda message: None) -> None:
    started = time.monotonic()
    derive_payments(con, now)
    for table in VENDOR_TABLES:
        _key_table(con, table)
    _subscription_item_keys(con)
    progress(f"assigned ids ({time.monotonic() - started:.1f}s)")
    for table in VENDOR_TABLES:
        _insert(con, table)
        progress(f"finalized {table} ({time.monotonic() - started:.1f}s)")
    union = " union all ".join(f"select '{t}' as t, k, id::varchar as id from key_{t}" for t in VENDOR_TABLES)
    con.execute(f"create temp table key_all as {union}")
    con.execute(
        "insert into truth select row_number() over (order by g.event_at, g.anchor_table, g.anchor_k), "
        "g.mismatch_type, g.anchor_system, a.id, g.customer_ref, g.origin, g.event_kind, g.event_at, "
        "g.detectable_at, g.details from g_truth g "
        "join key_all a on a.t = g.anchor_table and a.k = g.anchor_k"
    )
    con.execute(
        "insert into benign select row_number() over (order by g.record_table, g.record_k, g.kind), g.kind, "
        "g.system, a.id, g.customer_ref, g.details, g.created_at from g_benign g "
        "join key_all a on a.t = g.record_table and a.k = g.record_k"
    )
    con.execute(
        "insert into company_refs select g.customer_ref, s.id, h.id, z.id, n.id, g.domain "
        "from g_company_refs g "
        "left join key_stripe_customers s on s.k = g.stripe_k "
        "left join key_hubspot_companies h on h.k = g.hubspot_k "
        "left join key_zendesk_organizations z on z.k = g.zendesk_k "
        "left join key_netsuite_customers n on n.k = g.netsuite_k"
    )
    for table in STAGING:
        con.execute(f"drop table g_{table}")
