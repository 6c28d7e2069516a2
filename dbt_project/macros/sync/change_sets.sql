{#
    Helpers of the sync change sets (models/marts/sync): canonical payloads, deterministic keys and
    the NetSuite REST forms of references, currencies and dates.
#}

{#
    A JSON object with its null members dropped, recursively (JSON merge patch semantics), as
    canonical text: the same values give the same text run after run, on DuckDB and PostgreSQL alike
    (numbers through json_double), so it can be hashed.
#}
{% macro canonical_json(json_expression) -%}
    {{ json_without_nulls(json_expression) }}
{%- endmacro %}

{#
    Deterministic idempotency key of one intended write: sha256 over the target, record type,
    operation, the record's key in the target (external id, else internal id) and the payload's
    canonical text. The same change gives the same key on every run; a changed payload a new key.
#}
{% macro change_key(target, record_type, operation, record_key, canonical_payload) -%}
    {{ sha256_hex("concat_ws('|', " ~ target ~ ", " ~ record_type ~ ", " ~ operation ~ ", " ~ record_key ~ ", "
        ~ canonical_payload ~ ")") }}
{%- endmacro %}

{#
    Lowercase ISO currency -> NetSuite currency reference {"id": "<internal id>"} (the inverse of var
    `netsuite_currencies`); null for a currency the account does not book in.
#}
{% macro netsuite_currency_ref(currency) -%}
    case {{ currency }}
        {%- for currency_id, code in var('netsuite_currencies').items() %}
        when '{{ code | lower }}' then {{ json_obj({'id': "'" ~ currency_id ~ "'"}) }}
        {%- endfor %}
    end
{%- endmacro %}

{#
    NetSuite record reference: {"id": <internal id>} when the record exists, else {"externalId": ...}
    for a record created earlier in the same change set (the REST API resolves either).
#}
{% macro netsuite_ref(internal_id, external_id) -%}
    case
        when {{ internal_id }} is not null then {{ json_obj({'id': internal_id}) }}
        when {{ external_id }} is not null then {{ json_obj({'externalId': external_id}) }}
    end
{%- endmacro %}

{#
    UTC timestamp -> the NetSuite account's calendar date (var `netsuite_timezone`) as 'YYYY-MM-DD',
    the form of the REST API's date fields (tranDate, dueDate, startDate, endDate).
#}
{% macro netsuite_date(expression) -%}
    {{ date_text("timezone('" ~ var('netsuite_timezone') ~ "', timezone('UTC', " ~ expression ~ "))") }}
{%- endmacro %}

{# Correlation id of a source record version: '<system>:<object>:<id>:<changed at, epoch seconds>'. #}
{% macro correlation_id(source_system, object_name, id_expression, changed_at) -%}
    '{{ source_system }}:{{ object_name }}:' || {{ id_expression }} || ':'
    || coalesce(cast({{ timestamp_to_epoch_seconds(changed_at) }} as bigint)::varchar, 'unknown')
{%- endmacro %}
