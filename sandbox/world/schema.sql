-- The sandbox world: one DuckDB file holding each vendor's records in that vendor's own terms.
--
-- Conventions every table follows (the servers and the change stream rely on them):
--   seq        dense 1..n position in the table's natural list order (creation order). Never reused,
--              never deleted, so a page is a seq window instead of a sort. Every id encodes its seq
--              (see sandbox/world/ids.py), so a cursor decodes without a lookup.
--   *_at       timestamps as unix epoch seconds (UTC). `advance` ages the world by subtracting from
--              every *_at column, so no other column may end in _at.
--   amounts    Stripe: integer minor units (`*_minor`); NetSuite and HubSpot: decimals in major units.
--   JSON       free-form vendor fields (metadata, custom fields) are JSON text.

create table meta (key varchar primary key, value varchar not null);

-- Stripe Billing ---------------------------------------------------------------------------------
create table stripe_products (
    seq bigint not null, id varchar primary key, name varchar not null, tier varchar not null,
    created_at bigint not null, updated_at bigint not null
);
create table stripe_prices (
    seq bigint not null, id varchar primary key, product varchar not null, currency varchar not null,
    unit_amount_minor bigint not null, recurring_interval varchar not null, -- month | year
    nickname varchar not null, created_at bigint not null, updated_at bigint not null
);
create table stripe_customers (
    seq bigint not null, id varchar primary key, name varchar not null, email varchar not null,
    currency varchar not null, balance_minor bigint not null, delinquent boolean not null,
    metadata json not null, created_at bigint not null, updated_at bigint not null
);
create table stripe_subscriptions (
    seq bigint not null, id varchar primary key, customer varchar not null, price varchar not null,
    item_id varchar not null, quantity integer not null, currency varchar not null,
    status varchar not null, -- trialing | active | past_due | canceled | unpaid ...
    cancel_at_period_end boolean not null, current_period_start_at bigint not null,
    current_period_end_at bigint not null, trial_start_at bigint, trial_end_at bigint,
    canceled_at bigint, ended_at bigint, start_at bigint not null, metadata json not null,
    created_at bigint not null, updated_at bigint not null
);
create table stripe_invoices (
    seq bigint not null, id varchar primary key, number varchar not null, customer varchar not null,
    subscription varchar, currency varchar not null,
    status varchar not null, -- draft | open | paid | uncollectible | void
    billing_reason varchar not null, -- subscription_create | subscription_cycle | subscription_update
    total_minor bigint not null, amount_due_minor bigint not null, amount_paid_minor bigint not null,
    amount_remaining_minor bigint not null, period_start_at bigint not null, period_end_at bigint not null,
    due_at bigint, finalized_at bigint, paid_at bigint, voided_at bigint,
    created_at bigint not null, updated_at bigint not null
);
create table stripe_charges (
    seq bigint not null, id varchar primary key, customer varchar not null, invoice varchar,
    amount_minor bigint not null, amount_captured_minor bigint not null,
    amount_refunded_minor bigint not null, currency varchar not null,
    status varchar not null, -- succeeded | failed
    failure_code varchar, created_at bigint not null, updated_at bigint not null
);
create table stripe_credit_notes (
    seq bigint not null, id varchar primary key, number varchar not null, customer varchar not null,
    invoice varchar not null, currency varchar not null, amount_minor bigint not null,
    status varchar not null, -- issued | void
    type varchar not null, -- pre_payment | post_payment
    reason varchar not null, voided_at bigint, created_at bigint not null, updated_at bigint not null
);
create table stripe_usage_records (
    seq bigint not null, id varchar primary key, customer varchar not null,
    subscription varchar not null, meter varchar not null, quantity bigint not null,
    period_start_at bigint not null, period_end_at bigint not null,
    created_at bigint not null, updated_at bigint not null
);
create table stripe_events (
    seq bigint not null, id varchar primary key, type varchar not null,
    object_type varchar not null, object_id varchar not null,
    data_object json not null, previous_attributes json,
    created_at bigint not null, updated_at bigint not null
);

-- HubSpot CRM ------------------------------------------------------------------------------------
-- Every HubSpot property is served as a string; here they are typed.
create table hubspot_companies (
    seq bigint not null, id varchar primary key, name varchar not null, domain varchar not null,
    lifecyclestage varchar not null, arr decimal(18, 2), -- custom property `arr`, billing currency
    arr_currency varchar, stripe_customer_id varchar, -- custom property set by the billing integration
    archived boolean not null, created_at bigint not null, updated_at bigint not null
);
create table hubspot_contacts (
    seq bigint not null, id varchar primary key, email varchar not null, firstname varchar not null,
    lastname varchar not null, company_id varchar, archived boolean not null,
    created_at bigint not null, updated_at bigint not null
);
create table hubspot_deals (
    seq bigint not null, id varchar primary key, dealname varchar not null,
    dealstage varchar not null, -- appointmentscheduled | qualifiedtobuy | closedwon | closedlost
    pipeline varchar not null, amount decimal(18, 2) not null, deal_currency_code varchar not null,
    plan varchar not null, company_id varchar not null, closedate_at bigint, archived boolean not null,
    created_at bigint not null, updated_at bigint not null
);

-- Zendesk Support --------------------------------------------------------------------------------
create table zendesk_organizations (
    seq bigint not null, id bigint primary key, name varchar not null, external_id varchar,
    domain_names json not null, organization_fields json not null, -- {"support_tier": ..., "plan": ...}
    tags json not null, created_at bigint not null, updated_at bigint not null
);
create table zendesk_users (
    seq bigint not null, id bigint primary key, name varchar not null, email varchar not null,
    role varchar not null, organization_id bigint, created_at bigint not null, updated_at bigint not null
);
create table zendesk_tickets (
    seq bigint not null, id bigint primary key, subject varchar not null, status varchar not null,
    priority varchar not null, requester_id bigint not null, organization_id bigint,
    created_at bigint not null, updated_at bigint not null
);

-- NetSuite (REST record service) -----------------------------------------------------------------
-- Datetimes are served in the account's time zone (America/Los_Angeles offset), as NetSuite does.
create table netsuite_subsidiaries (
    seq bigint not null, id varchar primary key, name varchar not null, currency varchar not null,
    created_at bigint not null, updated_at bigint not null
);
create table netsuite_customers (
    seq bigint not null, id varchar primary key, external_id varchar, entity_id varchar not null,
    company_name varchar not null, email varchar not null, subsidiary_id varchar not null,
    currency varchar not null, is_inactive boolean not null,
    created_at bigint not null, updated_at bigint not null
);
create table netsuite_sales_orders (
    seq bigint not null, id varchar primary key, external_id varchar, tran_id varchar not null,
    customer_id varchar not null, currency varchar not null, total decimal(18, 2) not null,
    status varchar not null, -- pendingFulfillment | pendingBilling | billed | closed
    item varchar not null, start_at bigint not null, end_at bigint,
    created_at bigint not null, updated_at bigint not null
);
create table netsuite_invoices (
    seq bigint not null, id varchar primary key, external_id varchar, tran_id varchar not null,
    customer_id varchar not null, sales_order_id varchar, currency varchar not null,
    total decimal(18, 2) not null, amount_remaining decimal(18, 2) not null,
    status varchar not null, -- open | paidInFull
    tran_at bigint not null, due_at bigint, created_at bigint not null, updated_at bigint not null
);
create table netsuite_customer_payments (
    seq bigint not null, id varchar primary key, external_id varchar, tran_id varchar not null,
    customer_id varchar not null, invoice_id varchar, currency varchar not null,
    amount decimal(18, 2) not null, tran_at bigint not null,
    created_at bigint not null, updated_at bigint not null
);
create table netsuite_credit_memos (
    seq bigint not null, id varchar primary key, external_id varchar, tran_id varchar not null,
    customer_id varchar not null, invoice_id varchar, currency varchar not null,
    amount decimal(18, 2) not null, tran_at bigint not null,
    created_at bigint not null, updated_at bigint not null
);

-- Sandbox bookkeeping (served only under /__sandbox__/) ------------------------------------------
-- Every injected discrepancy, in the vocabulary of ARCHITECTURE.md. detectable_at: when the rule's
-- age threshold (sync SLA, grace period, onboarding SLA) is passed; a pipeline scoring as of time T
-- is expected to find exactly the rows with detectable_at <= T.
create table truth (
    seq bigint not null, mismatch_type varchar not null, anchor_system varchar not null,
    anchor_id varchar not null, customer_ref varchar not null, origin varchar not null, -- generate | advance
    event_kind varchar, event_at bigint not null, detectable_at bigint not null, details json
);
-- Benign differences the generator planted, so tests can prove they are present (and not flagged).
create table benign (
    seq bigint not null, kind varchar not null, system varchar not null, record_id varchar not null,
    customer_ref varchar not null, details json, created_at bigint not null
);
-- The canonical company behind the vendor records: the generator's answer key for identity.
create table company_refs (
    customer_ref varchar primary key, stripe_customer_id varchar, hubspot_company_id varchar,
    zendesk_organization_id bigint, netsuite_customer_id varchar, domain varchar not null
);
-- Every write a client made, in arrival order.
create table writes (
    seq bigint not null, vendor varchar not null, method varchar not null, path varchar not null,
    status integer not null, idempotency_key varchar, principal varchar, body json,
    response json, replayed boolean not null, received_at bigint not null
);
