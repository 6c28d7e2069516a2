{#
    Unit and format conversions used by staging. Timestamps come out as UTC `timestamp` (no zone),
    money in major units as decimal(18, 3) (three decimals so three-decimal currencies survive).
#}

{# Unix epoch seconds (number or numeric text) -> UTC timestamp. #}
{% macro epoch_to_timestamp(expression) -%}
    {{ epoch_seconds_to_timestamp(expression) }}
{%- endmacro %}

{# ISO 8601 text with a zone designator ('2025-08-30T18:14:17.000Z', '...+02:00') -> UTC timestamp. #}
{% macro iso_to_timestamp(expression) -%}
    timezone('UTC', cast({{ expression }} as timestamptz))
{%- endmacro %}

{#
    NetSuite SuiteQL datetime ('YYYY-MM-DD HH:MM:SS', wall-clock time in the account's zone,
    var `netsuite_timezone`) -> UTC timestamp.
#}
{% macro netsuite_datetime_to_timestamp(expression) -%}
    timezone('UTC', timezone('{{ var("netsuite_timezone") }}', {{ wall_clock_to_timestamp(expression) }}))
{%- endmacro %}

{# Currency code -> lowercase ISO 4217 ('EUR ' -> 'eur'). #}
{% macro currency_code(expression) -%}
    lower(trim({{ expression }}))
{%- endmacro %}

{#
    NetSuite currency internal id -> lowercase ISO code (var `netsuite_currencies`). A value that is
    not a known id passes through lowercased, so an unmapped id shows up (and fails the currency
    tests) instead of vanishing.
#}
{% macro netsuite_currency_code(expression) -%}
    case trim({{ expression }})
        {%- for currency_id, code in var('netsuite_currencies').items() %}
        when '{{ currency_id }}' then '{{ code | lower }}'
        {%- endfor %}
        else lower(trim({{ expression }}))
    end
{%- endmacro %}

{# Minor-unit exponent of a lowercase currency code: var `currency_exponents`, else 2. #}
{% macro currency_exponent(currency) -%}
    case {{ currency }}
        {%- for code, exponent in var('currency_exponents').items() %}
        when '{{ code | lower }}' then {{ exponent }}
        {%- endfor %}
        else 2
    end
{%- endmacro %}

{# Integer minor units (Stripe: 1999 = $19.99, 1500 = ¥1500) -> decimal major units. #}
{% macro minor_to_major(minor, currency) -%}
    cast({{ minor }} / power(10, {{ currency_exponent(currency) }}) as decimal(18, 3))
{%- endmacro %}

{# A decimal amount served as text (HubSpot properties, SuiteQL columns) -> decimal(18, 3). #}
{% macro text_to_amount(expression) -%}
    cast(nullif(trim({{ expression }}), '') as decimal(18, 3))
{%- endmacro %}
