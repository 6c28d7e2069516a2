{#
    The latest landed version of every record of a raw landing table.

    A raw_<source>.<stream> table keeps one row per distinct version of a record. The latest version
    of a key (`_pk`) is the one with the highest change time (`_cursor_value`, epoch seconds as
    text); a tie goes to the version landed last (`_loaded_at`), then to the record hash so the
    choice is deterministic. A raw table that does not exist yet reads as empty, so a stream added to
    a connector, or a source not extracted yet, does not fail the build (the view is recreated on
    every build, and reads the table once it is there).
#}
{% macro latest_version(relation) -%}
    {%- if execute and adapter.get_relation(relation.database, relation.schema, relation.identifier) is none -%}
        {#- a stream not landed yet (a new stream, a source extracted later): no rows, same columns -#}
        select
            cast(null as json) as record,
            cast(null as varchar) as _pk,
            cast(null as timestamp) as _loaded_at,
            cast(null as varchar) as _batch_id,
            cast(null as varchar) as _source_url,
            cast(null as varchar) as _cursor_value,
            cast(null as varchar) as _record_hash
        where false
    {%- else -%}
        {{ adapter.dispatch('latest_version_of', 'revsync')(relation) }}
    {%- endif -%}
{%- endmacro %}

{% macro duckdb__latest_version_of(relation) -%}
    select *
    from {{ relation }}
    qualify row_number() over (
        partition by _pk
        order by try_cast(_cursor_value as bigint) desc nulls last, _loaded_at desc, _record_hash desc
    ) = 1
{%- endmacro %}

{#
    PostgreSQL has no QUALIFY and no try_cast: the same order in a subquery, a cursor that is not an
    integer sorting last as DuckDB's failed try_cast does.
#}
{% macro postgres__latest_version_of(relation) -%}
    select record, _pk, _loaded_at, _batch_id, _source_url, _cursor_value, _record_hash
    from (
        select
            *,
            row_number() over (
                partition by _pk
                order by
                    case when _cursor_value ~ '^\s*[-+]?[0-9]{1,18}\s*$' then cast(_cursor_value as bigint) end
                    desc nulls last,
                    _loaded_at desc,
                    _record_hash desc
            ) as _version_rank
        from {{ relation }}
    ) as versions
    where _version_rank = 1
{%- endmacro %}

{#
    The lineage columns every staging model ends with: when the version landed, in which batch, and
    when the source says the record changed (`_cursor_value` as a UTC timestamp).
#}
{% macro lineage_columns() -%}
    _loaded_at,
    _batch_id,
    {{ epoch_to_timestamp('_cursor_value') }} as _changed_at
{%- endmacro %}
