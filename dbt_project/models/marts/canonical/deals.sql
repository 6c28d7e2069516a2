{{ config(materialized="table") }}

{#
    One row per HubSpot deal, with the canonical customer of its company and, for a closed-won deal,
    the Stripe subscription that fulfilled it: the customer's earliest subscription created no earlier
    than a day before the deal closed (the closed_won_without_subscription rule's window, macro
    fulfils_deal). is_onboarding_overdue: closed won, unfulfilled, older than var
    `onboarding_sla_days` at the as-of time.
#}

with

deals as (
    select
        d.*,
        i.customer_key
    from {{ ref('stg_hubspot__deals') }} as d
    left join {{ ref('int_customer_identity') }} as i
        on i.source_system = 'hubspot' and d.company_id = i.native_id
),

candidate_fulfilments as (
    select
        d.deal_id,
        s.subscription_id,
        s.plan,
        s.status,
        s.created_at,
        row_number() over (partition by d.deal_id order by s.created_at, s.subscription_id) as candidate_rank
    from deals as d
    inner join {{ ref('subscriptions') }} as s
        on d.customer_key = s.customer_key and {{ fulfils_deal('s.created_at', 'd.closedate_at') }}
    where d.dealstage = 'closedwon'
),

fulfilments as (
    select
        deal_id,
        subscription_id,
        plan,
        status,
        created_at
    from candidate_fulfilments
    where candidate_rank = 1
)

select
    d.deal_id as hubspot_deal_id,
    d.company_id as hubspot_company_id,
    d.customer_key,
    d.dealname,
    d.dealstage,
    d.dealstage = 'closedwon' as is_closed_won,
    d.pipeline,
    d.plan,
    d.amount,
    d.deal_currency_code as currency,
    d.closedate_at,
    f.subscription_id as stripe_subscription_id,
    f.plan as subscription_plan,
    f.status as subscription_status,
    f.created_at as subscription_created_at,
    f.subscription_id is not null as is_fulfilled,
    coalesce(
        d.dealstage = 'closedwon'
        and f.subscription_id is null
        and d.closedate_at < {{ as_of() }} - {{ interval_of(var('onboarding_sla_days'), 'day') }},
        false
    ) as is_onboarding_overdue,
    d.is_archived,
    d.created_at,
    d.updated_at
from deals as d
left join fulfilments as f on d.deal_id = f.deal_id
