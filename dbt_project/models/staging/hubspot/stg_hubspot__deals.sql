with

latest as (
    {{ latest_version(source('hubspot', 'deals')) }}
)

select
    {{ json_text('id') }} as deal_id,
    {{ json_nonempty('properties.dealname') }} as dealname,
    {{ json_nonempty('properties.dealstage') }} as dealstage,
    {{ json_nonempty('properties.pipeline') }} as pipeline,
    {{ text_to_amount(json_text('properties.amount')) }} as amount,
    {{ currency_code(json_nonempty('properties.deal_currency_code')) }} as deal_currency_code,
    lower(trim({{ json_nonempty('properties.plan') }})) as plan,
    -- the first associated company (a deal belongs to one company here)
    {{ json_text('associations.companies.results[0].id') }} as company_id,
    {{ iso_to_timestamp(json_nonempty('properties.closedate')) }} as closedate_at,
    coalesce({{ json_boolean('archived') }}, false) as is_archived,
    {{ iso_to_timestamp(json_text('createdAt')) }} as created_at,
    {{ iso_to_timestamp(json_text('updatedAt')) }} as updated_at,
    {{ lineage_columns() }}
from latest
