with

latest as (
    {{ latest_version(source('zendesk', 'users')) }}
)

select
    {{ json_text('id') }} as user_id,
    {{ json_text('name') }} as name,
    lower(trim({{ json_nonempty('email') }})) as email,
    {{ json_text('role') }} as role,
    {{ json_text('organization_id') }} as organization_id,
    coalesce({{ json_boolean('active') }}, true) as is_active,
    coalesce({{ json_boolean('suspended') }}, false) as is_suspended,
    {{ iso_to_timestamp(json_text('created_at')) }} as created_at,
    {{ iso_to_timestamp(json_text('updated_at')) }} as updated_at,
    {{ lineage_columns() }}
from latest
