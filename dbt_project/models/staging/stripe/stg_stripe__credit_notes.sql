with

latest as (
    {{ latest_version(source('stripe', 'credit_notes')) }}
),

fields as (
    select
        {{ json_text('id') }} as credit_note_id,
        {{ json_text('number') }} as number,
        {{ json_text('customer') }} as customer_id,
        {{ json_text('invoice') }} as invoice_id,
        {{ currency_code(json_text('currency')) }} as currency,
        {{ json_bigint('amount') }} as amount_minor,
        {{ json_text('status') }} as status,
        {{ json_text('type') }} as type,
        {{ json_text('reason') }} as reason,
        {{ epoch_to_timestamp(json_text('voided_at')) }} as voided_at,
        {{ epoch_to_timestamp(json_text('effective_at')) }} as effective_at,
        {{ epoch_to_timestamp(json_text('created')) }} as created_at,
        {{ lineage_columns() }}
    from latest
)

select
    credit_note_id,
    number,
    customer_id,
    invoice_id,
    currency,
    amount_minor,
    {{ minor_to_major('amount_minor', 'currency') }} as amount,
    status,
    type,
    reason,
    voided_at,
    effective_at,
    created_at,
    _loaded_at,
    _batch_id,
    _changed_at
from fields
