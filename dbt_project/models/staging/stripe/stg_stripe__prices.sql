with

latest as (
    {{ latest_version(source('stripe', 'prices')) }}
),

fields as (
    select
        {{ json_text('id') }} as price_id,
        {{ json_text('product') }} as product_id,
        {{ currency_code(json_text('currency')) }} as currency,
        {{ json_bigint('unit_amount') }} as unit_amount_minor,
        {{ json_text('type') }} as type,
        {{ json_text('recurring.interval') }} as recurring_interval,
        cast({{ json_text('recurring.interval_count') }} as integer) as recurring_interval_count,
        {{ json_text('nickname') }} as nickname,
        coalesce({{ json_boolean('active') }}, true) as is_active,
        {{ epoch_to_timestamp(json_text('created')) }} as created_at,
        {{ lineage_columns() }}
    from latest
)

select
    price_id,
    product_id,
    currency,
    unit_amount_minor,
    {{ minor_to_major('unit_amount_minor', 'currency') }} as unit_amount,
    type,
    recurring_interval,
    recurring_interval_count,
    nickname,
    is_active,
    created_at,
    _loaded_at,
    _batch_id,
    _changed_at
from fields
