{{
    config(
        materialized="incremental",
        unique_key="mismatch_id",
        incremental_strategy="delete+insert",
        on_schema_change="append_new_columns",
        full_refresh=false,
    )
}}

{#
    Every mismatch ever detected: one row per episode, from the run that first detected it to the
    first run that no longer did (resolved_at). A mismatch that reappears after resolution starts a
    new episode. Each run compares `mismatches` (this run, detected_at = var `as_of`) with the open
    episodes; only continued, new and resolved episodes are rewritten. A run whose as-of is not later
    than the table's latest run changes nothing, so a replayed old as-of never resolves anything.
    full_refresh=false: `dbt build --full-refresh` keeps the history (drop the table to start over).
#}

with

detected as (
    select * from {{ ref('mismatches') }}
),

{% if is_incremental() %}

    previous_runs as (
        select greatest(max(last_detected_at), max(resolved_at)) as last_run_at
        from {{ this }}
    ),

    this_run as (
        select {{ as_of() }} as run_at
        from previous_runs
        where last_run_at is null or {{ as_of() }} > last_run_at
    ),

    open_episodes as (
        select *
        from {{ this }}
        where resolved_at is null
    ),

{% else %}

    this_run as (
        select {{ as_of() }} as run_at
    ),

    open_episodes as (
        select
            cast(null as varchar) as mismatch_id,
            mismatch_type,
            anchor_system,
            anchor_id,
            customer_key,
            severity,
            amount_at_risk,
            currency,
            details,
            cast(null as timestamp) as first_detected_at,
            cast(null as timestamp) as last_detected_at,
            cast(null as timestamp) as resolved_at,
            0 as times_detected
        from detected
        where false
    ),

{% endif %}

continued_or_new as (
    select
        coalesce(
            o.mismatch_id,
            md5(concat_ws('|', d.mismatch_type, d.anchor_system, d.anchor_id, cast(r.run_at as varchar)))
        ) as mismatch_id,
        d.mismatch_type,
        d.anchor_system,
        d.anchor_id,
        d.customer_key,
        d.severity,
        d.amount_at_risk,
        d.currency,
        d.details,
        coalesce(o.first_detected_at, r.run_at) as first_detected_at,
        r.run_at as last_detected_at,
        cast(null as timestamp) as resolved_at,
        coalesce(o.times_detected, 0) + 1 as times_detected
    from detected as d
    cross join this_run as r
    left join open_episodes as o
        on
            d.mismatch_type = o.mismatch_type
            and d.anchor_system = o.anchor_system
            and d.anchor_id = o.anchor_id
),

resolved as (
    select
        o.mismatch_id,
        o.mismatch_type,
        o.anchor_system,
        o.anchor_id,
        o.customer_key,
        o.severity,
        o.amount_at_risk,
        o.currency,
        o.details,
        o.first_detected_at,
        o.last_detected_at,
        r.run_at as resolved_at,
        o.times_detected
    from open_episodes as o
    cross join this_run as r
    left join detected as d
        on
            o.mismatch_type = d.mismatch_type
            and o.anchor_system = d.anchor_system
            and o.anchor_id = d.anchor_id
    where d.mismatch_type is null
),

episodes as (
    select * from continued_or_new
    union all
    select * from resolved
)

select
    mismatch_id,
    mismatch_type,
    anchor_system,
    anchor_id,
    customer_key,
    severity,
    amount_at_risk,
    currency,
    details,
    first_detected_at,
    last_detected_at,
    resolved_at,
    times_detected,
    resolved_at is null as is_open
from episodes
