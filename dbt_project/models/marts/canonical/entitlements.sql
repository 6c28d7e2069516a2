{{ config(materialized="table") }}

{#
    One row per Zendesk organization: the support tier it has, the tier it should have and why, at
    the as-of time (var `as_of`, default now). Expected: the unpaid tier (basic) when the customer is
    delinquent past the grace period or has no entitled subscription, else the highest plan tier
    among its active, past_due and trialing subscriptions. The rules are the mismatches' own
    (macros/reconciliation/customer_rules.sql), over the canonical subscriptions and invoices.
#}

with

organizations as (
    select
        o.organization_id,
        i.customer_key,
        o.name,
        o.support_tier,
        o.plan
    from {{ ref('stg_zendesk__organizations') }} as o
    inner join {{ ref('int_customer_identity') }} as i
        on i.source_system = 'zendesk' and o.organization_id = i.native_id
),

subscriptions as (
    select
        customer_key,
        status,
        support_tier as tier
    from {{ ref('subscriptions') }}
),

invoices as (
    select
        customer_key,
        stripe_status as status,
        stripe_due_at as due_at,
        stripe_amount_remaining as amount_remaining,
        stripe_currency as currency
    from {{ ref('invoices') }}
    where stripe_invoice_id is not null
),

delinquent as (
    {{ delinquent_customers('invoices') }}
),

entitled as (
    {{ entitled_tiers('subscriptions') }}
),

evaluated as (
    select
        o.organization_id,
        o.customer_key,
        o.name,
        o.support_tier,
        o.plan,
        e.plan_tier,
        d.oldest_due_at,
        d.amount_remaining,
        d.currency,
        coalesce(e.entitled_subscriptions, 0) as entitled_subscriptions,
        d.customer_key is not null as is_delinquent,
        e.customer_key is not null as has_entitled_subscription
    from organizations as o
    left join delinquent as d on o.customer_key = d.customer_key
    left join entitled as e on o.customer_key = e.customer_key
),

expected as (
    select
        *,
        {{ expected_support_tier('is_delinquent', 'has_entitled_subscription', 'plan_tier') }}
            as expected_support_tier,
        {{ expected_support_tier_reason('is_delinquent', 'has_entitled_subscription') }}
            as expected_tier_reason
    from evaluated
),

compared as (
    select
        e.*,
        c.stripe_customer_id,
        coalesce(
            e.support_tier = e.expected_support_tier,
            e.support_tier is null and e.expected_support_tier is null
        ) as is_tier_correct,
        cast(e.amount_remaining as decimal(18, 3)) as overdue_amount_remaining,
        {{ as_of() }} as evaluated_at
    from expected as e
    left join {{ ref('customers') }} as c on e.customer_key = c.customer_key
)

select
    organization_id as zendesk_organization_id,
    customer_key,
    stripe_customer_id,
    name as organization_name,
    plan as zendesk_plan,
    support_tier as current_support_tier,
    expected_support_tier,
    expected_tier_reason,
    is_tier_correct,
    plan_tier as entitled_plan_tier,
    entitled_subscriptions,
    is_delinquent,
    oldest_due_at as oldest_overdue_due_at,
    overdue_amount_remaining,
    currency as overdue_currency,
    evaluated_at
from compared
