{{ config(materialized="table") }}

{#
    One row per Stripe subscription, with its ERP sales order (NetSuite external id = the Stripe
    subscription id, any case) side by side. Plan is the product's (the world's plan), support tier
    the plan's (var `plan_support_tiers`). MRR and ARR count only live subscriptions (active,
    past_due; 0 otherwise), normalised from the billing interval: a month bills 1/12 of a year, a
    year 12 months, a week 52/12 of a month, a day 365/12; in the subscription's currency and in var
    `reporting_currency` (static var `fx_rates`, macro to_reporting_currency).
#}

with

identity as (
    select
        native_id as customer_id,
        customer_key
    from {{ ref('int_customer_identity') }}
    where source_system = 'stripe'
),

ranked_sales_orders as (
    select
        sales_order_id,
        status,
        total,
        currency,
        upper(external_id) as external_key,
        row_number() over (partition by upper(external_id) order by sales_order_id) as claim_rank
    from {{ ref('stg_netsuite__sales_orders') }}
    where external_id is not null
),

sales_orders as (
    select
        sales_order_id,
        status,
        total,
        currency,
        external_key
    from ranked_sales_orders
    where claim_rank = 1
),

subscriptions as (
    select
        s.subscription_id,
        s.customer_id,
        i.customer_key,
        coalesce(p.plan, s.plan) as plan,
        s.status,
        s.quantity,
        s.currency,
        s.price_id,
        s.product_id,
        s.unit_amount_minor,
        s.unit_amount,
        s.recurring_interval,
        s.is_cancel_at_period_end,
        s.current_period_start_at,
        s.current_period_end_at,
        s.trial_end_at,
        s.canceled_at,
        s.ended_at,
        s.start_at,
        s.created_at,
        {{ is_live_subscription('s.status') }} as is_live,
        {{ is_entitled_subscription('s.status') }} as is_entitled,
        -- the amount billed each period, exact (minor units / 10^exponent, before any rounding)
        s.unit_amount_minor * s.quantity / power(10, {{ currency_exponent('s.currency') }})
            as period_amount_exact,
        {{ periods_per_year('s.recurring_interval') }} as periods_per_year,
        s._loaded_at
    from {{ ref('stg_stripe__subscriptions') }} as s
    left join identity as i on s.customer_id = i.customer_id
    left join {{ ref('stg_stripe__products') }} as p on s.product_id = p.product_id
),

normalised as (
    select
        *,
        case when is_live then period_amount_exact * periods_per_year else 0 end as arr_exact
    from subscriptions
)

select
    n.subscription_id,
    n.customer_key,
    n.customer_id as stripe_customer_id,
    o.sales_order_id as netsuite_sales_order_id,
    n.plan,
    {{ plan_tier('n.plan') }} as support_tier,
    n.status,
    n.is_live,
    n.is_entitled,
    n.quantity,
    n.currency,
    n.price_id,
    n.product_id,
    n.unit_amount,
    n.recurring_interval,
    cast(n.period_amount_exact as decimal(18, 3)) as period_amount,
    cast(n.arr_exact / 12 as decimal(18, 3)) as mrr,
    cast(n.arr_exact as decimal(18, 3)) as arr,
    '{{ var("reporting_currency") }}' as reporting_currency,
    {{ to_reporting_currency('n.arr_exact / 12', 'n.currency') }} as mrr_reporting,
    {{ to_reporting_currency('n.arr_exact', 'n.currency') }} as arr_reporting,
    o.status as netsuite_sales_order_status,
    o.total as netsuite_sales_order_total,
    o.currency as netsuite_sales_order_currency,
    n.is_cancel_at_period_end,
    n.current_period_start_at,
    n.current_period_end_at,
    n.trial_end_at,
    n.canceled_at,
    n.ended_at,
    n.start_at,
    n.created_at,
    n._loaded_at
from normalised as n
left join sales_orders as o on upper(n.subscription_id) = o.external_key
