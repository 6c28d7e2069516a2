with

latest as (
    {{ latest_version(source('stripe', 'usage')) }}
),

fields as (
    select
        {{ json_text('id') }} as usage_id,
        {{ json_text('meter') }} as meter_id,
        {{ json_text('customer') }} as customer_id,
        cast({{ json_text('aggregated_value') }} as decimal(18, 3)) as quantity,
        {{ epoch_to_timestamp(json_text('start_time')) }} as period_start_at,
        {{ epoch_to_timestamp(json_text('end_time')) }} as period_end_at,
        {{ lineage_columns() }}
    from latest
)

select
    usage_id,
    meter_id,
    customer_id,
    cast(period_start_at as date) as usage_date,
    quantity,
    period_start_at,
    period_end_at,
    _loaded_at,
    _batch_id,
    _changed_at
from fields
