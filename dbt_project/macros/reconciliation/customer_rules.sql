{#
    Customer-level rules shared by the reconciliation marts (mismatches) and the canonical marts
    (subscriptions, entitlements, customers): one definition each, so a mismatch and the canonical
    row it is about can never disagree. The query macros take the name of a relation or CTE with the
    columns they document and return a select (use them as a CTE body: `x as ({{ macro('rel') }})`).
#}

{# A subscription that bills: active or past_due (trialing is not live for billing, ERP and MRR). #}
{% macro is_live_subscription(status) -%}
    {{ status }} in ('active', 'past_due')
{%- endmacro %}

{# A subscription that entitles its customer to its plan's support tier: live, or trialing. #}
{% macro is_entitled_subscription(status) -%}
    {{ status }} in ('active', 'past_due', 'trialing')
{%- endmacro %}

{#
    Billing periods per year of a price's recurring interval (month 12, year 1, week 52, day 365): a
    live subscription's ARR is its period amount times this (the CRM ARR rule, canonical ARR / MRR).
#}
{% macro periods_per_year(recurring_interval) -%}
    case {{ recurring_interval }}
        when 'month' then 12
        when 'year' then 1
        when 'week' then 52
        when 'day' then 365
    end
{%- endmacro %}

{#
    ERP customers grouped by canonical customer: customer_key, erp_customers (how many NetSuite
    customers resolve to it; more than one is a duplicate_erp_customer), erp_customer_ids (sorted).
    `erp_customers`: customer_id (NetSuite customer id), customer_key.
#}
{% macro erp_customer_groups(erp_customers) -%}
    select
        customer_key,
        count(*) as erp_customers,
        {{ ordered_list('customer_id', 'customer_id') }} as erp_customer_ids
    from {{ erp_customers }}
    group by customer_key
{%- endmacro %}

{#
    Customers delinquent past the grace period at the as-of time: an open invoice due more than var
    `grace_period_days` ago. customer_key, oldest_due_at, amount_remaining (sum over those invoices),
    currency (one of theirs). `invoices`: Stripe invoices with customer_key, status, due_at,
    amount_remaining, currency.
#}
{% macro delinquent_customers(invoices) -%}
    select
        customer_key,
        min(due_at) as oldest_due_at,
        sum(amount_remaining) as amount_remaining,
        {{ any_value_of('currency') }} as currency
    from {{ invoices }}
    where
        status = 'open'
        and due_at < {{ as_of() }} - {{ interval_of(var('grace_period_days'), 'day') }}
    group by customer_key
{%- endmacro %}

{#
    The support tier each customer's subscriptions entitle it to: the highest plan tier (var
    `support_tiers` order) among its entitled subscriptions (active, past_due, trialing). customer_key,
    plan_tier, entitled_subscriptions (their number). A customer without an entitled subscription has
    no row. `subscriptions`: Stripe subscriptions with customer_key, status, tier (the plan's tier).
#}
{% macro entitled_tiers(subscriptions) -%}
    select
        customer_key,
        {{ arg_max_of('tier', tier_rank('tier')) }} as plan_tier,
        count(*) as entitled_subscriptions
    from {{ subscriptions }}
    where {{ is_entitled_subscription('status') }}
    group by customer_key
{%- endmacro %}

{#
    The support tier an organization should have: the unpaid tier (the first of var `support_tiers`,
    `basic`) when its customer is delinquent past the grace period or has no entitled subscription,
    else the entitled plan tier.
#}
{% macro expected_support_tier(is_delinquent, has_entitled_subscription, plan_tier) -%}
    case
        when {{ is_delinquent }} then '{{ var("support_tiers")[0] }}'
        when not {{ has_entitled_subscription }} then '{{ var("support_tiers")[0] }}'
        else {{ plan_tier }}
    end
{%- endmacro %}

{# Why: delinquent_past_grace_period | no_entitled_subscription | plan_tier (same order as above). #}
{% macro expected_support_tier_reason(is_delinquent, has_entitled_subscription) -%}
    case
        when {{ is_delinquent }} then 'delinquent_past_grace_period'
        when not {{ has_entitled_subscription }} then 'no_entitled_subscription'
        else 'plan_tier'
    end
{%- endmacro %}

{#
    A subscription fulfils a closed-won deal of its customer when it was created no earlier than a
    day before the deal closed (the closed_won_without_subscription rule's window).
#}
{% macro fulfils_deal(subscription_created_at, deal_closedate_at) -%}
    {{ subscription_created_at }} >= {{ deal_closedate_at }} - {{ interval_of(1, 'day') }}
{%- endmacro %}
