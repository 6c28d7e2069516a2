{{ config(
    materialized="incremental",
    incremental_strategy="delete+insert",
    unique_key="credit_note_key",
    on_schema_change="fail",
    post_hook="{{ delete_superseded_erp_only_rows('stripe_credit_note_id', 'netsuite_credit_memo_id') }}",
) }}

{#
    One row per credit note: the Stripe credit note and the NetSuite credit memo whose external id is
    its id (any case) side by side. An ERP credit memo no credit note claims is a row of its own
    (`credit_note_key` 'netsuite:<id>'). Incremental like invoices (DECISIONLOG.md).
#}

with

identity as (
    select
        source_system,
        native_id,
        customer_key
    from {{ ref('int_customer_identity') }}
),

credit_notes as (
    select * from {{ ref('stg_stripe__credit_notes') }}
),

erp_credit_memos as (
    {{ erp_claims(ref('stg_netsuite__credit_memos'), 'credit_memo_id') }}
),

pairs as (
    select
        c.credit_note_id as stripe_credit_note_id,
        n.credit_memo_id as netsuite_credit_memo_id,
        c.customer_id as stripe_customer_id,
        n.customer_id as netsuite_customer_id,
        c.invoice_id as stripe_invoice_id,
        n.invoice_id as netsuite_invoice_id,
        c.number as stripe_number,
        n.tran_id as netsuite_tran_id,
        c.status as stripe_status,
        c.type as stripe_type,
        c.reason as stripe_reason,
        c.currency as stripe_currency,
        n.currency as netsuite_currency,
        c.amount as stripe_amount,
        n.amount as netsuite_amount,
        c.created_at as stripe_created_at,
        c.voided_at as stripe_voided_at,
        n.tran_date as netsuite_tran_date,
        n.created_at as netsuite_created_at,
        c._loaded_at as _stripe_loaded_at,
        n._loaded_at as _netsuite_loaded_at,
        coalesce(c.credit_note_id, 'netsuite:' || n.credit_memo_id) as credit_note_key,
        coalesce(ci.customer_key, ni.customer_key) as customer_key,
        case
            when c.credit_note_id is not null and n.credit_memo_id is not null then 'matched'
            when c.credit_note_id is not null then 'stripe_only'
            else 'netsuite_only'
        end as match_status
    from credit_notes as c
    full outer join erp_credit_memos as n on upper(c.credit_note_id) = n.external_key and n.claim_rank = 1
    left join identity as ci on ci.source_system = 'stripe' and c.customer_id = ci.native_id
    left join identity as ni on ni.source_system = 'netsuite' and n.customer_id = ni.native_id
)

{% if is_incremental() %}

    ,

    {{ changed_pair_keys(
        'credit_note_key', 'credit_notes', 'credit_note_id',
        'erp_credit_memos', 'credit_memo_id', 'netsuite_credit_memo_id'
    ) }}

{% endif %}

select
    credit_note_key,
    customer_key,
    match_status,
    stripe_credit_note_id,
    netsuite_credit_memo_id,
    stripe_customer_id,
    netsuite_customer_id,
    stripe_invoice_id,
    netsuite_invoice_id,
    stripe_number,
    netsuite_tran_id,
    stripe_status,
    stripe_type,
    stripe_reason,
    stripe_currency,
    netsuite_currency,
    stripe_amount,
    netsuite_amount,
    stripe_created_at,
    stripe_voided_at,
    netsuite_tran_date,
    netsuite_created_at,
    _stripe_loaded_at,
    _netsuite_loaded_at,
    {{ build_columns() }}
from pairs
{% if is_incremental() %}
    where credit_note_key in (select changed_keys.credit_note_key from changed_keys)
{% endif %}
