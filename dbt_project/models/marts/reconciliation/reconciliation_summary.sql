{{ config(materialized="table") }}

{#
    One row per mismatch type (all 14, zero when none is open) for the latest reconciliation run:
    what is open, the money at risk, how old the oldest is, what this run found and resolved, and how
    long resolved mismatches took. Money is summed per currency (JSON) and converted to var
    `reporting_currency`.
#}

{%- set hours_to_resolve =
    boundaries_between('second', 'h.first_detected_at', 'h.resolved_at') ~ ' / 3600.0' %}

with

history as (
    select * from {{ ref('mismatch_history') }}
),

latest_run as (
    select greatest(max(last_detected_at), max(resolved_at)) as run_at
    from history
),

mismatch_types as (
    {% for kind in mismatch_types() -%}
        select '{{ kind }}' as mismatch_type, {{ loop.index }} as type_order
        {% if not loop.last %}union all{% endif %}
    {% endfor %}
),

open_by_currency as (
    select
        mismatch_type,
        currency,
        sum(amount_at_risk) as amount_at_risk
    from history
    where is_open and amount_at_risk is not null
    group by mismatch_type, currency
),

amounts as (
    select
        mismatch_type,
        sum({{ to_reporting_currency('amount_at_risk', 'currency') }}) as amount_at_risk_reporting,
        {{ json_object_agg("coalesce(currency, 'unknown')", 'amount_at_risk') }} as amount_at_risk_by_currency
    from open_by_currency
    group by mismatch_type
),

counts as (
    select
        h.mismatch_type,
        count(*) filter (where h.is_open) as open_count,
        count(*) filter (where h.is_open and h.first_detected_at = r.run_at) as new_since_last_run,
        count(*) filter (where h.resolved_at = r.run_at) as resolved_since_last_run,
        count(*) filter (where not h.is_open) as resolved_total,
        min(h.first_detected_at) filter (where h.is_open) as oldest_open_since,
        {{ median_of(hours_to_resolve) }} filter (where not h.is_open) as median_hours_to_resolve,
        count(distinct h.customer_key) filter (where h.is_open) as customers_affected
    from history as h
    cross join latest_run as r
    group by h.mismatch_type
)

select
    t.mismatch_type,
    r.run_at as as_of,
    '{{ var("reporting_currency") }}' as reporting_currency,
    coalesce(c.open_count, 0) as open_count,
    coalesce(c.customers_affected, 0) as customers_affected,
    coalesce(a.amount_at_risk_reporting, 0) as amount_at_risk,
    a.amount_at_risk_by_currency,
    c.oldest_open_since,
    {{ round_to(boundaries_between('second', 'c.oldest_open_since', 'r.run_at') ~ ' / 3600.0', 2) }}
        as oldest_age_hours,
    coalesce(c.new_since_last_run, 0) as new_since_last_run,
    coalesce(c.resolved_since_last_run, 0) as resolved_since_last_run,
    coalesce(c.resolved_total, 0) as resolved_total,
    {{ round_to('c.median_hours_to_resolve', 2) }} as median_hours_to_resolve
from mismatch_types as t
cross join latest_run as r
left join counts as c on t.mismatch_type = c.mismatch_type
left join amounts as a on t.mismatch_type = a.mismatch_type
order by t.type_order
