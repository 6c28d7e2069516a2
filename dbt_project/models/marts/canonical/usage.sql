{{
    config(
        materialized="incremental",
        unique_key="usage_id",
        incremental_strategy="delete+insert",
        on_schema_change="append_new_columns",
    )
}}

{#
    One row per canonical customer, subscription, Stripe meter and UTC day with usage: the day's
    quantity (Stripe meter event summary) and the Stripe ids side by side. Stripe summaries name no
    subscription, so the day is attributed to the customer's subscription that was live on it
    (started before the day ended, not ended before it began), preferring one that has not ended,
    then the latest started; `subscription_candidates` says how many were live (more than one: the
    attribution is a guess). Incremental on `_loaded_at`: a run rewrites only the days whose
    summary landed a new version since the table's latest `_loaded_at`.
#}

with

usage as (
    select s.*
    from {{ ref('stg_stripe__usage') }} as s
    {% if is_incremental() %}
        where s._loaded_at > (
            select coalesce(max(t._loaded_at), '1970-01-01'::timestamp) from {{ this }} as t
        )
    {% endif %}
),

identity as (
    select
        native_id as customer_id,
        customer_key
    from {{ ref('int_customer_identity') }}
    where source_system = 'stripe'
),

subscriptions as (
    select
        subscription_id,
        customer_id,
        start_at,
        ended_at
    from {{ ref('stg_stripe__subscriptions') }}
),

candidates as (
    select
        u.usage_id,
        s.subscription_id,
        count(s.subscription_id) over (partition by u.usage_id) as subscription_candidates,
        row_number() over (
            partition by u.usage_id
            order by s.ended_at is null desc, s.start_at desc, s.subscription_id asc
        ) as preference
    from usage as u
    inner join subscriptions as s
        on
            u.customer_id = s.customer_id
            and u.period_end_at > s.start_at
            and (s.ended_at is null or u.period_start_at <= s.ended_at)
),

attributed as (
    select
        usage_id,
        subscription_id,
        subscription_candidates
    from candidates
    where preference = 1
),

joined as (
    select
        u.usage_id,
        u.customer_id as stripe_customer_id,
        a.subscription_id as stripe_subscription_id,
        u.meter_id as stripe_meter_id,
        u.usage_date,
        u.quantity,
        u.period_start_at,
        u.period_end_at,
        u._loaded_at,
        u._batch_id,
        coalesce(i.customer_key, u.customer_id) as customer_key,
        coalesce(a.subscription_candidates, 0) as subscription_candidates
    from usage as u
    left join identity as i on u.customer_id = i.customer_id
    left join attributed as a on u.usage_id = a.usage_id
)

select
    usage_id,
    customer_key,
    stripe_customer_id,
    stripe_subscription_id,
    stripe_meter_id,
    usage_date,
    quantity,
    period_start_at,
    period_end_at,
    subscription_candidates,
    _loaded_at,
    _batch_id
from joined
