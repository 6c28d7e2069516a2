with

latest as (
    {{ latest_version(source('stripe', 'subscriptions')) }}
),

fields as (
    select
        {{ json_text('id') }} as subscription_id,
        {{ json_text('customer') }} as customer_id,
        {{ json_text('status') }} as status,
        {{ currency_code(json_text('currency')) }} as currency,
        -- one item per subscription (revsync sells one plan per subscription): the first item
        {{ json_text('items.data[0].id') }} as item_id,
        {{ json_text('items.data[0].price.id') }} as price_id,
        {{ json_text('items.data[0].price.product') }} as product_id,
        {{ json_bigint('items.data[0].quantity') }} as quantity,
        {{ json_bigint('items.data[0].price.unit_amount') }} as unit_amount_minor,
        {{ json_text('items.data[0].price.recurring.interval') }} as recurring_interval,
        cast(json_array_length({{ json_value('items.data') }}) as integer) as item_count,
        lower({{ json_text('metadata.plan') }}) as plan,
        coalesce({{ json_boolean('cancel_at_period_end') }}, false) as is_cancel_at_period_end,
        -- API 2025-03+: the period lives on the item; older versions have it on the subscription
        {{ epoch_to_timestamp(
            'coalesce(' ~ json_text('items.data[0].current_period_start') ~ ', '
            ~ json_text('current_period_start') ~ ')'
        ) }} as current_period_start_at,
        {{ epoch_to_timestamp(
            'coalesce(' ~ json_text('items.data[0].current_period_end') ~ ', '
            ~ json_text('current_period_end') ~ ')'
        ) }} as current_period_end_at,
        {{ epoch_to_timestamp(json_text('trial_start')) }} as trial_start_at,
        {{ epoch_to_timestamp(json_text('trial_end')) }} as trial_end_at,
        {{ epoch_to_timestamp(json_text('cancel_at')) }} as cancel_at,
        {{ epoch_to_timestamp(json_text('canceled_at')) }} as canceled_at,
        {{ epoch_to_timestamp(json_text('ended_at')) }} as ended_at,
        {{ epoch_to_timestamp(json_text('start_date')) }} as start_at,
        {{ epoch_to_timestamp(json_text('created')) }} as created_at,
        {{ json_value('metadata') }} as metadata,
        {{ lineage_columns() }}
    from latest
)

select
    subscription_id,
    customer_id,
    status,
    currency,
    item_id,
    price_id,
    product_id,
    quantity,
    unit_amount_minor,
    {{ minor_to_major('unit_amount_minor', 'currency') }} as unit_amount,
    recurring_interval,
    item_count,
    plan,
    is_cancel_at_period_end,
    current_period_start_at,
    current_period_end_at,
    trial_start_at,
    trial_end_at,
    cancel_at,
    canceled_at,
    ended_at,
    start_at,
    created_at,
    metadata,
    _loaded_at,
    _batch_id,
    _changed_at
from fields
