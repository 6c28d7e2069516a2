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

{# `amount` in `currency` (lowercase ISO code) converted to var `reporting_currency` with var `fx_rates`;
   null for a currency without a rate. decimal(18, 3) like every amount. #}
{% macro to_reporting_currency(amount, currency) -%}
    cast({{ amount }} * case {{ currency }}
        {%- for code, rate in var('fx_rates').items() %} when '{{ code }}' then {{ rate }}
        {%- endfor %} end as decimal(18, 3))
{%- endmacro %}

{# The 14 mismatch types of ARCHITECTURE.md (contract), in its order. #}
{% macro mismatch_types() -%}
    {{ return([
        'customer_missing_in_erp', 'duplicate_erp_customer', 'subscription_missing_in_erp',
        'erp_contract_without_active_subscription', 'invoice_missing_in_erp', 'invoice_amount_mismatch',
        'invoice_currency_mismatch', 'payment_status_mismatch', 'credit_note_missing_in_erp',
        'entitlement_tier_mismatch', 'entitlement_on_delinquent_account', 'entitlement_after_cancellation',
        'closed_won_without_subscription', 'crm_arr_mismatch',
    ]) }}
{%- endmacro %}

