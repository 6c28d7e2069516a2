{{ config(materialized="table", schema="sync") }}

{#
    What needs a human: one row per open mismatch that the sync must not fix on its own, with the
    business context to act on it. Two kinds:
      - decisions (blocked_by null): invoice_amount_mismatch and invoice_currency_mismatch (which side
        is right is a finance call), duplicate_erp_customer (which ERP customer survives a merge),
        crm_arr_mismatch (a CRM figure sales owns) and closed_won_without_subscription (nobody can
        invent a subscription);
      - held fixes (blocked_by set): any other mismatch that erp_changes / entitlement_changes leave
        alone, because a decision above blocks it (a customer with duplicated ERP customers: the
        target is ambiguous; a payment or credit memo over an invoice whose ERP amount or currency
        differs) or because no safe automatic write exists (blocked_by `no_auto_fix`, e.g. an
        invoice paid in the ERP but open in Stripe).
    So every open mismatch is either in a change set or here, never both.
#}

with

mismatches as (
    select * from {{ ref('mismatches') }}
),

decision_types as (
    select t.mismatch_type
    from (
        values
        ('invoice_amount_mismatch'),
        ('invoice_currency_mismatch'),
        ('duplicate_erp_customer'),
        ('crm_arr_mismatch'),
        ('closed_won_without_subscription')
    ) as t (mismatch_type)
),

-- mismatches a change set fixes (the change's reason and source record are the mismatch's)
fixed as (
    select distinct
        reason as mismatch_type,
        source_system as anchor_system,
        source_id as anchor_id
    from {{ ref('erp_changes') }}
    union
    select distinct
        reason as mismatch_type,
        'zendesk' as anchor_system,
        organization_id as anchor_id
    from {{ ref('entitlement_changes') }}
),

held_customers as (
    select distinct customer_key
    from mismatches
    where mismatch_type = 'duplicate_erp_customer'
),

held_invoices as (
    select
        upper(anchor_id) as invoice_key,
        min(mismatch_type) as mismatch_type
    from mismatches
    where mismatch_type in ('invoice_amount_mismatch', 'invoice_currency_mismatch')
    group by upper(anchor_id)
),

credit_note_invoices as (
    select
        credit_note_id,
        invoice_id
    from {{ ref('stg_stripe__credit_notes') }}
),

open_exceptions as (
    select
        m.*,
        case
            when d.mismatch_type is not null then null
            when hc.customer_key is not null then 'duplicate_erp_customer'
            when hi.invoice_key is not null then hi.mismatch_type
            else 'no_auto_fix'
        end as blocked_by
    from mismatches as m
    left join decision_types as d on m.mismatch_type = d.mismatch_type
    left join fixed as f
        on
            m.mismatch_type = f.mismatch_type
            and m.anchor_system = f.anchor_system
            and m.anchor_id = f.anchor_id
    left join held_customers as hc on m.customer_key = hc.customer_key
    left join credit_note_invoices as cn on m.anchor_id = cn.credit_note_id
    left join held_invoices as hi on upper(coalesce(cn.invoice_id, m.anchor_id)) = hi.invoice_key
    where d.mismatch_type is not null or f.anchor_id is null
),

-- when each anchor record's discrepancy began, as far as its system tells
anchor_times as (
    select
        'stripe' as anchor_system,
        invoice_id as anchor_id,
        finalized_at as since_at
    from {{ ref('stg_stripe__invoices') }}
    union all
    select
        'stripe' as anchor_system,
        credit_note_id as anchor_id,
        created_at as since_at
    from {{ ref('stg_stripe__credit_notes') }}
    union all
    select
        'stripe' as anchor_system,
        subscription_id as anchor_id,
        created_at as since_at
    from {{ ref('stg_stripe__subscriptions') }}
    union all
    select
        'stripe' as anchor_system,
        customer_id as anchor_id,
        created_at as since_at
    from {{ ref('stg_stripe__customers') }}
    union all
    select
        'netsuite' as anchor_system,
        customer_id as anchor_id,
        created_at as since_at
    from {{ ref('stg_netsuite__customers') }}
    union all
    select
        'netsuite' as anchor_system,
        sales_order_id as anchor_id,
        updated_at as since_at
    from {{ ref('stg_netsuite__sales_orders') }}
    union all
    select
        'hubspot' as anchor_system,
        deal_id as anchor_id,
        closedate_at as since_at
    from {{ ref('stg_hubspot__deals') }}
    union all
    select
        'hubspot' as anchor_system,
        company_id as anchor_id,
        updated_at as since_at
    from {{ ref('stg_hubspot__companies') }}
    union all
    select
        'zendesk' as anchor_system,
        organization_id as anchor_id,
        updated_at as since_at
    from {{ ref('stg_zendesk__organizations') }}
),

-- the customer as people know it, and its native ids in each system (canonical.customers)
customers as (
    select
        customer_key,
        customer_name,
        domain as customer_domain,
        stripe_customer_id,
        hubspot_company_id,
        zendesk_organization_id,
        array_to_string(netsuite_customer_ids, ',') as netsuite_customer_ids
    from {{ ref('customers') }}
),

-- both sides of the money for each exception (billing side, and the ERP's or CRM's)
sides as (
    select
        e.mismatch_type,
        e.anchor_system,
        e.anchor_id,
        si.number as stripe_invoice_number,
        ni.tran_id as netsuite_tran_id,
        case
            when
                e.mismatch_type = 'crm_arr_mismatch'
                then cast({{ json_text('billing_arr', 'e.details') }} as decimal(18, 3))
            when e.mismatch_type = 'closed_won_without_subscription' then null
            when si.invoice_id is not null then si.total
            else e.amount_at_risk
        end as billing_amount,
        case
            when e.mismatch_type = 'closed_won_without_subscription' then null
            when si.invoice_id is not null then si.currency
            else e.currency
        end as billing_currency,
        case
            when ni.invoice_id is not null then 'netsuite'
            when e.mismatch_type in ('crm_arr_mismatch', 'closed_won_without_subscription') then 'hubspot'
        end as other_system,
        case
            when ni.invoice_id is not null then ni.total
            when
                e.mismatch_type = 'crm_arr_mismatch'
                then cast({{ json_text('crm_arr', 'e.details') }} as decimal(18, 3))
            when e.mismatch_type = 'closed_won_without_subscription' then d.amount
        end as other_amount,
        case
            when ni.invoice_id is not null then ni.currency
            when e.mismatch_type = 'crm_arr_mismatch' then coalesce(hc.arr_currency, e.currency)
            when e.mismatch_type = 'closed_won_without_subscription' then d.deal_currency_code
        end as other_currency,
        coalesce(ni.invoice_id, case when e.anchor_system = 'netsuite' then e.anchor_id end)
            as netsuite_record_id,
        case when e.anchor_system = 'stripe' then e.anchor_id end as stripe_record_id,
        case when e.anchor_system = 'hubspot' then e.anchor_id end as hubspot_record_id
    from open_exceptions as e
    left join {{ ref('stg_stripe__invoices') }} as si
        on e.anchor_system = 'stripe' and e.anchor_id = si.invoice_id
    left join {{ ref('stg_netsuite__invoices') }} as ni
        on {{ json_text('erp_invoice_id', 'e.details') }} = ni.invoice_id
    left join {{ ref('stg_hubspot__deals') }} as d
        on e.mismatch_type = 'closed_won_without_subscription' and e.anchor_id = d.deal_id
    left join {{ ref('stg_hubspot__companies') }} as hc
        on e.mismatch_type = 'crm_arr_mismatch' and e.anchor_id = hc.company_id
),

described as (
    select
        e.*,
        s.billing_amount,
        s.billing_currency,
        s.other_system,
        s.other_amount,
        s.other_currency,
        s.stripe_record_id,
        s.netsuite_record_id,
        s.hubspot_record_id,
        s.stripe_invoice_number,
        s.netsuite_tran_id,
        c.customer_name,
        c.customer_domain,
        c.stripe_customer_id,
        c.hubspot_company_id,
        c.netsuite_customer_ids,
        c.zendesk_organization_id,
        t.since_at,
        {{ sha256_hex("e.mismatch_type || '|' || e.anchor_system || '|' || e.anchor_id") }} as exception_id,
        {{ boundaries_between('day', 't.since_at', 'e.detected_at') }} as age_days
    from open_exceptions as e
    left join sides as s
        on
            e.mismatch_type = s.mismatch_type
            and e.anchor_system = s.anchor_system
            and e.anchor_id = s.anchor_id
    left join customers as c on e.customer_key = c.customer_key
    left join anchor_times as t on e.anchor_system = t.anchor_system and e.anchor_id = t.anchor_id
)

select
    exception_id,
    mismatch_type as exception_type,
    anchor_system,
    anchor_id,
    customer_key,
    customer_name,
    customer_domain,
    severity,
    blocked_by,
    -- decimal(18, 3) as every amount (what DuckDB infers; PostgreSQL loses the scale through the case)
    cast(billing_amount as decimal(18, 3)) as billing_amount,
    billing_currency,
    other_system,
    cast(other_amount as decimal(18, 3)) as other_amount,
    other_currency,
    amount_at_risk,
    currency as amount_at_risk_currency,
    stripe_customer_id,
    hubspot_company_id,
    netsuite_customer_ids,
    zendesk_organization_id,
    stripe_record_id,
    netsuite_record_id,
    hubspot_record_id,
    since_at,
    detected_at,
    age_days,
    details,
    case
        when blocked_by = 'duplicate_erp_customer'
            then
                'Held: merge the duplicated NetSuite customers (' || coalesce(netsuite_customer_ids, '?')
                || ') first; the sync then fixes this ' || mismatch_type || ' on its next run.'
        when blocked_by in ('invoice_amount_mismatch', 'invoice_currency_mismatch')
            then
                'Held: resolve the ' || blocked_by || ' on the invoice first; the sync then fixes this '
                || mismatch_type || ' on its next run.'
        when blocked_by is not null
            then
                'No automatic fix: review ' || anchor_system || ' ' || anchor_id
                || ' against the other systems and correct the wrong side by hand.'
        when mismatch_type = 'invoice_amount_mismatch'
            then
                'Compare Stripe invoice ' || coalesce(stripe_invoice_number, anchor_id) || ' ('
                || billing_amount || ' ' || upper(billing_currency) || ') with NetSuite invoice '
                || coalesce(netsuite_tran_id, netsuite_record_id) || ' (' || other_amount || ' '
                || upper(other_currency) || '); correct the wrong side (an ERP adjustment or credit memo,'
                || ' or a billing correction).'
        when mismatch_type = 'invoice_currency_mismatch'
            then
                'NetSuite invoice ' || coalesce(netsuite_tran_id, netsuite_record_id) || ' is booked in '
                || upper(other_currency) || ' but Stripe billed ' || upper(billing_currency)
                || ': reverse it and re-book it in ' || upper(billing_currency) || '.'
        when mismatch_type = 'duplicate_erp_customer'
            then
                'Merge NetSuite customers '
                || netsuite_customer_ids
                || ' of '
                || coalesce(customer_name, customer_key)
                || ' into one, keeping externalId ' || coalesce(stripe_customer_id, customer_key)
                || '; sync for this customer is held until then.'
        when mismatch_type = 'crm_arr_mismatch'
            then
                'Set the HubSpot company ARR to the billing ARR (' || billing_amount || ' '
                || upper(coalesce(billing_currency, ''))
                || ', CRM shows '
                || coalesce(cast(other_amount as varchar), 'none')
                || ') or find the contract change billing is missing.'
        when mismatch_type = 'closed_won_without_subscription'
            then
                'Deal ' || anchor_id || ' (' || coalesce(cast(other_amount as varchar), '?') || ' '
                || upper(coalesce(other_currency, '')) || ') closed won ' || age_days
                || ' days ago with no subscription: start the subscription in Stripe,'
                || ' or correct the deal stage.'
    end as suggested_action
from described
