with

latest as (
    {{ latest_version(source('zendesk', 'tickets')) }}
)

select
    {{ json_text('id') }} as ticket_id,
    {{ json_text('subject') }} as subject,
    {{ json_text('status') }} as status,
    {{ json_text('priority') }} as priority,
    {{ json_text('type') }} as type,
    {{ json_text('requester_id') }} as requester_id,
    {{ json_text('organization_id') }} as organization_id,
    {{ json_value('tags') }} as tags,
    {{ iso_to_timestamp(json_text('created_at')) }} as created_at,
    {{ iso_to_timestamp(json_text('updated_at')) }} as updated_at,
    {{ lineage_columns() }}
from latest
