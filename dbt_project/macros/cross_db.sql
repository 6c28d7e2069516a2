{#
    Cross-database SQL: the few places where DuckDB (the embedded default) and PostgreSQL (target
    `postgres`) spell the same thing differently. Each macro dispatches (adapter.dispatch, namespace
    revsync) to `duckdb__<name>`, the SQL the project has always emitted on DuckDB, or
    `postgres__<name>`, its PostgreSQL equivalent; another adapter fails to compile instead of getting
    SQL meant for one of these two. Standard SQL that both accept stays in the models as is.
    Arguments are SQL expressions (text) unless said otherwise.
#}

{# -- JSON ---------------------------------------------------------------------------------------- #}

{#
    A field of a JSON value as text (SQL null when absent or JSON null). `path`: a JSONPath below the
    root without `$.`, e.g. 'status_transitions.finalized_at' or 'items.data[0].price.id'.
#}
{% macro json_extract_text(column, path) -%}
    {{ return(adapter.dispatch('json_extract_text', 'revsync')(column, path)) }}
{%- endmacro %}

{% macro duckdb__json_extract_text(column, path) -%}
    json_extract_string({{ column }}, '$.{{ path }}')
{%- endmacro %}

{% macro postgres__json_extract_text(column, path) -%}
    ({{ column }} #>> '{{ json_path_array(path) }}')
{%- endmacro %}

{# A nested JSON value of a JSON value (JSON null when the field is null, SQL null when absent). #}
{% macro json_extract_json(column, path) -%}
    {{ return(adapter.dispatch('json_extract_json', 'revsync')(column, path)) }}
{%- endmacro %}

{% macro duckdb__json_extract_json(column, path) -%}
    json_extract({{ column }}, '$.{{ path }}')
{%- endmacro %}

{% macro postgres__json_extract_json(column, path) -%}
    ({{ column }} #> '{{ json_path_array(path) }}')
{%- endmacro %}

{# A JSONPath below the root ('items.data[0].id') as a PostgreSQL text-array path ('{items,data,0,id}'). #}
{% macro json_path_array(path) -%}
    {{ '{' ~ (path | replace('[', '.') | replace(']', '')).split('.') | join(',') ~ '}' }}
{%- endmacro %}

{#
    A JSON object from `members`, a mapping of key (text) -> SQL expression, in the mapping's order:
    json_obj({'id': 'c.customer_id', 'plan': "'growth'"}). Null members are kept (JSON null).
#}
{% macro json_obj(members) -%}
    {{ return(adapter.dispatch('json_obj', 'revsync')(members)) }}
{%- endmacro %}

{% macro duckdb__json_obj(members) -%}
    json_object({% for key, value in members.items() %}'{{ key }}', {{ value }}{{ ', ' if not loop.last }}{% endfor %})
{%- endmacro %}

{% macro postgres__json_obj(members) -%}
    json_build_object({% for key, value in members.items() %}'{{ key }}', {{ value }}{{ ', ' if not loop.last }}{% endfor %})
{%- endmacro %}

{# A JSON array of the SQL expressions in the list `items`. #}
{% macro json_arr(items) -%}
    {{ return(adapter.dispatch('json_arr', 'revsync')(items)) }}
{%- endmacro %}

{% macro duckdb__json_arr(items) -%}
    json_array({{ items | join(', ') }})
{%- endmacro %}

{% macro postgres__json_arr(items) -%}
    json_build_array({{ items | join(', ') }})
{%- endmacro %}

{# Aggregate: a JSON object of key -> value over the group's rows. #}
{% macro json_object_agg(key, value) -%}
    {{ return(adapter.dispatch('json_object_agg', 'revsync')(key, value)) }}
{%- endmacro %}

{% macro duckdb__json_object_agg(key, value) -%}
    json_group_object({{ key }}, {{ value }})
{%- endmacro %}

{% macro postgres__json_object_agg(key, value) -%}
    json_object_agg({{ key }}, {{ value }})
{%- endmacro %}

{#
    A JSON object with its null members dropped, recursively (nulls inside arrays stay), as compact
    text in the object's key order: {"a":"x","b":[1,null]}. Both engines write the same text for the
    same strings, booleans, nulls and json_double numbers (what the change sets' payloads hold), so a
    change's idempotency key is the same on DuckDB and PostgreSQL.
#}
{% macro json_without_nulls(json_expression) -%}
    {{ return(adapter.dispatch('json_without_nulls', 'revsync')(json_expression)) }}
{%- endmacro %}

{% macro duckdb__json_without_nulls(json_expression) -%}
    cast(json_merge_patch('{}', {{ json_expression }}) as varchar)
{%- endmacro %}

{% macro postgres__json_without_nulls(json_expression) -%}
    cast(json_strip_nulls({{ json_expression }}) as varchar)
{%- endmacro %}

{#
    A double (`expression`, numeric or double) as a JSON number written as DuckDB writes a DOUBLE:
    shortest round-trip digits, `.0` when integral (19.99, 20.0). PostgreSQL writes float8 20 as `20`,
    so it spells the integral case out; amounts below 10^15 (PostgreSQL's switch to exponents) agree.
#}
{% macro json_double(expression) -%}
    {{ return(adapter.dispatch('json_double', 'revsync')(expression)) }}
{%- endmacro %}

{% macro duckdb__json_double(expression) -%}
    cast({{ expression }} as double precision)
{%- endmacro %}

{% macro postgres__json_double(expression) -%}
    {%- set value = 'cast(' ~ expression ~ ' as double precision)' -%}
    cast(case
        when {{ value }} = trunc({{ value }}) then cast(cast({{ value }} as numeric) as text) || '.0'
        else cast({{ value }} as text)
    end as json)
{%- endmacro %}

{#
    For `from <relation> as x, {{ json_array_texts('x.column') }} as t (value)`: one row per element
    of a JSON array of strings (none when it is null, JSON null or not an array).
#}
{% macro json_array_texts(json_expression) -%}
    {{ return(adapter.dispatch('json_array_texts', 'revsync')(json_expression)) }}
{%- endmacro %}

{% macro duckdb__json_array_texts(json_expression) -%}
    unnest(cast(coalesce({{ json_expression }}, '[]') as varchar[]))
{%- endmacro %}

{% macro postgres__json_array_texts(json_expression) -%}
    json_array_elements_text(
        case when json_typeof({{ json_expression }}) = 'array' then {{ json_expression }} else '[]' end
    )
{%- endmacro %}

{# -- Times ------------------------------------------------------------------------------------- #}

{# Unix epoch seconds (number or numeric text) -> UTC timestamp (no zone). #}
{% macro epoch_seconds_to_timestamp(expression) -%}
    {{ return(adapter.dispatch('epoch_seconds_to_timestamp', 'revsync')(expression)) }}
{%- endmacro %}

{% macro duckdb__epoch_seconds_to_timestamp(expression) -%}
    make_timestamp(cast({{ expression }} as bigint) * 1000000)
{%- endmacro %}

{% macro postgres__epoch_seconds_to_timestamp(expression) -%}
    timezone('UTC', to_timestamp(cast({{ expression }} as bigint)))
{%- endmacro %}

{# A timestamp -> seconds since the Unix epoch (fractional; the timestamp read as UTC). #}
{% macro timestamp_to_epoch_seconds(expression) -%}
    {{ return(adapter.dispatch('timestamp_to_epoch_seconds', 'revsync')(expression)) }}
{%- endmacro %}

{% macro duckdb__timestamp_to_epoch_seconds(expression) -%}
    epoch({{ expression }})
{%- endmacro %}

{% macro postgres__timestamp_to_epoch_seconds(expression) -%}
    extract(epoch from {{ expression }})
{%- endmacro %}

{#
    Text 'YYYY-MM-DD HH:MM:SS' -> timestamp (no zone). DuckDB parses the exact format (strptime);
    PostgreSQL casts, which also accepts the other ISO 8601 spellings of a date and time.
#}
{% macro wall_clock_to_timestamp(expression) -%}
    {{ return(adapter.dispatch('wall_clock_to_timestamp', 'revsync')(expression)) }}
{%- endmacro %}

{% macro duckdb__wall_clock_to_timestamp(expression) -%}
    strptime({{ expression }}, '%Y-%m-%d %H:%M:%S')
{%- endmacro %}

{% macro postgres__wall_clock_to_timestamp(expression) -%}
    cast({{ expression }} as timestamp)
{%- endmacro %}

{# A timestamp -> its calendar date as text 'YYYY-MM-DD'. #}
{% macro date_text(expression) -%}
    {{ return(adapter.dispatch('date_text', 'revsync')(expression)) }}
{%- endmacro %}

{% macro duckdb__date_text(expression) -%}
    strftime({{ expression }}, '%Y-%m-%d')
{%- endmacro %}

{% macro postgres__date_text(expression) -%}
    to_char({{ expression }}, 'YYYY-MM-DD')
{%- endmacro %}

{# An interval of `amount` (a number, not an expression) `unit`s (day, hour, ...), e.g. interval_of(14, 'day'). #}
{% macro interval_of(amount, unit) -%}
    {{ return(adapter.dispatch('interval_of', 'revsync')(amount, unit)) }}
{%- endmacro %}

{% macro duckdb__interval_of(amount, unit) -%}
    interval {{ amount }} {{ unit }}
{%- endmacro %}

{% macro postgres__interval_of(amount, unit) -%}
    interval '{{ amount }} {{ unit }}'
{%- endmacro %}

{#
    The number of `part` boundaries (second or day) crossed from `start` to `end` (DuckDB's date_diff:
    23:59:59 to 00:00:01 is 1 day; 0.9 s to 1.1 s is 1 second).
#}
{% macro boundaries_between(part, start, end) -%}
    {{ return(adapter.dispatch('boundaries_between', 'revsync')(part, start, end)) }}
{%- endmacro %}

{% macro duckdb__boundaries_between(part, start, end) -%}
    date_diff('{{ part }}', {{ start }}, {{ end }})
{%- endmacro %}

{% macro postgres__boundaries_between(part, start, end) -%}
    {%- if part == 'day' -%}
        (cast({{ end }} as date) - cast({{ start }} as date))
    {%- elif part == 'second' -%}
        cast(extract(epoch from date_trunc('second', {{ end }}) - date_trunc('second', {{ start }})) as bigint)
    {%- else -%}
        {{ exceptions.raise_compiler_error("boundaries_between: part must be day or second, not " ~ part) }}
    {%- endif -%}
{%- endmacro %}

{# -- Aggregates -------------------------------------------------------------------------------- #}

{# The group's values of `expression` as a list (DuckDB LIST, PostgreSQL array) ordered by `order_by`. #}
{% macro ordered_list(expression, order_by) -%}
    {{ return(adapter.dispatch('ordered_list', 'revsync')(expression, order_by)) }}
{%- endmacro %}

{% macro duckdb__ordered_list(expression, order_by) -%}
    list({{ expression }} order by {{ order_by }})
{%- endmacro %}

{% macro postgres__ordered_list(expression, order_by) -%}
    array_agg({{ expression }} order by {{ order_by }})
{%- endmacro %}

{# An empty list, for coalesce(<list>, {{ empty_list() }}). #}
{% macro empty_list() -%}
    {{ return(adapter.dispatch('empty_list', 'revsync')()) }}
{%- endmacro %}

{% macro duckdb__empty_list() -%}
    []
{%- endmacro %}

{% macro postgres__empty_list() -%}
    '{}'
{%- endmacro %}

{#
    One non-null value of the group. With `order_by`: the first non-null one in that order; without:
    any (DuckDB's first seen, PostgreSQL's least: both are "one of them").
#}
{% macro any_value_of(expression, order_by=none) -%}
    {{ return(adapter.dispatch('any_value_of', 'revsync')(expression, order_by)) }}
{%- endmacro %}

{% macro duckdb__any_value_of(expression, order_by) -%}
    any_value({{ expression }}{% if order_by %} order by {{ order_by }}{% endif %})
{%- endmacro %}

{% macro postgres__any_value_of(expression, order_by) -%}
    {%- if order_by -%}
        (array_agg({{ expression }} order by {{ order_by }}) filter (where {{ expression }} is not null))[1]
    {%- else -%}
        min({{ expression }})
    {%- endif -%}
{%- endmacro %}

{# The `arg` of the group's row with the highest `value` (rows whose value is null ignored). #}
{% macro arg_max_of(arg, value) -%}
    {{ return(adapter.dispatch('arg_max_of', 'revsync')(arg, value)) }}
{%- endmacro %}

{% macro duckdb__arg_max_of(arg, value) -%}
    arg_max({{ arg }}, {{ value }})
{%- endmacro %}

{% macro postgres__arg_max_of(arg, value) -%}
    (array_agg({{ arg }} order by {{ value }} desc) filter (where {{ value }} is not null))[1]
{%- endmacro %}

{#
    How many of the group's rows satisfy `condition`. DuckDB's count_if is a HUGEINT; PostgreSQL's
    count is cast to its counterpart, numeric(38, 0), so the marts' column types match on both.
#}
{% macro count_where(condition) -%}
    {{ return(adapter.dispatch('count_where', 'revsync')(condition)) }}
{%- endmacro %}

{% macro duckdb__count_where(condition) -%}
    count_if({{ condition }})
{%- endmacro %}

{% macro postgres__count_where(condition) -%}
    cast(count(*) filter (where {{ condition }}) as numeric(38, 0))
{%- endmacro %}

{# The most frequent value of the group; a tie goes to the least value. #}
{% macro most_frequent(expression) -%}
    {{ return(adapter.dispatch('most_frequent', 'revsync')(expression)) }}
{%- endmacro %}

{% macro duckdb__most_frequent(expression) -%}
    mode({{ expression }} order by {{ expression }})
{%- endmacro %}

{% macro postgres__most_frequent(expression) -%}
    mode() within group (order by {{ expression }})
{%- endmacro %}

{# The median of the group's values (interpolated between the two middle ones). A FILTER may follow. #}
{% macro median_of(expression) -%}
    {{ return(adapter.dispatch('median_of', 'revsync')(expression)) }}
{%- endmacro %}

{% macro duckdb__median_of(expression) -%}
    median({{ expression }})
{%- endmacro %}

{% macro postgres__median_of(expression) -%}
    percentile_cont(0.5) within group (order by {{ expression }})
{%- endmacro %}

{# -- Scalars ----------------------------------------------------------------------------------- #}

{# `expression` (numeric or double) rounded to `digits` decimals. #}
{% macro round_to(expression, digits) -%}
    {{ return(adapter.dispatch('round_to', 'revsync')(expression, digits)) }}
{%- endmacro %}

{% macro duckdb__round_to(expression, digits) -%}
    round({{ expression }}, {{ digits }})
{%- endmacro %}

{% macro postgres__round_to(expression, digits) -%}
    round(cast({{ expression }} as numeric), {{ digits }})
{%- endmacro %}

{# The SHA-256 of a text as 64 lowercase hex digits. #}
{% macro sha256_hex(expression) -%}
    {{ return(adapter.dispatch('sha256_hex', 'revsync')(expression)) }}
{%- endmacro %}

{% macro duckdb__sha256_hex(expression) -%}
    sha256({{ expression }})
{%- endmacro %}

{% macro postgres__sha256_hex(expression) -%}
    encode(sha256(convert_to({{ expression }}, 'UTF8')), 'hex')
{%- endmacro %}

{# A regular expression's word boundary (RE2's \b; PostgreSQL's \y, where \b is a backspace). #}
{% macro regex_word_boundary() -%}
    {{ return(adapter.dispatch('regex_word_boundary', 'revsync')()) }}
{%- endmacro %}

{% macro duckdb__regex_word_boundary() -%}
    \b
{%- endmacro %}

{% macro postgres__regex_word_boundary() -%}
    \y
{%- endmacro %}

{# -- Build ----------------------------------------------------------------------------------- #}

{#
    Pre-hook of every model (dbt_project.yml). PostgreSQL keeps no statistics on a CTE: it guesses that
    a filter keeps 0.5 % of a CTE's rows (`identity` filtered to one system: 20 rows of 4,000) and then
    prefers nested loops that rescan a subquery for every outer row. erp_changes on the small world
    ran for more than 15 minutes that way and takes 0.2 s with hash and merge joins only; a join with
    no equality condition still gets a nested loop. DuckDB needs nothing.
#}
{% macro planner_settings() -%}
    {{ return(adapter.dispatch('planner_settings', 'revsync')()) }}
{%- endmacro %}

{% macro duckdb__planner_settings() -%}
{%- endmacro %}

{% macro postgres__planner_settings() -%}
    set enable_nestloop = off
{%- endmacro %}

{#
    Post-hook of every model (dbt_project.yml): PostgreSQL gathers the new table's statistics (dbt does
    not, and autovacuum comes too late for the next model of the same build); DuckDB needs nothing.
#}
{% macro analyze_for_planner() -%}
    {{ return(adapter.dispatch('analyze_for_planner', 'revsync')()) }}
{%- endmacro %}

{% macro duckdb__analyze_for_planner() -%}
{%- endmacro %}

{% macro postgres__analyze_for_planner() -%}
    {%- if model.config.materialized in ('table', 'incremental') -%}
        analyze {{ this }}
    {%- endif -%}
{%- endmacro %}

{# -- Set operations -------------------------------------------------------------------------- #}

{#
    DuckDB's `union all by name`, spelled out so PostgreSQL runs it too (one SQL for both): the rows of
    every relation in `absent` (a mapping of relation or CTE name -> the columns of `columns` it does not
    have), each with `columns` in that order, null where the relation has not the column.
#}
{% macro union_all_by_name(absent, columns) -%}
    {%- for relation, missing in absent.items() %}
    select
        {%- for column in columns %}
        {% if column in missing %}null as {% endif %}{{ column }}{{ ',' if not loop.last }}
        {%- endfor %}
    from {{ relation }}
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}
{%- endmacro %}
