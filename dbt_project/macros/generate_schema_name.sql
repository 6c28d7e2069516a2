{#
    A model's custom schema is used as is (`staging`, not `main_staging`), so every environment
    sees the same layout: raw_<source>, staging, and later canonical / reconciliation / sync.
#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
