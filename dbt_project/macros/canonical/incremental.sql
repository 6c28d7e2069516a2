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

{#
    The CTEs `changed_erp` and `changed_keys` of an incremental run: the keys (`key`) to recompute
    are those whose Stripe record (`stripe` relation, id column `stripe_id`) landed after the Stripe
    mark, those a NetSuite record (`erp` relation, id `erp_id`; in the model `netsuite_column`) that
    landed after the NetSuite mark pairs with now or was paired with before, and those whose
    customer now resolves to another customer_key (identity relinked). Reads the model's `pairs` CTE.
#}
{% macro changed_pair_keys(key, stripe, stripe_id, erp, erp_id, netsuite_column) -%}
    changed_erp as (
        select {{ erp_id }}
        from {{ erp }}
        where _loaded_at > {{ loaded_watermark('_netsuite_loaded_at') }}
    ),

    changed_keys as (
        select {{ stripe_id }} as {{ key }}
        from {{ stripe }}
        where _loaded_at > {{ loaded_watermark('_stripe_loaded_at') }}
        union
        select p.{{ key }}
        from pairs as p
        inner join changed_erp as c on p.{{ netsuite_column }} = c.{{ erp_id }}
        union
        select t.{{ key }}
        from {{ this }} as t
        inner join changed_erp as c on t.{{ netsuite_column }} = c.{{ erp_id }}
        union
        select p.{{ key }}
        from pairs as p
        inner join {{ this }} as t on p.{{ key }} = t.{{ key }}
        where p.customer_key is distinct from t.customer_key
    )
{%- endmacro %}

{#
    The ERP records of one kind with the key they pair on (`external_key`: the external id, any case)
    and `claim_rank`: when several ERP records carry the same external id, the lowest id (rank 1)
    pairs with the Stripe record and the others stay ERP-only rows.
#}
{% macro erp_claims(relation, erp_id) -%}
    select
        *,
        upper(external_id) as external_key,
        row_number() over (partition by upper(external_id) order by {{ erp_id }}) as claim_rank
    from {{ relation }}
{%- endmacro %}
