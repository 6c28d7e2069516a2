with

latest as (
    {{ latest_version(source('stripe', 'customers')) }}
),

fields as (
    select
        {{ json_text('id') }} as customer_id,
        {{ json_text('name') }} as name,
        {{ json_text('email') }} as email,
        {{ currency_code(json_text('currency')) }} as currency,
        {{ json_bigint('balance') }} as balance_minor,
        coalesce({{ json_boolean('delinquent') }}, false) as is_delinquent,
        coalesce({{ json_boolean('deleted') }}, false) as is_deleted,
        {{ json_value('metadata') }} as metadata,
        {{ json_text('metadata.hubspot_company_id') }} as hubspot_company_id,
        {{ epoch_to_timestamp(json_text('created')) }} as created_at,
        {{ lineage_columns() }}
    from latest
)

select
    customer_id,
    name,
    email,
    currency,
    balance_minor,
    {{ minor_to_major('balance_minor', 'currency') }} as balance,
    is_delinquent,
    is_deleted,
    metadata,
    hubspot_company_id,
    created_at,
    _loaded_at,
    _batch_id,
    _changed_at
from fields
