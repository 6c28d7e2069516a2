{#
    dbt-postgres's own postgres__get_columns_in_relation with one change: an array column's type is its
    element type with `[]` (udt_name `_varchar` -> `varchar[]`) instead of information_schema's bare
    `ARRAY`, which dbt then writes into `cast(null as ARRAY)` and PostgreSQL rejects (dbt-labs/dbt-adapters
    issue 939). Unit tests cast every column of their inputs this way, and canonical.customers has two
    arrays (source_systems, netsuite_customer_ids). The root project's macro takes precedence over the
    adapter's; DuckDB is not concerned.
#}
{% macro postgres__get_columns_in_relation(relation) -%}
  {% call statement('get_columns_in_relation', fetch_result=True) %}
      select
          column_name,
          case when data_type = 'ARRAY' then substr(udt_name, 2) || '[]' else data_type end as data_type,
          character_maximum_length,
          numeric_precision,
          numeric_scale

      from {{ relation.information_schema('columns') }}
      where table_name = '{{ relation.identifier }}'
        {% if relation.schema %}
        and table_schema = '{{ relation.schema }}'
        {% endif %}
      order by ordinal_position

  {% endcall %}
  {% set table = load_result('get_columns_in_relation').table %}
  {{ return(sql_convert_columns_in_relation(table)) }}
{% endmacro %}
