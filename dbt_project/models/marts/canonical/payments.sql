{{ config(
    materialized="incremental",
    incremental_strategy="delete+insert",
    unique_key="payment_key",
    on_schema_change="fail",
    post_hook="{{ delete_superseded_erp_only_rows('stripe_charge_id', 'netsuite_customer_payment_id') }}",
) }}

{#
    One row per payment: the Stripe charge (failed ones included) and the NetSuite customer payment
    whose external id is the charge id (any case) side by side. An ERP payment no charge claims is a
    row of its own (`payment_key` 'netsuite:<id>'). The invoice paid comes from the ERP (Stripe
    removed the charge's invoice in API 2025-03): the ERP payment's invoice, and the Stripe invoice
    that ERP invoice carries as external id. Incremental like invoices (DECISIONLOG.md).
#}

with

identity as (
    select
        source_system,
        native_id,
        customer_key
    from {{ ref('int_customer_identity') }}
),

charges as (
    select * from {{ ref('stg_stripe__charges') }}
),

erp_payments as (
    {{ erp_claims(ref('stg_netsuite__customer_payments'), 'customer_payment_id') }}
),

erp_invoice_stripe_ids as (
    select
        n.invoice_id,
        s.invoice_id as stripe_invoice_id
    from {{ ref('stg_netsuite__invoices') }} as n
    inner join {{ ref('stg_stripe__invoices') }} as s on upper(n.external_id) = upper(s.invoice_id)
),

pairs as (
    select
        c.charge_id as stripe_charge_id,
        n.customer_payment_id as netsuite_customer_payment_id,
        c.customer_id as stripe_customer_id,
        n.customer_id as netsuite_customer_id,
        n.invoice_id as netsuite_invoice_id,
        c.payment_intent_id as stripe_payment_intent_id,
        n.tran_id as netsuite_tran_id,
        c.status as stripe_status,
        c.failure_code as stripe_failure_code,
        c.currency as stripe_currency,
        n.currency as netsuite_currency,
        c.amount as stripe_amount,
        c.amount_captured as stripe_amount_captured,
        c.amount_refunded as stripe_amount_refunded,
        n.amount as netsuite_amount,
        c.is_refunded as is_stripe_refunded,
        c.created_at as stripe_created_at,
        n.tran_date as netsuite_tran_date,
        n.created_at as netsuite_created_at,
        c._loaded_at as _stripe_loaded_at,
        n._loaded_at as _netsuite_loaded_at,
        coalesce(c.invoice_id, e.stripe_invoice_id) as stripe_invoice_id,
        coalesce(c.charge_id, 'netsuite:' || n.customer_payment_id) as payment_key,
        coalesce(ci.customer_key, ni.customer_key) as customer_key,
        case
            when c.charge_id is not null and n.customer_payment_id is not null then 'matched'
            when c.charge_id is not null then 'stripe_only'
            else 'netsuite_only'
        end as match_status
    from charges as c
    full outer join erp_payments as n on upper(c.charge_id) = n.external_key and n.claim_rank = 1
    left join erp_invoice_stripe_ids as e on n.invoice_id = e.invoice_id
    left join identity as ci on ci.source_system = 'stripe' and c.customer_id = ci.native_id
    left join identity as ni on ni.source_system = 'netsuite' and n.customer_id = ni.native_id
)

{% if is_incremental() %}

    ,

    {{ changed_pair_keys(
        'payment_key', 'charges', 'charge_id',
        'erp_payments', 'customer_payment_id', 'netsuite_customer_payment_id'
    ) }}

{% endif %}

select
    payment_key,
    customer_key,
    match_status,
    stripe_charge_id,
    netsuite_customer_payment_id,
    stripe_customer_id,
    netsuite_customer_id,
    stripe_invoice_id,
    netsuite_invoice_id,
    stripe_payment_intent_id,
    netsuite_tran_id,
    stripe_status,
    stripe_failure_code,
    stripe_currency,
    netsuite_currency,
    stripe_amount,
    stripe_amount_captured,
    stripe_amount_refunded,
    netsuite_amount,
    is_stripe_refunded,
    stripe_created_at,
    netsuite_tran_date,
    netsuite_created_at,
    _stripe_loaded_at,
    _netsuite_loaded_at,
    {{ build_columns() }}
from pairs
{% if is_incremental() %}
    where payment_key in (select changed_keys.payment_key from changed_keys)
{% endif %}
