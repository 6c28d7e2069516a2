with

latest as (
    {{ latest_version(source('zendesk', 'organizations')) }}
)

select
    {{ json_text('id') }} as organization_id,
    {{ json_text('name') }} as name,
    -- the Stripe customer id the billing integration stamps on the organization (any case)
    {{ json_nonempty('external_id') }} as external_id,
    {{ json_value('domain_names') }} as domain_names,
    {{ json_value('organization_fields') }} as organization_fields,
    lower(trim({{ json_nonempty('organization_fields.support_tier') }})) as support_tier,
    lower(trim({{ json_nonempty('organization_fields.plan') }})) as plan,
    {{ json_value('tags') }} as tags,
    {{ iso_to_timestamp(json_text('created_at')) }} as created_at,
    {{ iso_to_timestamp(json_text('updated_at')) }} as updated_at,
    {{ lineage_columns() }}
from latest
