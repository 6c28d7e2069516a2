{{ config(materialized="table") }}

{#
    One row per canonical customer (int_customer_identity's customer_key) with each system's native
    record side by side and how it was linked. When several records of one system resolve to a key,
    the strongest link is the system's primary record (external id or metadata, then domain, then
    legal name; ties by id); NetSuite keeps every one in netsuite_customer_ids (duplicates in the ERP).
    Recurring revenue: the sum over the customer's subscriptions, in the reporting currency.
#}

with

identity as (
    select
        customer_key,
        source_system,
        native_id,
        link_method,
        domain,
        case link_method
            when 'email_domain' then 2
            when 'domain' then 2
            when 'legal_name' then 3
            when 'unlinked' then 4
            else 1
        end as link_strength
    from {{ ref('int_customer_identity') }}
),

ranked_records as (
    select
        customer_key,
        source_system,
        native_id,
        link_method,
        domain,
        row_number() over (
            partition by customer_key, source_system order by link_strength, native_id
        ) as record_rank
    from identity
),

primary_records as (
    select
        customer_key,
        source_system,
        native_id,
        link_method,
        domain
    from ranked_records
    where record_rank = 1
),

erp_customers as (
    select
        native_id as customer_id,
        customer_key
    from identity
    where source_system = 'netsuite'
),

erp_customer_groups as (
    {{ erp_customer_groups('erp_customers') }}
),

recurring_revenue as (
    select
        customer_key,
        {{ count_where('is_live') }} as live_subscriptions,
        sum(mrr_reporting) as mrr_reporting,
        sum(arr_reporting) as arr_reporting
    from {{ ref('subscriptions') }}
    group by customer_key
),

pivoted as (
    select
        customer_key,
        max(case when source_system = 'stripe' then native_id end) as stripe_customer_id,
        max(case when source_system = 'hubspot' then native_id end) as hubspot_company_id,
        max(case when source_system = 'hubspot' then link_method end) as hubspot_link_method,
        max(case when source_system = 'zendesk' then native_id end) as zendesk_organization_id,
        max(case when source_system = 'zendesk' then link_method end) as zendesk_link_method,
        max(case when source_system = 'netsuite' then native_id end) as netsuite_customer_id,
        max(case when source_system = 'netsuite' then link_method end) as netsuite_link_method,
        coalesce(
            max(case when source_system = 'stripe' then domain end),
            max(case when source_system = 'hubspot' then domain end),
            max(case when source_system = 'netsuite' then domain end),
            max(case when source_system = 'zendesk' then domain end)
        ) as domain,
        {{ ordered_list('source_system', 'source_system') }} as source_systems
    from primary_records
    group by customer_key
),

enriched as (
    select
        p.customer_key,
        p.domain,
        p.source_systems,
        p.stripe_customer_id,
        p.hubspot_company_id,
        p.hubspot_link_method,
        p.zendesk_organization_id,
        p.zendesk_link_method,
        p.netsuite_customer_id,
        p.netsuite_link_method,
        s.currency as billing_currency,
        s.is_delinquent as is_stripe_delinquent,
        h.lifecyclestage as crm_lifecyclestage,
        z.support_tier,
        coalesce(s.name, h.name, n.company_name, z.name) as customer_name,
        case
            when p.stripe_customer_id is not null then 'stripe'
            when p.hubspot_company_id is not null then 'hubspot'
            else 'unlinked'
        end as key_origin,
        coalesce(g.erp_customer_ids, {{ empty_list() }}) as netsuite_customer_ids,
        coalesce(g.erp_customers, 0) as netsuite_customer_count,
        coalesce(g.erp_customers, 0) > 1 as is_duplicate_in_erp,
        coalesce(r.live_subscriptions, 0) as live_subscriptions,
        '{{ var("reporting_currency") }}' as reporting_currency,
        coalesce(r.mrr_reporting, 0) as mrr_reporting,
        coalesce(r.arr_reporting, 0) as arr_reporting,
        coalesce(s.created_at, h.created_at, n.created_at, z.created_at) as created_at
    from pivoted as p
    left join {{ ref('stg_stripe__customers') }} as s on p.stripe_customer_id = s.customer_id
    left join {{ ref('stg_hubspot__companies') }} as h on p.hubspot_company_id = h.company_id
    left join {{ ref('stg_zendesk__organizations') }} as z on p.zendesk_organization_id = z.organization_id
    left join {{ ref('stg_netsuite__customers') }} as n on p.netsuite_customer_id = n.customer_id
    left join erp_customer_groups as g on p.customer_key = g.customer_key
    left join recurring_revenue as r on p.customer_key = r.customer_key
)

select
    customer_key,
    customer_name,
    domain,
    source_systems,
    key_origin,
    stripe_customer_id,
    hubspot_company_id,
    hubspot_link_method,
    zendesk_organization_id,
    zendesk_link_method,
    netsuite_customer_id,
    netsuite_link_method,
    netsuite_customer_ids,
    netsuite_customer_count,
    is_duplicate_in_erp,
    billing_currency,
    is_stripe_delinquent,
    crm_lifecyclestage,
    support_tier,
    live_subscriptions,
    reporting_currency,
    mrr_reporting,
    arr_reporting,
    created_at
from enriched
