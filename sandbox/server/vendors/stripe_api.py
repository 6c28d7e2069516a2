"""Stripe Billing sandbox: the v1 REST API as the `stripe` Python SDK speaks it (basil object shapes).

Lists are newest first (descending seq), paged with `starting_after` / `ending_before` object ids that
decode to seqs; `created[...]` bounds map to seq bounds because seq order is creation order. Objects are
rendered in DuckDB SQL (one JSON text per row) and cached in blocks by `World.scan`; filters on ids
(`customer=`, `invoice=`, ...) go straight to SQL. Customers can be created and updated with
form-encoded bodies and `Idempotency-Key` semantics (replays come from the write log).
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from sandbox.server.app import Vendor, VendorError, json_response
from sandbox.server.world import Resource, Row, World
from sandbox.world.ids import STRIPE_PREFIX, stripe_id, stripe_seq

API_VERSION = "2025-03-31.basil"
EVENT_RETENTION_S = 30 * 86400
IDEMPOTENCY_TTL_S = 24 * 3600
MISSING_KEY = (
    "You did not provide an API key. You need to provide your API key in the Authorization header, "
    "using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). "
    "See https://stripe.com/docs/api#authentication for details, or we can help at https://support.stripe.com/."
)
_HELP = " Please see https://stripe.com/docs or we can help at https://support.stripe.com/."

# -- rendering (DuckDB SQL) ------------------------------------------------------------------------
_EMPTY_LIST = "'[]'::json"
_EMPTY_OBJ = "'{}'::json"


def _price_json(a: str) -> str:
    return f"""json_object('id', {a}.id, 'object', 'price', 'active', true, 'billing_scheme', 'per_unit',
        'created', {a}.created_at, 'currency', {a}.currency, 'custom_unit_amount', null, 'livemode', false,
        'lookup_key', null, 'metadata', {_EMPTY_OBJ}, 'nickname', {a}.nickname, 'product', {a}.product,
        'recurring', json_object('interval', {a}.recurring_interval, 'interval_count', 1, 'meter', null,
            'trial_period_days', null, 'usage_type', 'licensed'),
        'tax_behavior', 'unspecified', 'tiers_mode', null, 'transform_quantity', null, 'type', 'recurring',
        'unit_amount', {a}.unit_amount_minor, 'unit_amount_decimal', {a}.unit_amount_minor::varchar)"""


def _plan_json(a: str) -> str:
    return f"""json_object('id', {a}.id, 'object', 'plan', 'active', true, 'amount', {a}.unit_amount_minor,
        'amount_decimal', {a}.unit_amount_minor::varchar, 'billing_scheme', 'per_unit',
            'created', {a}.created_at,
        'currency', {a}.currency, 'interval', {a}.recurring_interval, 'interval_count', 1, 'livemode', false,
        'metadata', {_EMPTY_OBJ}, 'meter', null, 'nickname', {a}.nickname, 'product', {a}.product,
        'tiers_mode', null, 'transform_usage', null, 'trial_period_days', null, 'usage_type', 'licensed')"""


CUSTOMER_SQL = f"""select t.seq, json_object('id', t.id, 'object', 'customer', 'address', null,
    'balance', t.balance_minor, 'created', t.created_at, 'currency', nullif(t.currency, ''),
        'default_source', null,
    'delinquent', t.delinquent, 'description', null, 'discount', null, 'email', nullif(t.email, ''),
    'invoice_prefix', upper(substr(t.id, 5, 8)),
    'invoice_settings', json_object('custom_fields', null, 'default_payment_method', null, 'footer', null,
        'rendering_options', null),
    'livemode', false, 'metadata', t.metadata, 'name', nullif(t.name, ''), 'next_invoice_sequence', 1,
    'phone', null, 'preferred_locales', {_EMPTY_LIST}, 'shipping', null, 'tax_exempt', 'none',
        'test_clock', null
    )::varchar from stripe_customers t where t.seq between $lo and $hi"""

SUBSCRIPTION_SQL = f"""select t.seq, json_object('id', t.id, 'object', 'subscription', 'application', null,
    'application_fee_percent', null, 'automatic_tax', json_object('disabled_reason', null, 'enabled', false,
        'liability', null),
    'billing_cycle_anchor', t.start_at, 'billing_cycle_anchor_config', null, 'cancel_at',
    case when t.cancel_at_period_end then t.current_period_end_at end,
    'cancel_at_period_end', t.cancel_at_period_end, 'canceled_at', t.canceled_at,
    'cancellation_details', json_object('comment', null, 'feedback', null, 'reason',
        case when t.canceled_at is not null then 'cancellation_requested' end),
    'collection_method', 'charge_automatically', 'created', t.created_at, 'currency', t.currency,
    'customer', t.customer, 'days_until_due', null, 'default_payment_method', null, 'default_source', null,
    'description', null, 'discounts', {_EMPTY_LIST}, 'ended_at', t.ended_at,
    'items', json_object('object', 'list', 'data', json_array(json_object('id', t.item_id,
        'object', 'subscription_item', 'billing_thresholds', null, 'created', t.created_at,
        'current_period_end', t.current_period_end_at, 'current_period_start', t.current_period_start_at,
        'discounts', {_EMPTY_LIST}, 'metadata', {_EMPTY_OBJ}, 'plan', {_plan_json("p")},
        'price', {_price_json("p")}, 'quantity', t.quantity, 'subscription', t.id,
            'tax_rates', {_EMPTY_LIST})),
        'has_more', false, 'total_count', 1, 'url', '/v1/subscription_items?subscription=' || t.id),
    'latest_invoice', null, 'livemode', false, 'metadata', t.metadata,
        'next_pending_invoice_item_invoice', null,
    'on_behalf_of', null, 'pause_collection', null, 'pending_update', null, 'schedule', null,
    'start_date', t.start_at, 'status', t.status, 'test_clock', null, 'transfer_data', null,
    'trial_end', t.trial_end_at, 'trial_start', t.trial_start_at)::varchar, t.status
    from stripe_subscriptions t left join stripe_prices p on p.id = t.price where t.seq between $lo and $hi"""

INVOICE_SQL = f"""select t.seq, json_object('id', t.id, 'object', 'invoice', 'account_country', 'US',
    'account_name', null, 'amount_due', t.amount_due_minor, 'amount_overpaid', 0,
        'amount_paid', t.amount_paid_minor,
    'amount_remaining', t.amount_remaining_minor, 'amount_shipping', 0, 'application', null,
    'attempt_count', case when t.finalized_at is null then 0 else 1 end,
        'attempted', t.finalized_at is not null,
    'auto_advance', t.status in ('draft', 'open'),
    'automatic_tax', json_object('disabled_reason', null, 'enabled', false, 'liability', null,
        'status', null),
    'billing_reason', t.billing_reason, 'collection_method', 'charge_automatically', 'created', t.created_at,
    'currency', t.currency, 'custom_fields', null, 'customer', t.customer, 'customer_email', null,
    'customer_name', null, 'default_payment_method', null, 'description', null, 'discounts', {_EMPTY_LIST},
    'due_date', t.due_at, 'effective_at', t.finalized_at,
    'ending_balance', case when t.finalized_at is null then null else 0 end, 'footer', null,
    'hosted_invoice_url', null, 'invoice_pdf', null, 'issuer', json_object('type', 'self'),
    'last_finalization_error', null,
    'lines', json_object('object', 'list', 'data', json_array(json_object('id', 'il_' || substr(t.id, 4),
        'object', 'line_item', 'amount', t.total_minor, 'currency', t.currency, 'description', null,
        'discount_amounts', {_EMPTY_LIST}, 'discountable', true, 'discounts', {_EMPTY_LIST}, 'invoice', t.id,
        'livemode', false, 'metadata', {_EMPTY_OBJ},
        'parent', case when t.subscription is null then null else json_object('type',
            'subscription_item_details',
            'invoice_item_details', null, 'subscription_item_details', json_object('invoice_item', null,
                'proration', t.billing_reason = 'subscription_update', 'proration_details', null,
                'subscription', t.subscription, 'subscription_item', null)) end,
        'period', json_object('end', t.period_end_at, 'start', t.period_start_at), 'quantity', 1)),
        'has_more', false, 'total_count', 1, 'url', '/v1/invoices/' || t.id || '/lines'),
    'livemode', false, 'metadata', {_EMPTY_OBJ}, 'next_payment_attempt', null, 'number', nullif(t.number, ''),
    'on_behalf_of', null,
    'parent', case when t.subscription is null then null else json_object('quote_details', null,
        'subscription_details', json_object('metadata', {_EMPTY_OBJ}, 'subscription', t.subscription),
        'type', 'subscription_details') end,
    'period_end', t.period_end_at, 'period_start', t.period_start_at, 'post_payment_credit_notes_amount', 0,
    'pre_payment_credit_notes_amount', 0, 'receipt_number', null, 'shipping_cost', null,
        'starting_balance', 0,
    'statement_descriptor', null, 'status', t.status,
    'status_transitions', json_object('finalized_at', t.finalized_at, 'marked_uncollectible_at',
        case when t.status = 'uncollectible' then t.updated_at end, 'paid_at', t.paid_at,
            'voided_at', t.voided_at),
    'subtotal', t.total_minor, 'subtotal_excluding_tax', t.total_minor, 'test_clock', null,
        'total', t.total_minor,
    'total_discount_amounts', {_EMPTY_LIST}, 'total_excluding_tax', t.total_minor,
        'total_taxes', {_EMPTY_LIST},
    'webhooks_delivered_at', t.finalized_at)::varchar, t.status
    from stripe_invoices t where t.seq between $lo and $hi"""

CHARGE_SQL = f"""select t.seq, json_object('id', t.id, 'object', 'charge', 'amount', t.amount_minor,
    'amount_captured', t.amount_captured_minor, 'amount_refunded', t.amount_refunded_minor,
        'application', null,
    'application_fee', null, 'balance_transaction', null,
    'billing_details', json_object('address', null, 'email', null, 'name', null, 'phone', null),
    'calculated_statement_descriptor', 'REVSYNC SANDBOX', 'captured', t.amount_captured_minor > 0,
    'created', t.created_at, 'currency', t.currency, 'customer', t.customer, 'description', null,
    'disputed', false, 'failure_balance_transaction', null, 'failure_code', t.failure_code,
    'failure_message', case when t.failure_code is null then null
        else 'The card was declined (' || t.failure_code || ').' end,
    'fraud_details', {_EMPTY_OBJ}, 'livemode', false, 'metadata', {_EMPTY_OBJ}, 'on_behalf_of', null,
    'outcome', json_object('network_status',
        case when t.status = 'succeeded' then 'approved_by_network' else 'declined_by_network' end,
        'reason', t.failure_code, 'risk_level', 'normal', 'seller_message',
        case when t.status = 'succeeded' then 'Payment complete.'
            else 'The bank did not return any further details with this decline.' end,
        'type', case when t.status = 'succeeded' then 'authorized' else 'issuer_declined' end),
    'paid', t.status = 'succeeded', 'payment_intent', null, 'payment_method', null, 'receipt_email', null,
    'receipt_number', null, 'receipt_url', null,
    'refunded', t.amount_minor > 0 and t.amount_refunded_minor = t.amount_minor, 'review', null,
        'shipping', null,
    'source_transfer', null, 'statement_descriptor', null, 'statement_descriptor_suffix', null,
    'status', t.status, 'transfer_data', null, 'transfer_group', null)::varchar
    from stripe_charges t where t.seq between $lo and $hi"""

CREDIT_NOTE_SQL = f"""select t.seq, json_object('id', t.id, 'object', 'credit_note', 'amount', t.amount_minor,
    'amount_shipping', 0, 'created', t.created_at, 'currency', t.currency, 'customer', t.customer,
    'customer_balance_transaction', null, 'discount_amount', 0, 'discount_amounts', {_EMPTY_LIST},
    'effective_at', t.created_at, 'invoice', t.invoice,
    'lines', json_object('object', 'list', 'data', {_EMPTY_LIST}, 'has_more', false, 'total_count', 0,
        'url', '/v1/credit_notes/' || t.id || '/lines'),
    'livemode', false, 'memo', null, 'metadata', {_EMPTY_OBJ}, 'number', t.number, 'out_of_band_amount', null,
    'pdf', null, 'post_payment_amount', case when t.type = 'post_payment' then t.amount_minor else 0 end,
    'pre_payment_amount', case when t.type = 'pre_payment' then t.amount_minor else 0 end,
    'pretax_credit_amounts', {_EMPTY_LIST}, 'reason', t.reason, 'refunds', {_EMPTY_LIST},
    'shipping_cost', null, 'status', t.status, 'subtotal', t.amount_minor,
    'subtotal_excluding_tax', t.amount_minor, 'total', t.amount_minor, 'total_excluding_tax', t.amount_minor,
    'total_taxes', {_EMPTY_LIST}, 'type', t.type, 'voided_at', t.voided_at)::varchar
    from stripe_credit_notes t where t.seq between $lo and $hi"""

EVENT_SQL = f"""select t.seq, json_object('id', t.id, 'object', 'event', 'api_version', '{API_VERSION}',
    'created', t.created_at,
    'data', case when t.previous_attributes is null then json_object('object', t.data_object)
        else json_object('object', t.data_object, 'previous_attributes', t.previous_attributes) end,
    'livemode', false, 'pending_webhooks', 0, 'request', json_object('id', null, 'idempotency_key', null),
    'type', t.type)::varchar, t.type
    from stripe_events t where t.seq between $lo and $hi"""

PRODUCT_SQL = f"""select t.seq, json_object('id', t.id, 'object', 'product', 'active', true,
    'attributes', {_EMPTY_LIST}, 'created', t.created_at, 'default_price', null, 'description', null,
    'images', {_EMPTY_LIST}, 'livemode', false, 'marketing_features', {_EMPTY_LIST},
    'metadata', json_object('tier', t.tier), 'name', t.name, 'package_dimensions', null, 'shippable', null,
    'statement_descriptor', null, 'tax_code', null, 'type', 'service', 'unit_label', null,
    'updated', t.updated_at, 'url', null)::varchar
    from stripe_products t where t.seq between $lo and $hi"""

PRICE_SQL = (
    f"""select t.seq, {_price_json("t")}::varchar from stripe_prices t where t.seq between $lo and $hi"""
)


@dataclass(frozen=True)
class Kind:
    path: str  # "customers"
    label: str  # "customer", as in "No such customer: 'cus_x'"
    resource: Resource
    sql_filters: dict[str, str] = field(default_factory=dict)  # query param -> column (equality, in SQL)
    statuses: tuple[str, ...] = ()  # valid `status=` values (kept via the `status` extra)

    @property
    def table(self) -> str:
        return self.resource.table


_SUB_STATUSES = (
    "incomplete",
    "incomplete_expired",
    "trialing",
    "active",
    "past_due",
    "canceled",
    "unpaid",
    "paused",
)
KINDS = {
    k.path: k
    for k in (
        Kind(
            "customers",
            "customer",
            Resource("stripe.customers", "stripe_customers", CUSTOMER_SQL),
            {"email": "email"},
        ),
        Kind(
            "subscriptions",
            "subscription",
            Resource("stripe.subscriptions", "stripe_subscriptions", SUBSCRIPTION_SQL, ("status",)),
            {"customer": "customer", "price": "price"},
            (*_SUB_STATUSES, "all", "ended"),
        ),
        Kind(
            "invoices",
            "invoice",
            Resource("stripe.invoices", "stripe_invoices", INVOICE_SQL, ("status",)),
            {"customer": "customer", "subscription": "subscription"},
            ("draft", "open", "paid", "uncollectible", "void"),
        ),
        Kind(
            "charges",
            "charge",
            Resource("stripe.charges", "stripe_charges", CHARGE_SQL),
            {"customer": "customer"},
        ),
        Kind(
            "credit_notes",
            "credit note",
            Resource("stripe.credit_notes", "stripe_credit_notes", CREDIT_NOTE_SQL),
            {"customer": "customer", "invoice": "invoice"},
        ),
        Kind("events", "event", Resource("stripe.events", "stripe_events", EVENT_SQL, ("type",))),
        Kind("products", "product", Resource("stripe.products", "stripe_products", PRODUCT_SQL)),
        Kind(
            "prices", "price", Resource("stripe.prices", "stripe_prices", PRICE_SQL), {"product": "product"}
        ),
    )
}
_LIST_COMMON = {"limit", "starting_after", "ending_before", "created", "expand"}
_LIST_EXTRA = {
    "events": {"type", "types", "delivery_success"},
    "products": {"active"},
    "prices": {"active", "type"},
    "subscriptions": {"status"},
    "invoices": {"status"},
}


# -- request parsing -------------------------------------------------------------------------------
_NESTED = re.compile(r"^([A-Za-z0-9_]+)\[([^\[\]]*)\]$")


def _nest(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """`a=1&metadata[k]=v&types[]=x&types[1]=y` -> {"a": "1", "metadata": {"k": "v"}, "types": ["x", "y"]}."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        match = _NESTED.match(key)
        if match is None:
            if "[" in key or "]" in key:
                raise VendorError(400, f"Invalid parameter name: {key}", "parameter_unknown", param=key)
            out[key] = value
            continue
        name, sub = match.groups()
        if sub == "" or sub.isdigit():
            current = out.get(name)
            out[name] = [*(current if isinstance(current, list) else []), value]
        else:
            current = out.get(name)
            if not isinstance(current, dict):
                current = out[name] = {}
            current[sub] = value
    return out


def _query(request: Request, allowed: set[str]) -> dict[str, Any]:
    params = _nest(list(request.query_params.multi_items()))
    for name in params:
        if name not in allowed:
            raise VendorError(400, f"Received unknown parameter: {name}", "parameter_unknown", param=name)
    return params


async def _form(request: Request) -> dict[str, Any]:
    raw = await request.body()
    ctype = request.headers.get("content-type", "")
    if raw and ctype and "x-www-form-urlencoded" not in ctype:
        raise VendorError(
            400,
            "Invalid request: request bodies must be application/x-www-form-urlencoded, "
            f"not {ctype.split(';')[0]}.",
            "invalid_request_body",
        )
    try:
        text = raw.decode("utf-8")
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text), errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise VendorError(
            400, "Invalid request: the request body could not be parsed as form data.", "invalid_request_body"
        ) from None
    return _nest(pairs)


def _limit(params: dict[str, Any]) -> int:
    raw = params.get("limit")
    if raw is None or raw == "":
        return 10
    if not isinstance(raw, str) or not re.fullmatch(r"-?\d+", raw.strip()):
        raise VendorError(400, f"Invalid integer: {raw}", "parameter_invalid_integer", param="limit")
    value = int(raw)
    if value < 1:
        raise VendorError(
            400, "This value must be greater than or equal to 1.", "parameter_invalid_integer", param="limit"
        )
    if value > 100:
        raise VendorError(
            400, "This value must be less than or equal to 100.", "parameter_invalid_integer", param="limit"
        )
    return value


def _int(raw: Any, param: str) -> int:
    if not isinstance(raw, str) or not re.fullmatch(r"-?\d+", raw.strip()):
        raise VendorError(400, f"Invalid integer: {raw}", "parameter_invalid_integer", param=param)
    return int(raw)


def _created_bounds(world: World, table: str, params: dict[str, Any]) -> tuple[int, int | None]:
    """`created` / `created[gt|gte|lt|lte]` -> (after, before) exclusive seq bounds."""
    after, before = 0, None
    created = params.get("created")
    if created is None:
        return after, before
    if isinstance(created, str):
        created = {"gte": created, "lte": created}
    if not isinstance(created, dict):
        raise VendorError(
            400,
            "Invalid timestamp: created must be an integer or a hash.",
            "parameter_invalid_integer",
            param="created",
        )
    for op, raw in created.items():
        if op not in ("gt", "gte", "lt", "lte"):
            raise VendorError(
                400, f"Received unknown parameter: created[{op}]", "parameter_unknown", param=f"created[{op}]"
            )
        value = _int(raw, f"created[{op}]")
        if op in ("gt", "gte"):
            first = world.seq_at_or_after(table, "created_at", value + (op == "gt"))
            after = max(after, first - 1)
        else:
            bound = world.seq_at_or_after(table, "created_at", value + (op == "lte"))
            before = bound if before is None else min(before, bound)
    return after, before


# -- auth and errors -------------------------------------------------------------------------------
_KEYS: dict[int, str | None] = {}


def _expected_key(world: World) -> str | None:
    if id(world) not in _KEYS:
        _KEYS[id(world)] = world.meta("cred.stripe.api_key")
    return _KEYS[id(world)]


def _redact(key: str) -> str:
    match = re.match(r"^((?:sk|rk|pk)_(?:test|live)_)", key)
    return f"{match.group(1) if match else ''}****{key[-4:]}"


def authenticate(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, cred = header.partition(" ")
    key = ""
    if scheme.lower() == "bearer":
        key = cred.strip()
    elif scheme.lower() == "basic":
        try:
            key = base64.b64decode(cred.strip(), validate=True).decode().partition(":")[0]
        except (ValueError, UnicodeDecodeError):
            key = ""
    if not key:
        raise VendorError(401, MISSING_KEY)
    if key != _expected_key(request.app.state.world):
        raise VendorError(401, f"Invalid API Key provided: {_redact(key)}")
    return f"****{key[-4:]}"


def error_body(status: int, message: str, code: str | None, param: str | None) -> dict:
    kind = "invalid_request_error"
    if code == "idempotency_error":
        kind, code = "idempotency_error", None
    elif status >= 500:
        kind = "api_error"
    if code in ("not_found", "not_allowed"):
        message, code = message + _HELP, None
    err: dict[str, Any] = {}
    if code:
        err["code"] = code
        err["doc_url"] = f"https://stripe.com/docs/error-codes/{code.replace('_', '-')}"
    err["message"] = message
    if param:
        err["param"] = param
    err["type"] = kind
    return {"error": err}


def default_headers() -> dict[str, str]:
    return {"Request-Id": "req_" + secrets.token_hex(7), "Stripe-Version": API_VERSION}


def drift(record: dict) -> None:
    """Schema drift: a new field appears and `created` turns from an integer into a string."""
    record["billing_mode"] = {"type": "flexible"}
    if "created" in record:
        record["created"] = str(record["created"])
    else:
        record["livemode"] = "false"


# -- lists and retrieval ---------------------------------------------------------------------------
def _not_found(kind: Kind, object_id: str, param: str = "id", status: int = 404) -> VendorError:
    return VendorError(status, f"No such {kind.label}: '{object_id}'", "resource_missing", param=param)


def _cursor(world: World, kind: Kind, params: dict[str, Any], name: str) -> int | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str):
        raise VendorError(
            400, f"Invalid {name}: must be an object id.", "parameter_invalid_string", param=name
        )
    seq = stripe_seq(kind.table, raw)
    if seq is None or seq > world.max_seq(kind.table):
        raise _not_found(kind, raw, name, 400)
    return seq


def _envelope(url: str, docs: list[str], has_more: bool) -> str:
    return (
        '{"object":"list","data":['
        + ",".join(docs)
        + '],"has_more":'
        + ("true" if has_more else "false")
        + ',"url":"'
        + url
        + '"}'
    )


def _status_keep(kind: Kind, params: dict[str, Any]):
    raw = params.get("status")
    if kind.path == "subscriptions":
        if raw is None or raw == "":
            return lambda row: row.extra["status"] not in ("canceled", "incomplete_expired")
        if raw not in kind.statuses:
            raise VendorError(
                400,
                f"Invalid status: must be one of {', '.join(kind.statuses)}",
                "parameter_invalid_string",
                param="status",
            )
        if raw == "all":
            return None
        if raw == "ended":
            return lambda row: row.extra["status"] in ("canceled", "incomplete_expired")
        return lambda row: row.extra["status"] == raw
    if raw is None or raw == "":
        return None
    if raw not in kind.statuses:
        raise VendorError(
            400,
            f"Invalid status: must be one of {', '.join(kind.statuses)}",
            "parameter_invalid_string",
            param="status",
        )
    return lambda row: row.extra["status"] == raw


def _type_keep(params: dict[str, Any]):
    single, many = params.get("type"), params.get("types")
    if single is not None and many is not None:
        raise VendorError(
            400,
            "You may only specify one of these parameters: type, types.",
            "parameter_invalid",
            param="types",
        )
    patterns = [single] if isinstance(single, str) and single else many if isinstance(many, list) else []
    if not patterns:
        return None
    exact = {p for p in patterns if not p.endswith("*")}
    prefixes = tuple(p[:-1] for p in patterns if p.endswith("*"))
    return lambda row: (
        row.extra["type"] in exact or (bool(prefixes) and row.extra["type"].startswith(prefixes))
    )


def _sql_page(
    world: World,
    kind: Kind,
    where: list[tuple[str, str]],
    after: int,
    before: int | None,
    descending: bool,
    limit: int,
    keep,
) -> tuple[list[Row], bool]:
    """A page straight from SQL for selective id filters (customer=, invoice=, ...)."""
    hi = world.max_seq(kind.table) if before is None else min(before - 1, world.max_seq(kind.table))
    sql = kind.resource.select.replace("$lo", str(max(after + 1, 1))).replace("$hi", str(hi))
    sql += "".join(f" and t.{col} = ?" for col, _ in where)
    sql += f" order by t.seq {'desc' if descending else 'asc'}"
    values = [v for _, v in where]
    if keep is None:
        sql += f" limit {limit + 1}"
    rows = []
    for r in world.rows(sql, values):
        row = Row(r[0], r[1], dict(zip(kind.resource.extras, r[2:], strict=True)))
        if keep is not None and not keep(row):
            continue
        rows.append(row)
        if len(rows) > limit:
            break
    return rows[:limit], len(rows) > limit


def _list_page(request: Request, kind: Kind, params: dict[str, Any]) -> tuple[list[Row], bool]:
    world: World = request.app.state.world
    limit = _limit(params)
    if params.get("starting_after") and params.get("ending_before"):
        raise VendorError(
            400,
            "You may only specify one of these parameters: ending_before, starting_after.",
            "parameter_invalid",
            param="ending_before",
        )
    starting_after = _cursor(world, kind, params, "starting_after")
    ending_before = _cursor(world, kind, params, "ending_before")
    after, before = _created_bounds(world, kind.table, params)
    if kind.path == "events":
        retained = world.seq_at_or_after(kind.table, "created_at", int(time.time()) - EVENT_RETENTION_S)
        after = max(after, retained - 1)
    where = []
    for param, column in kind.sql_filters.items():
        value = params.get(param)
        if value is not None:
            if not isinstance(value, str) or value == "":
                raise VendorError(
                    400,
                    f"Invalid string: {param} must be a non-empty string.",
                    "parameter_invalid_string",
                    param=param,
                )
            where.append((column, value))
    keep = (
        _type_keep(params) if kind.path == "events" else _status_keep(kind, params) if kind.statuses else None
    )
    duplicate = bool(getattr(request.state, "fault_duplicate", False))
    ascending = False
    if starting_after is not None:
        edge = starting_after + 1 if duplicate else starting_after
        before = edge if before is None else min(before, edge)
        request.state.duplicated = duplicate
    elif ending_before is not None:
        after = max(after, ending_before - 1 if duplicate else ending_before)
        ascending = True
        request.state.duplicated = duplicate
    if where:
        rows, has_more = _sql_page(world, kind, where, after, before, not ascending, limit, keep)
    else:
        rows, has_more = world.scan(
            kind.resource, after=after, before=before, descending=not ascending, limit=limit, keep=keep
        )
    if ascending:
        rows.reverse()
    return rows, has_more


def _list_route(kind: Kind):
    allowed = _LIST_COMMON | set(kind.sql_filters) | _LIST_EXTRA.get(kind.path, set())

    async def handler(request: Request) -> Response:
        params = _query(request, allowed)
        rows, has_more = _list_page(request, kind, params)
        return json_response(_envelope(f"/v1/{kind.path}", [r.doc for r in rows], has_more))

    return handler


def _retrieve_route(kind: Kind):
    async def handler(request: Request, object_id: str) -> Response:
        _query(request, {"expand"})
        world: World = request.app.state.world
        row = world.get(kind.resource, stripe_seq(kind.table, object_id))
        if row is None:
            raise _not_found(kind, object_id)
        return json_response(row.doc)

    return handler


# -- billing meters (usage) ------------------------------------------------------------------------
def _meter_id(name: str) -> str:
    return name if name.startswith("mtr_") else "mtr_" + name


def _meters(world: World) -> list[dict]:
    rows = world.rows(
        "select meter, min(created_at), max(updated_at) from stripe_usage_records"
        " group by meter order by 2 desc, 1"
    )
    out = []
    for name, created, updated in rows:
        event_name = name[4:] if name.startswith("mtr_") else name
        out.append(
            {
                "id": _meter_id(name),
                "object": "billing.meter",
                "created": created,
                "customer_mapping": {"event_payload_key": "stripe_customer_id", "type": "by_id"},
                "default_aggregation": {"formula": "sum"},
                "display_name": event_name.replace("_", " ").title(),
                "event_name": event_name,
                "event_time_window": None,
                "livemode": False,
                "status": "active",
                "status_transitions": {"deactivated_at": None},
                "updated": updated,
                "value_settings": {"event_payload_key": "value"},
                "_name": name,
            }
        )
    return out


def _meter(world: World, meter_id: str) -> dict:
    for meter in _meters(world):
        if meter["id"] == meter_id:
            return meter
    raise VendorError(404, f"No such billing meter: '{meter_id}'", "resource_missing", param="id")


def _public(meter: dict) -> dict:
    return {k: v for k, v in meter.items() if not k.startswith("_")}


# -- customer writes -------------------------------------------------------------------------------
_CUSTOMER_PARAMS = {"name", "email", "balance", "metadata", "expand"}
_IDEMPOTENCY_MISMATCH = (
    "Keys for idempotent requests can only be used with the same parameters they were first used with. "
    "Try using a key other than '{key}' if you meant to execute a different request."
)


def _validate_customer(params: dict[str, Any]) -> dict[str, Any]:
    for name in params:
        if name not in _CUSTOMER_PARAMS:
            raise VendorError(400, f"Received unknown parameter: {name}", "parameter_unknown", param=name)
    for name in ("name", "email"):
        if name in params and not isinstance(params[name], str):
            raise VendorError(400, f"Invalid string: {name}", "parameter_invalid_string", param=name)
        if name in params and len(params[name]) > (256 if name == "name" else 512):
            raise VendorError(
                400, f"Invalid string: {name} is too long", "parameter_invalid_string", param=name
            )
    if "balance" in params:
        params = {**params, "balance": _int(params["balance"], "balance")}
    metadata = params.get("metadata")
    if metadata is not None and metadata != "" and not isinstance(metadata, dict):
        raise VendorError(
            400, "Invalid object: metadata must be a hash.", "parameter_invalid_string", param="metadata"
        )
    for key, value in (metadata or {}).items() if isinstance(metadata, dict) else ():
        if not key or len(key) > 40:
            raise VendorError(
                400,
                "Metadata keys must be between 1 and 40 characters.",
                "parameter_invalid_string",
                param=f"metadata[{key}]",
            )
        if len(value) > 500:
            raise VendorError(
                400,
                "Metadata values can have up to 500 characters.",
                "parameter_invalid_string",
                param=f"metadata[{key}]",
            )
    return params


def _merge_metadata(current: dict[str, str], update: Any) -> dict[str, str]:
    if update == "":
        return {}
    merged = dict(current)
    for key, value in (update or {}).items():
        if value == "":
            merged.pop(key, None)
        else:
            merged[key] = value
    if len(merged) > 50:
        raise VendorError(
            400, "Metadata can have up to 50 keys.", "parameter_invalid_string", param="metadata"
        )
    return merged


def _emit_event(world: World, event_type: str, doc: dict, previous: dict | None, now: int) -> None:
    seq = world.next_seq("stripe_events")
    world.con.execute(
        "insert into stripe_events values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            seq,
            stripe_id("stripe_events", seq),
            event_type,
            doc["object"],
            doc["id"],
            orjson.dumps(doc).decode(),
            None if previous is None else orjson.dumps(previous).decode(),
            now,
            now,
        ],
    )
    world.changed("stripe_events")


async def _customer_write(request: Request, object_id: str | None) -> Response:
    """Create (object_id None) or update a customer; every attempt, failed or not, lands in the write log."""
    world: World = request.app.state.world
    key = request.headers.get("idempotency-key")
    log = {
        "vendor": "stripe",
        "method": "POST",
        "path": request.url.path,
        "idempotency_key": key,
        "principal": getattr(request.state, "principal", None),
        "body": None,
    }
    try:
        return await _customer_write_inner(request, world, object_id, key, log)
    except VendorError as exc:
        world.record_write(
            **log, status=exc.status, response=error_body(exc.status, exc.message, exc.code, exc.param)
        )
        raise


async def _customer_write_inner(
    request: Request, world: World, object_id: str | None, key: str | None, log: dict[str, Any]
) -> Response:
    if key is not None and len(key) > 255:
        raise VendorError(
            400,
            "Keys for idempotent requests can be no longer than 255 characters.",
            "idempotency_key_too_long",
        )
    params = log["body"] = await _form(request)
    if key:
        found = world.rows(
            "select method, path, status, body, response from writes where vendor = 'stripe'"
            " and idempotency_key = ? and principal is not distinct from ? and not replayed"
            " and status in (200, 404) and received_at >= ?"
            " order by seq limit 1",
            [key, log["principal"], int(time.time()) - IDEMPOTENCY_TTL_S],
        )
        if found:
            _method, first_path, status, body, response = found[0]
            if first_path != log["path"] or (orjson.loads(body) if body else {}) != params:
                raise VendorError(400, _IDEMPOTENCY_MISMATCH.format(key=key), "idempotency_error")
            world.record_write(**log, status=status, response=orjson.loads(response), replayed=True)
            return json_response(
                orjson.loads(response), status, {"Idempotent-Replayed": "true", "Idempotency-Key": key}
            )
    kind = KINDS["customers"]
    params = _validate_customer(params)
    now = int(time.time())
    if object_id is None:
        seq = world.next_seq(kind.table)
        world.con.execute(
            "insert into stripe_customers values (?, ?, ?, ?, '', ?, false, ?, ?, ?)",
            [
                seq,
                stripe_id(kind.table, seq),
                params.get("name", ""),
                params.get("email", ""),
                params.get("balance", 0),
                orjson.dumps(_merge_metadata({}, params.get("metadata"))).decode(),
                now,
                now,
            ],
        )
    else:
        seq = stripe_seq(kind.table, object_id)
        old_row = world.get(kind.resource, seq)
        if old_row is None:
            raise _not_found(kind, object_id)
        old = orjson.loads(old_row.doc)
        metadata = _merge_metadata(old["metadata"], params["metadata"]) if "metadata" in params else None
        sets, values = ["updated_at = ?"], [now]
        for name, column in (("name", "name"), ("email", "email"), ("balance", "balance_minor")):
            if name in params:
                sets.append(f"{column} = ?")
                values.append(params[name])
        if metadata is not None:
            sets.append("metadata = ?")
            values.append(orjson.dumps(metadata).decode())
        world.con.execute(f"update stripe_customers set {', '.join(sets)} where seq = ?", [*values, seq])
    world.changed(kind.table)
    doc = orjson.loads(world.get(kind.resource, seq).doc)
    if object_id is None:
        _emit_event(world, "customer.created", doc, None, now)
    else:
        previous = {k: old[k] for k in doc if k in old and old[k] != doc[k]}
        if previous:
            _emit_event(world, "customer.updated", doc, previous, now)
    world.record_write(**log, status=200, response=doc)
    return json_response(doc, 200, {"Idempotency-Key": key} if key else None)


# -- the vendor ------------------------------------------------------------------------------------
def build_router() -> APIRouter:
    router = APIRouter()

    async def list_meters(request: Request) -> Response:
        params = _query(request, _LIST_COMMON | {"status"})
        limit = _limit(params)
        meters = [_public(m) for m in _meters(request.app.state.world)]
        page = meters[:limit]
        return json_response(
            {"object": "list", "data": page, "has_more": len(meters) > limit, "url": "/v1/billing/meters"}
        )

    async def get_meter(request: Request, meter_id: str) -> Response:
        _query(request, {"expand"})
        return json_response(_public(_meter(request.app.state.world, meter_id)))

    async def event_summaries(request: Request, meter_id: str) -> Response:
        world: World = request.app.state.world
        params = _query(
            request, _LIST_COMMON | {"customer", "start_time", "end_time", "value_grouping_window"}
        )
        meter = _meter(world, meter_id)
        for name in ("customer", "start_time", "end_time"):
            if not params.get(name):
                raise VendorError(400, f"Missing required param: {name}.", "parameter_missing", param=name)
        start, end = _int(params["start_time"], "start_time"), _int(params["end_time"], "end_time")
        if end <= start:
            raise VendorError(
                400, "end_time must be after start_time.", "parameter_invalid_integer", param="end_time"
            )
        window = params.get("value_grouping_window")
        size = {"hour": 3600, "day": 86400}.get(window) if window else None
        if window and size is None:
            raise VendorError(
                400,
                "Invalid value_grouping_window: must be one of day, hour",
                "parameter_invalid_string",
                param="value_grouping_window",
            )
        limit = _limit(params)
        bucket = f"(period_start_at // {size}) * {size}" if size else str(start)
        rows = world.rows(
            f"select {bucket} as b, sum(quantity) from stripe_usage_records where meter = ? and customer = ?"
            " and period_start_at >= ? and period_start_at < ? group by b order by b",
            [meter["_name"], params["customer"], start, end],
        )
        if not size and not rows:
            rows = [(start, 0)]
        data = []
        for bucket_start, total in rows:
            bucket_end = min(bucket_start + size, end) if size else end
            digest = hashlib.blake2b(
                f"{meter_id}|{params['customer']}|{bucket_start}|{bucket_end}".encode(), digest_size=9
            ).hexdigest()
            data.append(
                {
                    "id": "mrs_" + digest,
                    "object": "billing.meter_event_summary",
                    "aggregated_value": float(total or 0),
                    "end_time": bucket_end,
                    "livemode": False,
                    "meter": meter_id,
                    "start_time": max(bucket_start, start),
                }
            )
        after = params.get("starting_after")
        if after:  # summaries come oldest first; page on after the given one
            ids = [d["id"] for d in data]
            data = data[ids.index(after) + 1 :] if after in ids else []
        return json_response(
            {
                "object": "list",
                "data": data[:limit],
                "has_more": len(data) > limit,
                "url": f"/v1/billing/meters/{meter_id}/event_summaries",
            }
        )

    async def create_customer(request: Request) -> Response:
        return await _customer_write(request, None)

    async def update_customer(request: Request, object_id: str) -> Response:
        return await _customer_write(request, object_id)

    router.add_api_route("/v1/billing/meters", list_meters, methods=["GET"])
    router.add_api_route("/v1/billing/meters/{meter_id}", get_meter, methods=["GET"])
    router.add_api_route("/v1/billing/meters/{meter_id}/event_summaries", event_summaries, methods=["GET"])
    router.add_api_route("/v1/customers", create_customer, methods=["POST"])
    router.add_api_route("/v1/customers/{object_id}", update_customer, methods=["POST"])
    for kind in KINDS.values():
        router.add_api_route(f"/v1/{kind.path}", _list_route(kind), methods=["GET"])
        router.add_api_route(f"/v1/{kind.path}/{{object_id}}", _retrieve_route(kind), methods=["GET"])
    return router


def vendor() -> Vendor:
    return Vendor(
        name="stripe",
        router=build_router(),
        error_body=error_body,
        authenticate=authenticate,
        default_headers=default_headers,
    )


__all__ = ["vendor", "drift", "KINDS", "STRIPE_PREFIX"]
