{{ config(materialized="table", schema="sync") }}

{#
    One row per Zendesk organization whose support tier must change, for the push_entitlements DAG:
    the tier the entitlement rules expect (mismatches: the plan's tier, or `basic` past the grace
    period while unpaid or after the subscription ended). The write is Zendesk's organization update
    `PUT /api/v2/organizations/{id}.json` with {"organization": {"organization_fields":
    {"support_tier": <tier>}}}; Zendesk merges organization_fields, so only the tier changes and
    replaying the write is harmless. The key includes the organization's version (its last change), so
    a tier revsync set once and someone changed since is set again, while the same write to the same
    version is never repeated. An organization whose expected tier is unknown (a plan outside
    var `plan_support_tiers`) gets no change.
#}

with

entitlement_mismatches as (
    select
        anchor_id as organization_id,
        customer_key,
        mismatch_type,
        {{ json_text('tier', 'details') }} as current_tier,
        {{ json_text('expected_tier', 'details') }} as tier_to_set
    from {{ ref('mismatches') }}
    where
        mismatch_type in (
            'entitlement_tier_mismatch',
            'entitlement_on_delinquent_account',
            'entitlement_after_cancellation'
        )
),

changes as (
    select
        m.organization_id,
        m.customer_key,
        o.name as organization_name,
        m.current_tier,
        m.tier_to_set,
        m.mismatch_type as reason,
        o._changed_at as source_changed_at,
        -- the organization as last seen: the same tier set again after someone changed it is a new write
        m.organization_id || '@'
        || coalesce(cast(cast({{ timestamp_to_epoch_seconds('o._changed_at') }} as bigint) as varchar), '')
            as organization_version,
        {{ correlation_id('zendesk', 'organization', 'm.organization_id', 'o._changed_at') }}
            as correlation_id,
        {{ canonical_json(json_obj({
            'organization': json_obj({'organization_fields': json_obj({'support_tier': 'm.tier_to_set'})})
        })) }} as payload
    from entitlement_mismatches as m
    inner join {{ ref('stg_zendesk__organizations') }} as o on m.organization_id = o.organization_id
    where m.tier_to_set is not null
)

-- sqlfluff:rules:references.keywords:ignore_words:name,domain,type,role,target,operation
select
    {{ change_key("'zendesk'", "'organization'", "'update'", 'organization_version', 'payload') }}
        as idempotency_key,
    'zendesk' as target,
    'organization' as record_type,
    'update' as operation,
    'PUT' as http_method,
    '/api/v2/organizations/' || organization_id || '.json' as http_path,
    organization_id,
    organization_name,
    customer_key,
    current_tier,
    tier_to_set,
    reason,
    correlation_id,
    cast(payload as json) as payload,
    {{ sha256_hex('payload') }} as payload_hash,
    source_changed_at
from changes
