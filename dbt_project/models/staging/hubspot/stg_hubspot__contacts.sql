with

latest as (
    {{ latest_version(source('hubspot', 'contacts')) }}
)

select
    {{ json_text('id') }} as contact_id,
    lower(trim({{ json_nonempty('properties.email') }})) as email,
    {{ json_nonempty('properties.firstname') }} as firstname,
    {{ json_nonempty('properties.lastname') }} as lastname,
    -- the first associated company (contacts belong to one company here)
    {{ json_text('associations.companies.results[0].id') }} as company_id,
    coalesce({{ json_boolean('archived') }}, false) as is_archived,
    {{ iso_to_timestamp(json_text('createdAt')) }} as created_at,
    {{ iso_to_timestamp(json_text('updatedAt')) }} as updated_at,
    {{ lineage_columns() }}
from latest
