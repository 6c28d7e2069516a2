with

latest as (
    {{ latest_version(source('stripe', 'products')) }}
)

select
    {{ json_text('id') }} as product_id,
    {{ json_text('name') }} as name,
    -- the plan is the product's name ('Growth' -> growth), as the world and its rules define it
    lower(trim({{ json_text('name') }})) as plan,
    lower({{ json_text('metadata.tier') }}) as tier,
    coalesce({{ json_boolean('active') }}, true) as is_active,
    {{ json_value('metadata') }} as metadata,
    {{ epoch_to_timestamp(json_text('created')) }} as created_at,
    {{ epoch_to_timestamp(json_text('updated')) }} as updated_at,
    {{ lineage_columns() }}
from latest
