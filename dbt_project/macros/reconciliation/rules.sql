{#
    Business-rule helpers of the reconciliation marts (models/marts/reconciliation).
#}

{# The as-of time age-based rules evaluate at: var `as_of` (ISO 8601, UTC), else now; a UTC timestamp. #}
{% macro as_of() -%}
    {%- if var('as_of', none) -%}
        timezone('UTC', cast('{{ var("as_of") }}' as timestamptz))
    {%- else -%}
        timezone('UTC', now())
    {%- endif -%}
{%- endmacro %}

{# The support tier a plan entitles to (var `plan_support_tiers`), null for an unknown plan. #}
{% macro plan_tier(plan) -%}
    case {{ plan }}
        {%- for name, tier in var('plan_support_tiers').items() %} when '{{ name }}' then '{{ tier }}'
        {%- endfor %} end
{%- endmacro %}

{# A support tier's rank in var `support_tiers` (ascending from 1), null for an unknown tier. #}
{% macro tier_rank(tier) -%}
    case {{ tier }}
        {%- for name in var('support_tiers') %} when '{{ name }}' then {{ loop.index }}
        {%- endfor %} end
{%- endmacro %}
