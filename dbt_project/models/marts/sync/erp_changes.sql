{{ config(materialized="table", schema="sync") }}

{#
    One row per intended NetSuite write: the desired state (billing is the source of truth) against
    the ERP's staging. Rules, holds and ordering: the model's description in _sync__models.yml.
    Each change set's payload is a Jinja variable (`customer_payload`, ...) used twice, as the column
    and inside its key: PostgreSQL cannot refer to a select-list alias in the same select.
#}

with

identity as (
    select * from {{ ref('int_customer_identity') }}
),

mismatches as (
    select * from {{ ref('mismatches') }}
),

-- customers whose ERP customers are duplicated: the target is ambiguous, a human merges them first
held_customers as (
    select distinct customer_key
    from mismatches
    where mismatch_type = 'duplicate_erp_customer'
),

-- invoices whose ERP twin differs in amount or currency: no payment or credit memo over them
held_invoices as (
    select distinct upper(anchor_id) as invoice_key
    from mismatches
    where mismatch_type in ('invoice_amount_mismatch', 'invoice_currency_mismatch')
),

erp_customers as (
    select
        n.customer_id,
        i.customer_key
    from {{ ref('stg_netsuite__customers') }} as n
    inner join identity as i on i.source_system = 'netsuite' and n.customer_id = i.native_id
),

-- each customer's ERP customer(s): canonical.customers (more than one: duplicates, held above)
erp_customer_of_key as (
    select
        customer_key,
        netsuite_customer_id as erp_customer_id,
        netsuite_customer_count as erp_customers
    from {{ ref('customers') }}
    where netsuite_customer_count > 0
),

-- the subsidiary the ERP books each currency's customers in (its existing customers' most common)
subsidiaries as (
    select
        currency,
        {{ most_frequent('subsidiary_id') }} as subsidiary_id
    from {{ ref('stg_netsuite__customers') }}
    group by currency
),

subscriptions as (
    select
        s.subscription_id,
        s.customer_id as stripe_customer_id,
        s.status,
        s.currency,
        s.quantity,
        s.unit_amount,
        s.recurring_interval,
        s.plan,
        coalesce(s.start_at, s.current_period_start_at, s.created_at) as start_at,
        s._changed_at,
        i.customer_key,
        {{ is_live_subscription('s.status') }} as is_live
    from {{ ref('stg_stripe__subscriptions') }} as s
    inner join identity as i on i.source_system = 'stripe' and s.customer_id = i.native_id
),

live_customers as (
    select
        customer_key,
        {{ any_value_of('currency', order_by='start_at') }} as currency
    from subscriptions
    where is_live
    group by customer_key
),

stripe_customers as (
    select
        c.customer_id,
        c.name,
        c.email,
        c._changed_at,
        i.customer_key,
        coalesce(c.currency, l.currency) as currency
    from {{ ref('stg_stripe__customers') }} as c
    inner join identity as i on i.source_system = 'stripe' and c.customer_id = i.native_id
    inner join live_customers as l on i.customer_key = l.customer_key
),

-- 1. customers: a live billing customer without any ERP customer
{%- set customer_payload = canonical_json(json_obj({
    'externalId': 'c.customer_id',
    'companyName': 'coalesce(c.name, c.email, c.customer_id)',
    'email': 'c.email',
    'subsidiary': json_obj({'id': 's.subsidiary_id'}),
    'currency': netsuite_currency_ref('c.currency'),
})) %}
customer_creates as (
    select
        c.customer_id as target_external_id,
        c.customer_id as source_id,
        c.customer_key,
        c.currency,
        c._changed_at as source_changed_at,
        'customer' as record_type,
        'create' as operation,
        'customer_missing_in_erp' as fixes_mismatch_type,
        1 as sequence,
        'customer_missing_in_erp' as cascade_reason,
        {{ customer_payload }} as payload,
        {{ change_key("'netsuite'", "'customer'", "'create'", 'c.customer_id', customer_payload) }}
            as idempotency_key,
        {{ correlation_id('stripe', 'customer', 'c.customer_id', 'c._changed_at') }} as correlation_id
    from stripe_customers as c
    left join erp_customer_of_key as e on c.customer_key = e.customer_key
    left join subsidiaries as s on c.currency = s.currency
    where e.customer_key is null
),

-- where each customer's records go: its one ERP customer, or the customer created above
customer_targets as (
    select
        customer_key,
        erp_customer_id,
        cast(null as varchar) as customer_external_id,
        cast(null as varchar) as customer_change_key
    from erp_customer_of_key
    where erp_customers = 1
    union all
    select
        customer_key,
        null as erp_customer_id,
        target_external_id as customer_external_id,
        idempotency_key as customer_change_key
    from customer_creates
),

erp_sales_orders as (
    select
        upper(external_id) as external_key,
        min(sales_order_id) as sales_order_id
    from {{ ref('stg_netsuite__sales_orders') }}
    where external_id is not null
    group by upper(external_id)
),

-- 2. sales orders: a live subscription without one
{%- set sales_order_payload = canonical_json(json_obj({
    'externalId': 's.subscription_id',
    'entity': netsuite_ref('t.erp_customer_id', 't.customer_external_id'),
    'currency': netsuite_currency_ref('s.currency'),
    'total': json_double('round(s.unit_amount * s.quantity, 2)'),
    'item': "upper(left(s.plan, 1)) || substr(s.plan, 2) || ' (' || s.recurring_interval || 'ly)'",
    'startDate': netsuite_date('s.start_at'),
})) %}
sales_order_creates as (
    select
        s.subscription_id as target_external_id,
        s.subscription_id as source_id,
        s.customer_key,
        s.currency,
        s._changed_at as source_changed_at,
        t.customer_change_key as depends_on_idempotency_key,
        'salesOrder' as record_type,
        'create' as operation,
        'subscription_missing_in_erp' as fixes_mismatch_type,
        2 as sequence,
        s.unit_amount * s.quantity as amount,
        case when t.customer_change_key is not null then 'customer_missing_in_erp' end as cascade_reason,
        {{ sales_order_payload }} as payload,
        {{ change_key("'netsuite'", "'salesOrder'", "'create'", 's.subscription_id', sales_order_payload) }}
            as idempotency_key,
        {{ correlation_id('stripe', 'subscription', 's.subscription_id', 's._changed_at') }} as correlation_id
    from subscriptions as s
    inner join customer_targets as t on s.customer_key = t.customer_key
    left join erp_sales_orders as o on upper(s.subscription_id) = o.external_key
    where s.is_live and o.external_key is null
),

-- 2'. sales orders to close: open in the ERP while the subscription is canceled or absent
{%- set sales_order_close_payload = canonical_json(json_obj({
    'status': json_obj({'id': "'closed'"}),
    'endDate': netsuite_date('coalesce(s.ended_at, s.canceled_at)'),
})) %}
sales_order_closes as (
    select
        o.external_id as target_external_id,
        o.sales_order_id as target_internal_id,
        o.sales_order_id as source_id,
        o.total as amount,
        o.currency,
        'netsuite' as source_system,
        'salesOrder' as record_type,
        'close' as operation,
        'erp_contract_without_active_subscription' as fixes_mismatch_type,
        2 as sequence,
        coalesce(e.customer_key, 'netsuite:' || o.customer_id) as customer_key,
        coalesce(s._changed_at, o._changed_at) as source_changed_at,
        {{ sales_order_close_payload }} as payload,
        {{ change_key(
            "'netsuite'", "'salesOrder'", "'close'", 'o.sales_order_id', sales_order_close_payload
        ) }} as idempotency_key,
        case
            when s.subscription_id is not null
                then {{ correlation_id('stripe', 'subscription', 's.subscription_id', 's._changed_at') }}
            else {{ correlation_id('netsuite', 'salesOrder', 'o.sales_order_id', 'o._changed_at') }}
        end as correlation_id
    from {{ ref('stg_netsuite__sales_orders') }} as o
    left join {{ ref('stg_stripe__subscriptions') }} as s on upper(o.external_id) = upper(s.subscription_id)
    left join erp_customers as e on o.customer_id = e.customer_id
    where o.status != 'closed' and (s.subscription_id is null or s.status = 'canceled')
),

erp_invoices as (
    select
        upper(external_id) as external_key,
        min(invoice_id) as invoice_id,
        min(customer_id) as customer_id,
        min(status) as status
    from {{ ref('stg_netsuite__invoices') }}
    where external_id is not null
    group by upper(external_id)
),

stripe_invoices as (
    select
        i.invoice_id,
        i.subscription_id,
        i.status,
        i.currency,
        i.total,
        i.amount_paid,
        i.amount_paid_minor,
        i.finalized_at,
        i.due_at,
        i.paid_at,
        i._changed_at,
        c.customer_key,
        i.customer_id as stripe_customer_id
    from {{ ref('stg_stripe__invoices') }} as i
    inner join identity as c on c.source_system = 'stripe' and i.customer_id = c.native_id
    where i.status in ('open', 'paid')
),

-- the keys of the changes above (narrow: a joined `payload` column would shadow a CTE's own
-- `payload` alias that its change_key() reads)
sales_order_keys as (
    select
        source_id,
        target_external_id,
        idempotency_key
    from sales_order_creates
),

-- 3. invoices: finalized in billing, absent from the ERP (at once: the SLA only dates the mismatch)
{%- set invoice_payload = canonical_json(json_obj({
    'externalId': 'i.invoice_id',
    'entity': netsuite_ref('t.erp_customer_id', 't.customer_external_id'),
    'createdFrom': netsuite_ref('o.sales_order_id', 'so.target_external_id'),
    'currency': netsuite_currency_ref('i.currency'),
    'total': json_double('round(i.total, 2)'),
    'tranDate': netsuite_date('i.finalized_at'),
    'dueDate': netsuite_date('i.due_at'),
})) %}
invoice_creates as (
    select
        i.invoice_id as target_external_id,
        i.invoice_id as source_id,
        i.customer_key,
        i.currency,
        i.total as amount,
        i._changed_at as source_changed_at,
        'invoice' as record_type,
        'create' as operation,
        'invoice_missing_in_erp' as fixes_mismatch_type,
        3 as sequence,
        coalesce(so.idempotency_key, t.customer_change_key) as depends_on_idempotency_key,
        case when t.customer_change_key is not null then 'customer_missing_in_erp' end as cascade_reason,
        {{ invoice_payload }} as payload,
        {{ change_key("'netsuite'", "'invoice'", "'create'", 'i.invoice_id', invoice_payload) }}
            as idempotency_key,
        {{ correlation_id('stripe', 'invoice', 'i.invoice_id', 'i._changed_at') }} as correlation_id
    from stripe_invoices as i
    inner join customer_targets as t on i.customer_key = t.customer_key
    left join erp_invoices as n on upper(i.invoice_id) = n.external_key
    left join erp_sales_orders as o on upper(i.subscription_id) = o.external_key
    left join sales_order_keys as so on i.subscription_id = so.source_id
    where n.external_key is null
),

-- the succeeded charges that may have paid each paid invoice, the closest in time first
invoice_charge_candidates as (
    select
        i.invoice_id,
        ch.charge_id,
        row_number() over (
            partition by i.invoice_id
            order by
                abs(
                    {{ timestamp_to_epoch_seconds('ch.created_at') }}
                    - {{ timestamp_to_epoch_seconds('i.paid_at') }}
                ),
                ch.charge_id
        ) as candidate_rank
    from stripe_invoices as i
    inner join {{ ref('stg_stripe__charges') }} as ch
        on
            i.stripe_customer_id = ch.customer_id
            and i.currency = ch.currency
            and i.amount_paid_minor = ch.amount_minor
            and ch.status = 'succeeded'
            and ch.created_at
            between i.paid_at - {{ interval_of(1, 'day') }} and i.paid_at + {{ interval_of(1, 'day') }}
    where i.status = 'paid'
),

-- the succeeded charge that paid each paid invoice (its id is the ERP payment's external id)
invoice_charges as (
    select
        invoice_id,
        charge_id
    from invoice_charge_candidates
    where candidate_rank = 1
),

-- invoices a payment may apply to: open ERP invoices (not held) and the invoices created above
payable_invoices as (
    select
        i.invoice_id,
        n.invoice_id as erp_invoice_id,
        n.customer_id as erp_customer_id,
        cast(null as varchar) as customer_external_id,
        cast(null as varchar) as invoice_change_key
    from stripe_invoices as i
    inner join customer_targets as t on i.customer_key = t.customer_key
    inner join erp_invoices as n on upper(i.invoice_id) = n.external_key
    left join held_invoices as h on n.external_key = h.invoice_key
    where i.status = 'paid' and n.status = 'open' and h.invoice_key is null
    union all
    select
        c.source_id as invoice_id,
        null as erp_invoice_id,
        t.erp_customer_id,
        t.customer_external_id,
        c.idempotency_key as invoice_change_key
    from invoice_creates as c
    inner join customer_targets as t on c.customer_key = t.customer_key
),

-- 4. customer payments: paid in billing, open (or just created) in the ERP
{%- set payment_payload = canonical_json(json_obj({
    'externalId': 'coalesce(c.charge_id, i.invoice_id)',
    'customer': netsuite_ref('p.erp_customer_id', 'p.customer_external_id'),
    'currency': netsuite_currency_ref('i.currency'),
    'payment': json_double('round(i.amount_paid, 2)'),
    'tranDate': netsuite_date('i.paid_at'),
    'apply': json_obj({'items': json_arr([json_obj({
        'doc': netsuite_ref('p.erp_invoice_id', 'i.invoice_id'),
        'apply': 'true',
        'amount': json_double('round(i.amount_paid, 2)'),
    })])}),
})) %}
payment_creates as (
    select
        i.invoice_id as source_id,
        i.customer_key,
        i.currency,
        i.amount_paid as amount,
        i._changed_at as source_changed_at,
        p.invoice_change_key as depends_on_idempotency_key,
        'customerPayment' as record_type,
        'create' as operation,
        'payment_status_mismatch' as fixes_mismatch_type,
        4 as sequence,
        coalesce(c.charge_id, i.invoice_id) as target_external_id,
        {{ payment_payload }} as payload,
        {{ change_key(
            "'netsuite'", "'customerPayment'", "'create'", 'coalesce(c.charge_id, i.invoice_id)', payment_payload
        ) }} as idempotency_key,
        {{ correlation_id('stripe', 'invoice', 'i.invoice_id', 'i._changed_at') }} as correlation_id
    from payable_invoices as p
    inner join stripe_invoices as i on p.invoice_id = i.invoice_id
    left join invoice_charges as c on p.invoice_id = c.invoice_id
    where i.status = 'paid'
),

erp_credit_memo_keys as (
    select distinct upper(external_id) as external_key
    from {{ ref('stg_netsuite__credit_memos') }}
    where external_id is not null
),

invoice_keys as (
    select
        source_id,
        idempotency_key
    from invoice_creates
),

-- 4'. credit memos: an issued credit note without one (never over a held invoice)
{%- set credit_memo_payload = canonical_json(json_obj({
    'externalId': 'n.credit_note_id',
    'entity': netsuite_ref('t.erp_customer_id', 't.customer_external_id'),
    'createdFrom': netsuite_ref('ei.invoice_id', 'ic.source_id'),
    'currency': netsuite_currency_ref('n.currency'),
    'total': json_double('round(n.amount, 2)'),
    'tranDate': netsuite_date('coalesce(n.effective_at, n.created_at)'),
})) %}
credit_memo_creates as (
    select
        n.credit_note_id as target_external_id,
        n.credit_note_id as source_id,
        i.customer_key,
        n.currency,
        n.amount,
        n._changed_at as source_changed_at,
        'creditMemo' as record_type,
        'create' as operation,
        'credit_note_missing_in_erp' as fixes_mismatch_type,
        4 as sequence,
        coalesce(ic.idempotency_key, t.customer_change_key) as depends_on_idempotency_key,
        {{ credit_memo_payload }} as payload,
        {{ change_key("'netsuite'", "'creditMemo'", "'create'", 'n.credit_note_id', credit_memo_payload) }}
            as idempotency_key,
        {{ correlation_id('stripe', 'credit_note', 'n.credit_note_id', 'n._changed_at') }} as correlation_id
    from {{ ref('stg_stripe__credit_notes') }} as n
    inner join identity as i on i.source_system = 'stripe' and n.customer_id = i.native_id
    inner join customer_targets as t on i.customer_key = t.customer_key
    left join erp_credit_memo_keys as k on upper(n.credit_note_id) = k.external_key
    left join erp_invoices as ei on upper(n.invoice_id) = ei.external_key
    left join invoice_keys as ic on n.invoice_id = ic.source_id
    left join held_invoices as h on upper(n.invoice_id) = h.invoice_key
    where n.status = 'issued' and k.external_key is null and h.invoice_key is null
),

-- every change of the change sets above, by column name (a change set's missing columns are null)
{%- set change_columns = [
    'idempotency_key', 'record_type', 'operation', 'target_external_id', 'target_internal_id', 'customer_key',
    'sequence', 'depends_on_idempotency_key', 'correlation_id', 'currency', 'source_changed_at', 'source_id',
    'payload', 'amount', 'source_system', 'fixes_mismatch_type', 'cascade_reason',
] %}
{%- set columns_not_in = {
    'customer_creates': ['target_internal_id', 'depends_on_idempotency_key', 'amount', 'source_system'],
    'sales_order_creates': ['target_internal_id', 'source_system'],
    'sales_order_closes': ['depends_on_idempotency_key', 'cascade_reason'],
    'invoice_creates': ['target_internal_id', 'source_system'],
    'payment_creates': ['target_internal_id', 'source_system', 'cascade_reason'],
    'credit_memo_creates': ['target_internal_id', 'source_system', 'cascade_reason'],
} %}
changes as (
    {{ union_all_by_name(columns_not_in, change_columns) }}
),

-- the mismatch a change fixes: the one of its kind anchored on its source record
fixes as (
    select
        c.idempotency_key,
        min(m.mismatch_type) as mismatch_type
    from changes as c
    inner join mismatches as m
        on
            coalesce(c.source_system, 'stripe') = m.anchor_system
            and c.source_id = m.anchor_id
            and c.fixes_mismatch_type = m.mismatch_type
    group by c.idempotency_key
),

-- else the mismatch its change set fixes (a missing customer's records), else not_yet_synced;
-- a payment or credit memo created with its invoice (or customer) then inherits that change's reason
reasoned as (
    select
        c.*,
        coalesce(f.mismatch_type, c.cascade_reason, 'not_yet_synced') as own_reason
    from changes as c
    left join fixes as f on c.idempotency_key = f.idempotency_key
)

-- sqlfluff:rules:references.keywords:ignore_words:name,domain,type,role,target,operation,sequence
select
    r.idempotency_key,
    'netsuite' as target,
    r.record_type,
    r.operation,
    r.target_external_id,
    r.target_internal_id,
    r.customer_key,
    r.sequence,
    r.depends_on_idempotency_key,
    r.correlation_id,
    r.currency,
    r.source_changed_at,
    r.source_id,
    cast(r.payload as json) as payload,
    cast(r.amount as decimal(18, 3)) as amount,
    case when r.operation = 'close' then 'PATCH' else 'PUT' end as http_method,
    case
        when r.operation = 'close' then '/record/v1/' || r.record_type || '/' || r.target_internal_id
        else '/record/v1/' || r.record_type || '/eid:' || r.target_external_id
    end as http_path,
    coalesce(r.source_system, 'stripe') as source_system,
    {{ sha256_hex('r.payload') }} as payload_hash,
    case
        when r.own_reason = 'not_yet_synced' and p.own_reason is not null then p.own_reason
        else r.own_reason
    end as reason
from reasoned as r
left join reasoned as p
    on r.depends_on_idempotency_key = p.idempotency_key and r.record_type in ('customerPayment', 'creditMemo')
left join held_customers as h on r.customer_key = h.customer_key
where h.customer_key is null
