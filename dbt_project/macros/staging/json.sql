{#
    Field extraction from a landed record (`record`, JSON). `path` is a JSONPath below the root
    without the leading `$.`, e.g. 'status_transitions.finalized_at' or 'items.data[0].price.id'.
    A field absent from the record (or JSON null) comes back as SQL null, so a field no record has
    yet still builds: the typed helpers only cast it. (DuckDB or PostgreSQL: macros/cross_db.sql.)
#}
{% macro json_text(path, column='record') -%}
    {{ json_extract_text(column, path) }}
{%- endmacro %}

{% macro json_bigint(path, column='record') -%}
    cast({{ json_text(path, column) }} as bigint)
{%- endmacro %}

{% macro json_boolean(path, column='record') -%}
    cast({{ json_text(path, column) }} as boolean)
{%- endmacro %}

{# A nested object or array, kept as JSON (JSON null when the field is null, SQL null when absent). #}
{% macro json_value(path, column='record') -%}
    {{ json_extract_json(column, path) }}
{%- endmacro %}

{# An optional string field: empty strings (HubSpot's "no value") become null. #}
{% macro json_nonempty(path, column='record') -%}
    nullif({{ json_text(path, column) }}, '')
{%- endmacro %}
