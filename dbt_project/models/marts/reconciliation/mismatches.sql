{{ config(materialized="table", schema="reconciliation") }}

{#
    One row per open cross-system discrepancy, in the vocabulary of ARCHITECTURE.md (14 types).
    The rules follow sandbox/world/verify.py precisely: ids compare case-insensitively, amounts in
    decimal major units to the cent, a live subscription is active or past_due (trialing is not live
    for billing and ERP rules but keeps its plan's tier), a customer missing from the ERP reports
    only customer_missing_in_erp. Thresholds are dbt vars; age rules evaluate at var `as_of`
    (default: now), which is also `detected_at`.
#}

{%- set tiers = var('support_tiers') %}
{%- set plan_tiers = var('plan_support_tiers') %}

with

as_of as (
    select {{ as_of() }} as as_of
),

identity as (
    select * from {{ ref('int_customer_identity') }}
),

erp_customers as (
    select n.customer_id, i.customer_key
    from {{ ref('stg_netsuite__customers') }} as n
    inner join identity as i on i.system = 'netsuite' and i.native_id = n.customer_id
),

in_erp as (
    select distinct customer_key from erp_customers
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
        case p.plan
            {%- for plan, tier in plan_tiers.items() %}
            when '{{ plan }}' then '{{ tier }}'
            {%- endfor %}
        end as tier,
        {{ currency_exponent('s.currency') }} as exponent,
        s.status in ('active', 'past_due') as is_live
    from {{ ref('stg_stripe__subscriptions') }} as s
    left join {{ ref('stg_stripe__products') }} as p on p.product_id = s.product_id
    inner join identity as i on i.system = 'stripe' and i.native_id = s.customer_id
),

invoices as (
    select i.*, c.customer_key
    from {{ ref('stg_stripe__invoices') }} as i
    inner join identity as c on c.system = 'stripe' and c.native_id = i.customer_id
    where i.status in ('open', 'paid')
),

invoice_pairs as (
    select
        i.invoice_id,
        i.customer_key,
        i.status,
        i.total,
        i.currency,
        n.invoice_id as erp_invoice_id,
        n.total as erp_total,
        n.currency as erp_currency,
        n.status as erp_status
    from invoices as i
    inner join {{ ref('stg_netsuite__invoices') }} as n on upper(n.external_id) = upper(i.invoice_id)
),

delinquent as (
    select customer_key, min(due_at) as oldest_due_at, sum(amount_remaining) as amount_remaining
    from invoices
    where status = 'open' and due_at < (select as_of from as_of) - interval {{ var('grace_period_days') }} day
    group by customer_key
),

organizations as (
    select
        o.organization_id,
        i.customer_key,
        o.support_tier as tier,
        d.customer_key is not null as is_delinquent,
        not exists (
            select 1 from subscriptions as s
            where s.customer_key = i.customer_key and s.status in ('active', 'past_due', 'trialing')
        ) as is_ended,
        (
            select arg_max(s.tier, case s.tier
                {%- for tier in tiers %} when '{{ tier }}' then {{ loop.index }}{% endfor %} end)
            from subscriptions as s
            where s.customer_key = i.customer_key and s.status in ('active', 'past_due', 'trialing')
        ) as plan_tier
    from {{ ref('stg_zendesk__organizations') }} as o
    inner join identity as i on i.system = 'zendesk' and i.native_id = o.organization_id
    left join delinquent as d on d.customer_key = i.customer_key
),

billing_arr as (
    select
        customer_key,
        any_value(currency) as currency,
        sum(
            unit_amount_minor * quantity / power(10, exponent)
            * case recurring_interval when 'month' then 12 else 1 end
        ) as arr
    from subscriptions
    where is_live
    group by customer_key
),

found as (

    select
        'customer_missing_in_erp' as mismatch_type, 'stripe' as anchor_system,
        s.customer_id as anchor_id, s.customer_key, 'high' as severity,
        cast(null as decimal(18, 3)) as amount_at_risk,
        json_object('live_subscriptions', count(*)) as details
    from subscriptions as s
    where s.is_live and s.customer_key not in (select customer_key from in_erp)
    group by s.customer_id, s.customer_key

    union all

    select
        'duplicate_erp_customer', 'netsuite', e.customer_id, e.customer_key, 'medium', null,
        json_object('group', (
            select list(g.customer_id order by g.customer_id) from erp_customers as g
            where g.customer_key = e.customer_key
        ))
    from erp_customers as e
    where e.customer_key in (select customer_key from erp_customers group by 1 having count(*) > 1)

    union all

    select
        'subscription_missing_in_erp', 'stripe', s.subscription_id, s.customer_key, 'high',
        cast(s.unit_amount_minor * s.quantity / power(10, s.exponent) as decimal(18, 3)),
        json_object('status', s.status, 'plan', s.plan, 'currency', s.currency)
    from subscriptions as s
    where s.is_live
        and s.customer_key in (select customer_key from in_erp)
        and not exists (
            select 1 from {{ ref('stg_netsuite__sales_orders') }} as o
            where upper(o.external_id) = upper(s.subscription_id)
        )

    union all

    select
        'erp_contract_without_active_subscription', 'netsuite', o.sales_order_id,
        coalesce(e.customer_key, 'netsuite:' || o.customer_id), 'medium', o.total,
        json_object('status', o.status, 'external_id', o.external_id, 'subscription_status', s.status)
    from {{ ref('stg_netsuite__sales_orders') }} as o
    left join {{ ref('stg_stripe__subscriptions') }} as s on upper(s.subscription_id) = upper(o.external_id)
    left join erp_customers as e on e.customer_id = o.customer_id
    where o.status <> 'closed' and (s.subscription_id is null or s.status = 'canceled')

    union all

    select
        'invoice_missing_in_erp', 'stripe', i.invoice_id, i.customer_key, 'high', i.total,
        json_object('status', i.status, 'finalized_at', i.finalized_at, 'currency', i.currency)
    from invoices as i
    where i.finalized_at
        < (select as_of from as_of) - interval {{ var('invoice_sync_sla_hours') }} hour
        and i.customer_key in (select customer_key from in_erp)
        and not exists (
            select 1 from {{ ref('stg_netsuite__invoices') }} as n
            where upper(n.external_id) = upper(i.invoice_id)
        )

    union all

    select
        'invoice_amount_mismatch', 'stripe', invoice_id, customer_key, 'high', abs(total - erp_total),
        json_object('erp_invoice_id', erp_invoice_id, 'total', total, 'erp_total', erp_total,
            'currency', currency)
    from invoice_pairs
    where currency = erp_currency and abs(total - erp_total) >= 0.005

    union all

    select
        'invoice_currency_mismatch', 'stripe', invoice_id, customer_key, 'high', total,
        json_object('erp_invoice_id', erp_invoice_id, 'currency', currency, 'erp_currency', erp_currency)
    from invoice_pairs
    where currency <> erp_currency

    union all

    select
        'payment_status_mismatch', 'stripe', invoice_id, customer_key, 'medium', total,
        json_object('erp_invoice_id', erp_invoice_id, 'status', status, 'erp_status', erp_status)
    from invoice_pairs
    where (status = 'paid' and erp_status = 'open') or (status = 'open' and erp_status = 'paidInFull')

    union all

    select
        'credit_note_missing_in_erp', 'stripe', c.credit_note_id, i.customer_key, 'medium', c.amount,
        json_object('invoice_id', c.invoice_id, 'currency', c.currency)
    from {{ ref('stg_stripe__credit_notes') }} as c
    inner join identity as i on i.system = 'stripe' and i.native_id = c.customer_id
    where c.status = 'issued'
        and i.customer_key in (select customer_key from in_erp)
        and not exists (
            select 1 from {{ ref('stg_netsuite__credit_memos') }} as m
            where upper(m.external_id) = upper(c.credit_note_id)
        )

    union all

    select
        'entitlement_on_delinquent_account', 'zendesk', o.organization_id, o.customer_key, 'high', d.amount_remaining,
        json_object('tier', o.tier, 'expected_tier', 'basic', 'oldest_due_at', d.oldest_due_at)
    from organizations as o
    left join delinquent as d on d.customer_key = o.customer_key
    where o.is_delinquent and o.tier <> 'basic'

    union all

    select
        'entitlement_after_cancellation', 'zendesk', organization_id, customer_key, 'medium', null,
        json_object('tier', tier, 'expected_tier', 'basic')
    from organizations
    where is_ended and not is_delinquent and tier <> 'basic'

    union all

    select
        'entitlement_tier_mismatch', 'zendesk', organization_id, customer_key, 'low', null,
        json_object('tier', tier, 'expected_tier', plan_tier)
    from organizations
    where not is_delinquent and not is_ended and tier is distinct from plan_tier

    union all

    select
        'closed_won_without_subscription', 'hubspot', d.deal_id, i.customer_key, 'medium', d.amount,
        json_object('closedate_at', d.closedate_at, 'plan', d.plan, 'currency', d.deal_currency_code)
    from {{ ref('stg_hubspot__deals') }} as d
    inner join identity as i on i.system = 'hubspot' and i.native_id = d.company_id
    where d.dealstage = 'closedwon'
        and d.closedate_at < (select as_of from as_of) - interval {{ var('onboarding_sla_days') }} day
        and not exists (
            select 1 from subscriptions as s
            where s.customer_key = i.customer_key and s.created_at >= d.closedate_at - interval 1 day
        )

    union all

    select
        'crm_arr_mismatch', 'hubspot', h.company_id, i.customer_key, 'low',
        cast(abs(coalesce(h.arr, 0) - b.arr) as decimal(18, 3)),
        json_object('crm_arr', h.arr, 'billing_arr', b.arr, 'currency', b.currency)
    from {{ ref('stg_hubspot__companies') }} as h
    inner join identity as i on i.system = 'hubspot' and i.native_id = h.company_id
    inner join billing_arr as b on b.customer_key = i.customer_key
    where abs(coalesce(h.arr, 0) - b.arr) > {{ var('arr_tolerance') }} * b.arr

)

select
    mismatch_type,
    anchor_system,
    anchor_id,
    customer_key,
    severity,
    cast(amount_at_risk as decimal(18, 3)) as amount_at_risk,
    (select as_of from as_of) as detected_at,
    details
from found
