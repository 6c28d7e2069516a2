{{ config(materialized="table", schema="intermediate") }}

{#
    One canonical customer across the four systems. Grain: one row per native record
    (source_system, native_id). The canonical `customer_key` is the Stripe customer id when the company
    bills, else `hubspot:<company id>` for a CRM-only company, else `<source_system>:<id>` for a record that
    resolves to nothing. Links are tried strongest first and `link_method` records the one used:

    hubspot company   -> stripe: `stripe_customer_id` property, else Stripe customer metadata
                         `hubspot_company_id`, else e-mail domain = company domain, else legal name
    zendesk org       -> `external_id` (Stripe customer id), else a domain name, else legal name
    netsuite customer -> `external_id` (Stripe customer id), else e-mail domain, else legal name
    Ids compare case-insensitively; domain and name matches count only when unambiguous.
#}

with

stripe as (
    select
        customer_id,
        {{ email_domain('email') }} as domain,
        {{ normalise_name('name') }} as legal_name,
        upper(hubspot_company_id) as hubspot_company_key
    from {{ ref('stg_stripe__customers') }}
),

stripe_by_domain as (
    select
        domain,
        min(customer_id) as customer_id
    from stripe
    where domain is not null
    group by domain
    having count(*) = 1
),

stripe_by_name as (
    select
        legal_name,
        min(customer_id) as customer_id
    from stripe
    where legal_name is not null
    group by legal_name
    having count(*) = 1
),

stripe_by_hubspot_id as (
    select
        hubspot_company_key,
        min(customer_id) as customer_id
    from stripe
    where hubspot_company_key is not null
    group by hubspot_company_key
    having count(*) = 1
),

hubspot as (
    select
        h.company_id,
        {{ normalise_domain('h.domain') }} as domain,
        {{ normalise_name('h.name') }} as legal_name,
        s_ext.customer_id as by_external_id,
        s_meta.customer_id as by_metadata,
        s_dom.customer_id as by_domain,
        s_name.customer_id as by_name
    from {{ ref('stg_hubspot__companies') }} as h
    left join stripe as s_ext on upper(s_ext.customer_id) = upper(h.stripe_customer_id)
    left join stripe_by_hubspot_id as s_meta on s_meta.hubspot_company_key = upper(h.company_id)
    left join stripe_by_domain as s_dom on s_dom.domain = {{ normalise_domain('h.domain') }}
    left join stripe_by_name as s_name on s_name.legal_name = {{ normalise_name('h.name') }}
),

hubspot_resolved as (
    select
        'hubspot' as source_system,
        company_id as native_id,
        coalesce(by_external_id, by_metadata, by_domain, by_name, 'hubspot:' || company_id) as customer_key,
        case
            when by_external_id is not null then 'hubspot_stripe_customer_id'
            when by_metadata is not null then 'stripe_metadata_hubspot_company_id'
            when by_domain is not null then 'email_domain'
            when by_name is not null then 'legal_name'
            else 'unlinked'
        end as link_method,
        domain,
        legal_name
    from hubspot
),

-- every resolved company with its domains and names, for the systems that link by domain or name
anchors as (
    select
        customer_id as customer_key,
        domain,
        legal_name
    from stripe
    union all
    select
        customer_key,
        domain,
        legal_name
    from hubspot_resolved
),

anchor_by_domain as (
    select
        domain,
        min(customer_key) as customer_key
    from anchors
    where domain is not null
    group by domain
    having count(distinct customer_key) = 1
),

anchor_by_name as (
    select
        legal_name,
        min(customer_key) as customer_key
    from anchors
    where legal_name is not null
    group by legal_name
    having count(distinct customer_key) = 1
),

zendesk_domains as (
    select
        o.organization_id,
        {{ normalise_domain('d.domain') }} as domain
    from {{ ref('stg_zendesk__organizations') }} as o,
        {{ json_array_texts('o.domain_names') }} as d (domain)
),

zendesk_by_domain as (
    select
        z.organization_id,
        min(a.customer_key) as customer_key
    from zendesk_domains as z inner join anchor_by_domain as a on z.domain = a.domain
    group by z.organization_id
    having count(distinct a.customer_key) = 1
),

zendesk as (
    select
        'zendesk' as source_system,
        o.organization_id as native_id,
        coalesce(s.customer_id, zd.customer_key, an.customer_key, 'zendesk:' || o.organization_id)
            as customer_key,
        case
            when s.customer_id is not null then 'zendesk_external_id'
            when zd.customer_key is not null then 'domain'
            when an.customer_key is not null then 'legal_name'
            else 'unlinked'
        end as link_method,
        (
            select min(z.domain) from zendesk_domains as z
            where z.organization_id = o.organization_id)
            as domain,
        {{ normalise_name('o.name') }} as legal_name
    from {{ ref('stg_zendesk__organizations') }} as o
    left join stripe as s on upper(s.customer_id) = upper(o.external_id)
    left join zendesk_by_domain as zd on o.organization_id = zd.organization_id
    left join anchor_by_name as an on an.legal_name = {{ normalise_name('o.name') }}
),

netsuite as (
    select
        'netsuite' as source_system,
        n.customer_id as native_id,
        coalesce(s.customer_id, ad.customer_key, an.customer_key, 'netsuite:' || n.customer_id)
            as customer_key,
        case
            when s.customer_id is not null then 'netsuite_external_id'
            when ad.customer_key is not null then 'email_domain'
            when an.customer_key is not null then 'legal_name'
            else 'unlinked'
        end as link_method,
        {{ email_domain('n.email') }} as domain,
        {{ normalise_name('n.company_name') }} as legal_name
    from {{ ref('stg_netsuite__customers') }} as n
    left join stripe as s on upper(s.customer_id) = upper(n.external_id)
    left join anchor_by_domain as ad on ad.domain = {{ email_domain('n.email') }}
    left join anchor_by_name as an on an.legal_name = {{ normalise_name('n.company_name') }}
)

select
    'stripe' as source_system,
    customer_id as native_id,
    customer_id as customer_key,
    'stripe_customer' as link_method,
    domain,
    legal_name
from stripe
union all
select * from hubspot_resolved
union all
select * from zendesk
union all
select * from netsuite
