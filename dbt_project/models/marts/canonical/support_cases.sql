{{ config(materialized="table") }}

{#
    One row per Zendesk ticket, with its organization (the ticket's, else its requester's), the
    canonical customer and that organization's support tier: the one it has and the one it should have
    (entitlements).
#}

with

tickets as (
    select
        t.ticket_id,
        t.requester_id,
        t.subject,
        t.status,
        t.priority,
        t.type,
        t.created_at,
        t.updated_at,
        coalesce(t.organization_id, u.organization_id) as organization_id,
        t.organization_id is null and u.organization_id is not null as is_organization_from_requester,
        t.status in ('new', 'open', 'pending', 'hold') as is_open
    from {{ ref('stg_zendesk__tickets') }} as t
    left join {{ ref('stg_zendesk__users') }} as u on t.requester_id = u.user_id
)

select
    t.ticket_id as zendesk_ticket_id,
    t.organization_id as zendesk_organization_id,
    e.customer_key,
    e.stripe_customer_id,
    t.requester_id as zendesk_requester_id,
    t.is_organization_from_requester,
    t.subject,
    t.status,
    t.is_open,
    t.priority,
    t.type,
    e.current_support_tier as support_tier,
    e.expected_support_tier,
    e.is_tier_correct,
    t.created_at,
    t.updated_at
from tickets as t
left join {{ ref('entitlements') }} as e on t.organization_id = e.zendesk_organization_id
