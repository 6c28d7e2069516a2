with

latest as (
    {{ latest_version(source('hubspot', 'companies')) }}
)

select
    {{ json_text('id') }} as company_id,
    {{ json_nonempty('properties.name') }} as name,
    lower(trim({{ json_nonempty('properties.domain') }})) as domain,
    {{ json_nonempty('properties.lifecyclestage') }} as lifecyclestage,
    -- custom properties set by the billing integration: ARR in the billing currency, Stripe id
    {{ text_to_amount(json_text('properties.arr')) }} as arr,
    {{ currency_code(json_nonempty('properties.arr_currency')) }} as arr_currency,
    {{ json_nonempty('properties.stripe_customer_id') }} as stripe_customer_id,
    coalesce({{ json_boolean('archived') }}, false) as is_archived,
    {{ iso_to_timestamp(json_text('createdAt')) }} as created_at,
    {{ iso_to_timestamp(json_text('updatedAt')) }} as updated_at,
    {{ lineage_columns() }}
from latest
