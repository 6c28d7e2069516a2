{{ config(
    materialized="incremental",
    incremental_strategy="delete+insert",
    unique_key="invoice_key",
    on_schema_change="fail",
    post_hook="{{ delete_superseded_erp_only_rows('stripe_invoice_id', 'netsuite_invoice_id') }}",
) }}

{#
    One row per invoice: the Stripe invoice and the NetSuite invoice whose external id is its id (any
    case) side by side, with both totals, statuses and currencies. An ERP invoice no Stripe invoice
    claims is a row of its own (`invoice_key` 'netsuite:<id>'); if several ERP invoices claim one
    Stripe invoice, the lowest id pairs and the others stand alone. customer_key: the Stripe
    customer's, else the NetSuite customer's (int_customer_identity).

    Incremental (DECISIONLOG.md, "Canonical marts"): an incremental run recomputes only the keys whose
    Stripe or NetSuite version landed after that side's high-water mark in the table, the keys a
    changed ERP invoice was paired with before, and the keys whose customer_key identity now resolves
    differently; delete+insert on invoice_key replaces them.
#}

with

identity as (
    select
        source_system,
        native_id,
        customer_key
    from {{ ref('int_customer_identity') }}
),

stripe_invoices as (
    select * from {{ ref('stg_stripe__invoices') }}
),

erp_invoices as (
    {{ erp_claims(ref('stg_netsuite__invoices'), 'invoice_id') }}
),

pairs as (
    select
        s.invoice_id as stripe_invoice_id,
        n.invoice_id as netsuite_invoice_id,
        s.customer_id as stripe_customer_id,
        n.customer_id as netsuite_customer_id,
        s.subscription_id as stripe_subscription_id,
        n.sales_order_id as netsuite_sales_order_id,
        s.number as stripe_number,
        n.tran_id as netsuite_tran_id,
        s.status as stripe_status,
        n.status as netsuite_status,
        s.currency as stripe_currency,
        n.currency as netsuite_currency,
        s.total as stripe_total,
        n.total as netsuite_total,
        s.amount_paid as stripe_amount_paid,
        s.amount_remaining as stripe_amount_remaining,
        n.amount_remaining as netsuite_amount_remaining,
        s.billing_reason,
        s.period_start_at,
        s.period_end_at,
        s.due_at as stripe_due_at,
        n.due_date as netsuite_due_date,
        s.finalized_at as stripe_finalized_at,
        s.paid_at as stripe_paid_at,
        s.voided_at as stripe_voided_at,
        n.tran_date as netsuite_tran_date,
        s.created_at as stripe_created_at,
        n.created_at as netsuite_created_at,
        s._loaded_at as _stripe_loaded_at,
        n._loaded_at as _netsuite_loaded_at,
        coalesce(s.invoice_id, 'netsuite:' || n.invoice_id) as invoice_key,
        coalesce(si.customer_key, ni.customer_key) as customer_key,
        case
            when s.invoice_id is not null and n.invoice_id is not null then 'matched'
            when s.invoice_id is not null then 'stripe_only'
            else 'netsuite_only'
        end as match_status
    from stripe_invoices as s
    full outer join erp_invoices as n on upper(s.invoice_id) = n.external_key and n.claim_rank = 1
    left join identity as si on si.source_system = 'stripe' and s.customer_id = si.native_id
    left join identity as ni on ni.source_system = 'netsuite' and n.customer_id = ni.native_id
)

{% if is_incremental() %}

    ,

    {{ changed_pair_keys(
        'invoice_key', 'stripe_invoices', 'invoice_id',
        'erp_invoices', 'invoice_id', 'netsuite_invoice_id'
    ) }}

{% endif %}

select
    invoice_key,
    customer_key,
    match_status,
    stripe_invoice_id,
    netsuite_invoice_id,
    stripe_customer_id,
    netsuite_customer_id,
    stripe_subscription_id,
    netsuite_sales_order_id,
    stripe_number,
    netsuite_tran_id,
    stripe_status,
    netsuite_status,
    stripe_currency,
    netsuite_currency,
    stripe_total,
    netsuite_total,
    stripe_amount_paid,
    stripe_amount_remaining,
    netsuite_amount_remaining,
    billing_reason,
    period_start_at,
    period_end_at,
    stripe_due_at,
    netsuite_due_date,
    stripe_finalized_at,
    stripe_paid_at,
    stripe_voided_at,
    netsuite_tran_date,
    stripe_created_at,
    netsuite_created_at,
    _stripe_loaded_at,
    _netsuite_loaded_at,
    {{ build_columns() }}
from pairs
{% if is_incremental() %}
    where invoice_key in (select changed_keys.invoice_key from changed_keys)
{% endif %}
