with

latest as (
    {{ latest_version(source('netsuite', 'customer')) }}
)

select
    {{ json_text('id') }} as customer_id,
    -- the Stripe customer id the integration writes on create/upsert (null when created by hand)
    {{ json_nonempty('externalid') }} as external_id,
    {{ json_text('entityid') }} as entity_id,
    {{ json_text('companyname') }} as company_name,
    lower(trim({{ json_nonempty('email') }})) as email,
    {{ json_text('subsidiary') }} as subsidiary_id,
    {{ netsuite_currency_code(json_text('currency')) }} as currency,
    {{ json_text('currency') }} as currency_id,
    coalesce({{ json_text('isinactive') }} = 'T', false) as is_inactive,
    {{ netsuite_datetime_to_timestamp(json_text('datecreated')) }} as created_at,
    {{ netsuite_datetime_to_timestamp(json_text('lastmodifieddate')) }} as updated_at,
    {{ lineage_columns() }}
from latest
