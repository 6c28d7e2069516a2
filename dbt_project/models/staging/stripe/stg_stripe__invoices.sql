with

latest as (
    {{ latest_version(source('stripe', 'invoices')) }}
),

fields as (
    select
        {{ json_text('id') }} as invoice_id,
        {{ json_text('number') }} as number,
        {{ json_text('customer') }} as customer_id,
        -- API 2025-03+: parent.subscription_details; older versions: top-level `subscription`
        coalesce(
            {{ json_text('parent.subscription_details.subscription') }}, {{ json_text('subscription') }}
        ) as subscription_id,
        {{ currency_code(json_text('currency')) }} as currency,
        {{ json_text('status') }} as status,
        {{ json_text('billing_reason') }} as billing_reason,
        {{ json_bigint('total') }} as total_minor,
        {{ json_bigint('amount_due') }} as amount_due_minor,
        {{ json_bigint('amount_paid') }} as amount_paid_minor,
        {{ json_bigint('amount_remaining') }} as amount_remaining_minor,
        {{ epoch_to_timestamp(json_text('period_start')) }} as period_start_at,
        {{ epoch_to_timestamp(json_text('period_end')) }} as period_end_at,
        {{ epoch_to_timestamp(json_text('due_date')) }} as due_at,
        {{ epoch_to_timestamp(json_text('status_transitions.finalized_at')) }} as finalized_at,
        {{ epoch_to_timestamp(json_text('status_transitions.paid_at')) }} as paid_at,
        {{ epoch_to_timestamp(json_text('status_transitions.voided_at')) }} as voided_at,
        {{ epoch_to_timestamp(json_text('status_transitions.marked_uncollectible_at')) }}
            as marked_uncollectible_at,
        {{ epoch_to_timestamp(json_text('created')) }} as created_at,
        {{ lineage_columns() }}
    from latest
)

select
    invoice_id,
    number,
    customer_id,
    subscription_id,
    currency,
    status,
    billing_reason,
    total_minor,
    {{ minor_to_major('total_minor', 'currency') }} as total,
    amount_due_minor,
    {{ minor_to_major('amount_due_minor', 'currency') }} as amount_due,
    amount_paid_minor,
    {{ minor_to_major('amount_paid_minor', 'currency') }} as amount_paid,
    amount_remaining_minor,
    {{ minor_to_major('amount_remaining_minor', 'currency') }} as amount_remaining,
    period_start_at,
    period_end_at,
    due_at,
    finalized_at,
    paid_at,
    voided_at,
    marked_uncollectible_at,
    created_at,
    _loaded_at,
    _batch_id,
    _changed_at
from fields
