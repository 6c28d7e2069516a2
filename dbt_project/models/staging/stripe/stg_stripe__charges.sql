with

latest as (
    {{ latest_version(source('stripe', 'charges')) }}
),

fields as (
    select
        {{ json_text('id') }} as charge_id,
        {{ json_text('customer') }} as customer_id,
        -- removed from the Charge object in API 2025-03 (null then): link payments to invoices
        -- through NetSuite (customer payment externalId = charge id, createdfrom = invoice)
        {{ json_text('invoice') }} as invoice_id,
        {{ json_text('payment_intent') }} as payment_intent_id,
        {{ currency_code(json_text('currency')) }} as currency,
        {{ json_text('status') }} as status,
        {{ json_text('failure_code') }} as failure_code,
        {{ json_bigint('amount') }} as amount_minor,
        {{ json_bigint('amount_captured') }} as amount_captured_minor,
        {{ json_bigint('amount_refunded') }} as amount_refunded_minor,
        coalesce({{ json_boolean('paid') }}, false) as is_paid,
        coalesce({{ json_boolean('refunded') }}, false) as is_refunded,
        {{ epoch_to_timestamp(json_text('created')) }} as created_at,
        {{ lineage_columns() }}
    from latest
)

select
    charge_id,
    customer_id,
    invoice_id,
    payment_intent_id,
    currency,
    status,
    failure_code,
    amount_minor,
    {{ minor_to_major('amount_minor', 'currency') }} as amount,
    amount_captured_minor,
    {{ minor_to_major('amount_captured_minor', 'currency') }} as amount_captured,
    amount_refunded_minor,
    {{ minor_to_major('amount_refunded_minor', 'currency') }} as amount_refunded,
    is_paid,
    is_refunded,
    created_at,
    _loaded_at,
    _batch_id,
    _changed_at
from fields
