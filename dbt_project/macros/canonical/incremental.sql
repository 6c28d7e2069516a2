{#
    Helpers of the incremental canonical facts (invoices, payments, credit_notes): one row per
    business object pairing a Stripe record with its NetSuite record, rebuilt only for the objects
    whose Stripe or NetSuite side landed after the table's high-water mark. See DECISIONLOG.md,
    "Canonical marts".
#}

{#
    The high-water mark of one side: the latest `_loaded_at` of that side already in the table
    (`column`, e.g. _stripe_loaded_at), or the epoch when the table holds none, so a side that had
    not landed at the last build is read whole.
#}
{% macro loaded_watermark(column) -%}
    (select coalesce(max({{ column }}), timestamp '1970-01-01') from {{ this }})
{%- endmacro %}

{#
    Lineage columns every incremental canonical row ends with: the dbt invocation that wrote it and
    when (UTC). (`default`: sqlfluff's templater has no invocation_id.)
#}
{% macro build_columns() -%}
    '{{ invocation_id | default("") }}' as _dbt_invocation_id,
    timezone('UTC', now()) as _built_at
{%- endmacro %}

{#
    Post-hook: delete the ERP-only rows (`stripe_id` null, keyed 'netsuite:<id>') whose ERP record is
    now paired with a Stripe record in another row. delete+insert replaces the keys an incremental run
    recomputes but cannot remove a key that no longer exists; this is the only way one disappears.
#}
{% macro delete_superseded_erp_only_rows(stripe_id, netsuite_id) -%}
    delete from {{ this }}
    where
        {{ stripe_id }} is null
        and {{ netsuite_id }} in (
            select {{ netsuite_id }} from {{ this }} where {{ stripe_id }} is not null
        )
{%- endmacro %}
