{{ config(materialized="table", schema="reconciliation") }}

{#
    One row per open cross-system discrepancy, in the vocabulary of ARCHITECTURE.md (14 types).
    The rules follow sandbox/world/verify.py precisely: ids compare case-insensitively, amounts in
    decimal major units to the cent, a live subscription is active or past_due (trialing is not live
    for billing and ERP rules but keeps its plan's tier), a customer missing from the ERP reports
    only customer_missing_in_erp. Thresholds are dbt vars; age rules evaluate at var `as_of`
    (default: now), which is also `detected_at`. Times in `details` are cast to text ('2026-01-31
    00:00:00'), DuckDB's JSON form of a timestamp, so PostgreSQL's details read the same.
#}

with

identity as (
    select * from {{ ref('int_customer_identity') }}
),

erp_customers as (
    select
        n.customer_id,
        i.customer_key
    from {{ ref('stg_netsuite__customers') }} as n
    inner join identity as i on i.source_system = 'netsuite' and n.customer_id = i.native_id
),

-- shared with the canonical marts: macros/reconciliation/customer_rules.sql
erp_customer_groups as (
    {{ erp_customer_groups('erp_customers') }}
),

subscriptions as (
    select
        s.subscription_id,
        s.customer_id,
        i.customer_key,
        s.status,
        s.quantity,
        s.currency,
        s.created_at,
        s.unit_amount_minor,
        s.recurring_interval,
        p.plan,
        {{ plan_tier('p.plan') }} as tier,
        {{ currency_exponent('s.currency') }} as exponent,
        {{ is_live_subscription('s.status') }} as is_live,
        g.customer_key is not null as is_in_erp
    from {{ ref('stg_stripe__subscriptions') }} as s
    inner join identity as i on i.source_system = 'stripe' and s.customer_id = i.native_id
    left join {{ ref('stg_stripe__products') }} as p on s.product_id = p.product_id
    left join erp_customer_groups as g on i.customer_key = g.customer_key
),

invoices as (
    select
        i.invoice_id,
        c.customer_key,
        i.status,
        i.total,
        i.currency,
        i.due_at,
        i.finalized_at,
        i.amount_remaining,
        g.customer_key is not null as is_in_erp
    from {{ ref('stg_stripe__invoices') }} as i
    inner join identity as c on c.source_system = 'stripe' and i.customer_id = c.native_id
    left join erp_customer_groups as g on c.customer_key = g.customer_key
    where i.status in ('open', 'paid')
),

erp_invoices as (
    select
        invoice_id as erp_invoice_id,
        total as erp_total,
        currency as erp_currency,
        status as erp_status,
        upper(external_id) as external_key
    from {{ ref('stg_netsuite__invoices') }}
    where external_id is not null
),

invoice_pairs as (
    select
        i.invoice_id,
        i.customer_key,
        i.status,
        i.total,
        i.currency,
        n.erp_invoice_id,
        n.erp_total,
        n.erp_currency,
        n.erp_status
    from invoices as i
    inner join erp_invoices as n on upper(i.invoice_id) = n.external_key
),

erp_sales_order_keys as (
    select distinct upper(external_id) as external_key
    from {{ ref('stg_netsuite__sales_orders') }}
    where external_id is not null
),

erp_credit_memo_keys as (
    select distinct upper(external_id) as external_key
    from {{ ref('stg_netsuite__credit_memos') }}
    where external_id is not null
),

delinquent as (
    {{ delinquent_customers('invoices') }}
),

entitled as (
    {{ entitled_tiers('subscriptions') }}
),

organizations as (
    select
        o.organization_id,
        i.customer_key,
        o.support_tier as tier,
        e.plan_tier,
        d.oldest_due_at,
        d.amount_remaining,
        d.currency,
        d.customer_key is not null as is_delinquent,
        e.customer_key is null as is_ended
    from {{ ref('stg_zendesk__organizations') }} as o
    inner join identity as i on i.source_system = 'zendesk' and o.organization_id = i.native_id
    left join delinquent as d on i.customer_key = d.customer_key
    left join entitled as e on i.customer_key = e.customer_key
),

billing_arr as (
    select
        customer_key,
        {{ any_value_of('currency') }} as currency,
        sum(
            unit_amount_minor * quantity / power(10, exponent)
            * {{ periods_per_year('recurring_interval') }}
        ) as arr
    from subscriptions
    where is_live
    group by customer_key
),

customer_missing_in_erp as (
    select
        'customer_missing_in_erp' as mismatch_type,
        'stripe' as anchor_system,
        customer_id as anchor_id,
        customer_key,
        'high' as severity,
        cast(null as decimal(18, 3)) as amount_at_risk,
        cast(null as varchar) as currency,
        {{ json_obj({'live_subscriptions': 'count(*)'}) }} as details
    from subscriptions
    where is_live and not is_in_erp
    group by customer_id, customer_key
),

duplicate_erp_customer as (
    select
        'duplicate_erp_customer' as mismatch_type,
        'netsuite' as anchor_system,
        e.customer_id as anchor_id,
        e.customer_key,
        'medium' as severity,
        cast(null as decimal(18, 3)) as amount_at_risk,
        cast(null as varchar) as currency,
        {{ json_obj({'erp_customer_ids': 'g.erp_customer_ids'}) }} as details
    from erp_customers as e
    inner join erp_customer_groups as g on e.customer_key = g.customer_key
    where g.erp_customers > 1
),

subscription_missing_in_erp as (
    select
        'subscription_missing_in_erp' as mismatch_type,
        'stripe' as anchor_system,
        s.subscription_id as anchor_id,
        s.customer_key,
        'high' as severity,
        s.unit_amount_minor * s.quantity / power(10, s.exponent) as amount_at_risk,
        s.currency,
        {{ json_obj({'status': 's.status', 'plan': 's.plan', 'currency': 's.currency'}) }} as details
    from subscriptions as s
    left join erp_sales_order_keys as k on upper(s.subscription_id) = k.external_key
    where s.is_live and s.is_in_erp and k.external_key is null
),

erp_contract_without_active_subscription as (
    select
        'erp_contract_without_active_subscription' as mismatch_type,
        'netsuite' as anchor_system,
        o.sales_order_id as anchor_id,
        coalesce(e.customer_key, 'netsuite:' || o.customer_id) as customer_key,
        'medium' as severity,
        o.total as amount_at_risk,
        o.currency,
        {{ json_obj({
            'status': 'o.status', 'external_id': 'o.external_id', 'subscription_status': 's.status'
        }) }} as details
    from {{ ref('stg_netsuite__sales_orders') }} as o
    left join {{ ref('stg_stripe__subscriptions') }} as s on upper(o.external_id) = upper(s.subscription_id)
    left join erp_customers as e on o.customer_id = e.customer_id
    where o.status != 'closed' and (s.subscription_id is null or s.status = 'canceled')
),

invoice_missing_in_erp as (
    select
        'invoice_missing_in_erp' as mismatch_type,
        'stripe' as anchor_system,
        i.invoice_id as anchor_id,
        i.customer_key,
        'high' as severity,
        i.total as amount_at_risk,
        i.currency,
        {{ json_obj({
            'status': 'i.status', 'finalized_at': 'cast(i.finalized_at as varchar)', 'currency': 'i.currency'
        }) }} as details
    from invoices as i
    left join erp_invoices as n on upper(i.invoice_id) = n.external_key
    where
        i.is_in_erp
        and n.external_key is null
        and i.finalized_at < {{ as_of() }} - {{ interval_of(var('invoice_sync_sla_hours'), 'hour') }}
),

invoice_amount_mismatch as (
    select
        'invoice_amount_mismatch' as mismatch_type,
        'stripe' as anchor_system,
        invoice_id as anchor_id,
        customer_key,
        'high' as severity,
        abs(total - erp_total) as amount_at_risk,
        currency,
        {{ json_obj({
            'erp_invoice_id': 'erp_invoice_id', 'total': 'total', 'erp_total': 'erp_total', 'currency': 'currency'
        }) }} as details
    from invoice_pairs
    where currency = erp_currency and abs(total - erp_total) >= 0.005
),

invoice_currency_mismatch as (
    select
        'invoice_currency_mismatch' as mismatch_type,
        'stripe' as anchor_system,
        invoice_id as anchor_id,
        customer_key,
        'high' as severity,
        total as amount_at_risk,
        currency,
        {{ json_obj({
            'erp_invoice_id': 'erp_invoice_id', 'currency': 'currency', 'erp_currency': 'erp_currency'
        }) }} as details
    from invoice_pairs
    where currency != erp_currency
),

payment_status_mismatch as (
    select
        'payment_status_mismatch' as mismatch_type,
        'stripe' as anchor_system,
        invoice_id as anchor_id,
        customer_key,
        'medium' as severity,
        total as amount_at_risk,
        currency,
        {{ json_obj({'erp_invoice_id': 'erp_invoice_id', 'status': 'status', 'erp_status': 'erp_status'}) }}
            as details
    from invoice_pairs
    where (status = 'paid' and erp_status = 'open') or (status = 'open' and erp_status = 'paidInFull')
),

credit_note_missing_in_erp as (
    select
        'credit_note_missing_in_erp' as mismatch_type,
        'stripe' as anchor_system,
        c.credit_note_id as anchor_id,
        i.customer_key,
        'medium' as severity,
        c.amount as amount_at_risk,
        c.currency,
        {{ json_obj({'invoice_id': 'c.invoice_id', 'currency': 'c.currency'}) }} as details
    from {{ ref('stg_stripe__credit_notes') }} as c
    inner join identity as i on i.source_system = 'stripe' and c.customer_id = i.native_id
    inner join erp_customer_groups as g on i.customer_key = g.customer_key
    left join erp_credit_memo_keys as k on upper(c.credit_note_id) = k.external_key
    where c.status = 'issued' and k.external_key is null
),

entitlement_on_delinquent_account as (
    select
        'entitlement_on_delinquent_account' as mismatch_type,
        'zendesk' as anchor_system,
        organization_id as anchor_id,
        customer_key,
        'high' as severity,
        amount_remaining as amount_at_risk,
        currency,
        {{ json_obj({
            'tier': 'tier', 'expected_tier': "'basic'", 'oldest_due_at': 'cast(oldest_due_at as varchar)'
        }) }} as details
    from organizations
    where is_delinquent and tier != 'basic'
),

entitlement_after_cancellation as (
    select
        'entitlement_after_cancellation' as mismatch_type,
        'zendesk' as anchor_system,
        organization_id as anchor_id,
        customer_key,
        'medium' as severity,
        cast(null as decimal(18, 3)) as amount_at_risk,
        cast(null as varchar) as currency,
        {{ json_obj({'tier': 'tier', 'expected_tier': "'basic'"}) }} as details
    from organizations
    where is_ended and not is_delinquent and tier != 'basic'
),

entitlement_tier_mismatch as (
    select
        'entitlement_tier_mismatch' as mismatch_type,
        'zendesk' as anchor_system,
        organization_id as anchor_id,
        customer_key,
        'low' as severity,
        cast(null as decimal(18, 3)) as amount_at_risk,
        cast(null as varchar) as currency,
        {{ json_obj({'tier': 'tier', 'expected_tier': 'plan_tier'}) }} as details
    from organizations
    where not is_delinquent and not is_ended and tier is distinct from plan_tier
),

closed_won_without_subscription as (
    select
        'closed_won_without_subscription' as mismatch_type,
        'hubspot' as anchor_system,
        d.deal_id as anchor_id,
        i.customer_key,
        'medium' as severity,
        d.amount as amount_at_risk,
        d.deal_currency_code as currency,
        {{ json_obj({
            'closedate_at': 'cast(d.closedate_at as varchar)',
            'plan': 'd.plan',
            'currency': 'd.deal_currency_code'
        }) }} as details
    from {{ ref('stg_hubspot__deals') }} as d
    inner join identity as i on i.source_system = 'hubspot' and d.company_id = i.native_id
    left join subscriptions as s
        on i.customer_key = s.customer_key and {{ fulfils_deal('s.created_at', 'd.closedate_at') }}
    where
        d.dealstage = 'closedwon'
        and d.closedate_at < {{ as_of() }} - {{ interval_of(var('onboarding_sla_days'), 'day') }}
        and s.subscription_id is null
),

crm_arr_mismatch as (
    select
        'crm_arr_mismatch' as mismatch_type,
        'hubspot' as anchor_system,
        h.company_id as anchor_id,
        i.customer_key,
        'low' as severity,
        abs(coalesce(h.arr, 0) - b.arr) as amount_at_risk,
        b.currency,
        {{ json_obj({'crm_arr': 'h.arr', 'billing_arr': 'b.arr', 'currency': 'b.currency'}) }} as details
    from {{ ref('stg_hubspot__companies') }} as h
    inner join identity as i on i.source_system = 'hubspot' and h.company_id = i.native_id
    inner join billing_arr as b on i.customer_key = b.customer_key
    where abs(coalesce(h.arr, 0) - b.arr) > {{ var('arr_tolerance') }} * b.arr
),

found as (
    select * from customer_missing_in_erp
    union all
    select * from duplicate_erp_customer
    union all
    select * from subscription_missing_in_erp
    union all
    select * from erp_contract_without_active_subscription
    union all
    select * from invoice_missing_in_erp
    union all
    select * from invoice_amount_mismatch
    union all
    select * from invoice_currency_mismatch
    union all
    select * from payment_status_mismatch
    union all
    select * from credit_note_missing_in_erp
    union all
    select * from entitlement_tier_mismatch
    union all
    select * from entitlement_on_delinquent_account
    union all
    select * from entitlement_after_cancellation
    union all
    select * from closed_won_without_subscription
    union all
    select * from crm_arr_mismatch
)

select
    mismatch_type,
    anchor_system,
    anchor_id,
    customer_key,
    severity,
    cast(amount_at_risk as decimal(18, 3)) as amount_at_risk,
    currency,
    {{ as_of() }} as detected_at,
    details
from found
