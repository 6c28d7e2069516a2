"""Chargebee Billing sandbox: the world's Stripe billing data served over Chargebee's REST API v2.

The world has no Chargebee tables: this vendor renders `stripe_customers`, `stripe_subscriptions` and
`stripe_invoices` as Chargebee `customer`, `subscription` and `invoice` resources (same ids, statuses
mapped to Chargebee's vocabulary, amounts in integer minor units, timestamps unix seconds, currency
codes upper case). Speaks: Basic auth with the API key as user name and an empty password; lists
`GET /api/v2/{customers|subscriptions|invoices}` with `limit` (1-100, default 10) and the opaque
`offset` from the previous page's `next_offset` (absent on the last page); `sort_by[asc|desc]`;
filters `field[op]=value` (timestamps: after, before, between; strings: is, is_not, starts_with, in,
not_in); `include_deleted`; retrieve `GET /api/v2/{resource}/{id}`. Errors are
`{"message","type","api_error_code","param"}` plus the legacy `error_code`/`error_msg`/
`error_param`/`http_status_code` fields the SDKs still read.

Deviations: the default list order (newest created first) and the exact error messages are not
confirmed by a primary source; nothing is ever deleted, so `include_deleted` changes nothing. The site
credential (`cred.chargebee.site`) is only reported: the sandbox serves one site on its own port.
Credentials come from the world's meta table when present, else they are derived from the world seed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import APIRouter, Request

from sandbox.server.app import Vendor, VendorError, json_response
from sandbox.server.world import World, struct_json

NAME = "chargebee"
SITE = "revsync-demo-test"
DEFAULT_LIMIT = 10
MAX_LIMIT = 100

# -- Stripe -> Chargebee vocabulary ---------------------------------------------------------------
SUBSCRIPTION_STATUS = (
    "case when t.status = 'trialing' then 'in_trial'"
    " when t.status in ('canceled', 'incomplete_expired') then 'cancelled'"
    " when t.status = 'paused' then 'paused'"
    " when t.status = 'incomplete' then 'future'"
    " when t.cancel_at_period_end then 'non_renewing'"
    " else 'active' end"  # active, past_due and unpaid: Chargebee keeps them active with dues
)
INVOICE_STATUS = (
    "case t.status when 'paid' then 'paid' when 'open' then 'payment_due' when 'void' then 'voided'"
    " when 'uncollectible' then 'not_paid' else 'pending' end"  # draft -> pending
)
SUBSCRIPTION_STATUSES = ("future", "in_trial", "active", "non_renewing", "paused", "cancelled", "transferred")
INVOICE_STATUSES = ("paid", "posted", "payment_due", "not_paid", "voided", "pending")

_CUSTOMER_DOC = """json_object('id', t.id, 'first_name', null, 'last_name', null, 'email', t.email,
    'company', t.name, 'auto_collection', 'on', 'net_term_days', 0, 'allow_direct_debit', false,
    'created_at', t.created_at, 'taxability', 'taxable', 'updated_at', t.updated_at,
    'pii_cleared', 'active', 'channel', 'web', 'resource_version', t.updated_at * 1000, 'deleted', false,
    'object', 'customer', 'card_status', 'no_card', 'promotional_credits', 0, 'refundable_credits', 0,
    'excess_payments', 0, 'unbilled_charges', 0, 'preferred_currency_code', upper(t.currency),
    'meta_data', t.metadata)::varchar"""

_SUBSCRIPTION_DOC = f"""json_object('id', t.id, 'billing_period', 1,
    'billing_period_unit', p.recurring_interval, 'customer_id', t.customer, 'status', {SUBSCRIPTION_STATUS},
    'current_term_start', t.current_period_start_at, 'current_term_end', t.current_period_end_at,
    'next_billing_at', case when t.status in ('active', 'past_due', 'trialing')
        and not t.cancel_at_period_end then t.current_period_end_at end,
    'created_at', t.created_at, 'started_at', t.start_at,
    'activated_at', case when t.status <> 'trialing' then coalesce(t.trial_end_at, t.start_at) end,
    'trial_start', t.trial_start_at, 'trial_end', t.trial_end_at,
    'cancelled_at', case when t.status in ('canceled', 'incomplete_expired')
        then coalesce(t.ended_at, t.canceled_at)
        when t.cancel_at_period_end then t.current_period_end_at end,
    'updated_at', t.updated_at, 'has_scheduled_changes', false, 'channel', 'web',
    'resource_version', t.updated_at * 1000, 'deleted', false, 'object', 'subscription',
    'currency_code', upper(t.currency),
    'due_invoices_count', case when t.status in ('past_due', 'unpaid') then 1 else 0 end,
    'mrr', case when t.status in ('canceled', 'incomplete_expired') then 0
        when p.recurring_interval = 'year' then (p.unit_amount_minor * t.quantity) // 12
        else p.unit_amount_minor * t.quantity end,
    'subscription_items', json_array(json_object('item_price_id', t.price, 'item_type', 'plan',
        'quantity', t.quantity, 'unit_price', p.unit_amount_minor,
        'amount', p.unit_amount_minor * t.quantity, 'free_quantity', 0, 'object', 'subscription_item')),
    'meta_data', t.metadata)::varchar"""

_INVOICE_DOC = f"""json_object('id', t.id, 'customer_id', t.customer, 'subscription_id', t.subscription,
    'recurring', t.subscription is not null, 'status', {INVOICE_STATUS}, 'price_type', 'tax_exclusive',
    'date', t.created_at, 'due_date', t.due_at, 'net_term_days', 0, 'exchange_rate', 1.0,
    'currency_code', upper(t.currency), 'base_currency_code', upper(t.currency),
    'total', t.total_minor, 'amount_paid', t.amount_paid_minor, 'amount_adjusted', 0,
    'write_off_amount', 0, 'credits_applied', 0, 'amount_due', t.amount_remaining_minor,
    'amount_to_collect', t.amount_remaining_minor, 'paid_at', t.paid_at, 'voided_at', t.voided_at,
    'generated_at', t.finalized_at, 'updated_at', t.updated_at, 'resource_version', t.updated_at * 1000,
    'deleted', false, 'object', 'invoice', 'first_invoice', t.billing_reason = 'subscription_create',
    'has_advance_charges', false, 'round_off_amount', 0, 'sub_total', t.total_minor, 'tax', 0,
    'line_items', json_array(json_object('id', 'li_' || substr(t.id, 4), 'date_from', t.period_start_at,
        'date_to', t.period_end_at, 'unit_amount', t.total_minor, 'quantity', 1, 'amount', t.total_minor,
        'pricing_model', 'per_unit', 'is_taxed', false, 'tax_amount', 0, 'object', 'line_item',
        'subscription_id', t.subscription, 'customer_id', t.customer, 'description', 'Subscription',
        'entity_type', 'plan_item_price', 'discount_amount', 0, 'item_level_discount_amount', 0)),
    'linked_payments', json('[]'))::varchar"""


@dataclass(frozen=True)
class Kind:
    path: str  # "customers"
    singular: str  # "customer": the item's wrapper key and the error wording
    table: str
    doc: str  # SQL expression over `t` (and the joins) rendering one record
    joins: str  # joined after the page's rows are chosen
    filters: dict[str, tuple[str, str]]  # filter name -> (SQL expression over t, "timestamp"|"string")
    sorts: dict[str, str]  # sort_by attribute -> column of t
    statuses: tuple[str, ...] = ()


_COMMON_FILTERS = {"id": ("t.id", "string"), "updated_at": ("t.updated_at", "timestamp")}
KINDS = {
    k.path: k
    for k in (
        Kind(
            "customers",
            "customer",
            "stripe_customers",
            _CUSTOMER_DOC,
            "",
            {**_COMMON_FILTERS, "email": ("t.email", "string"), "created_at": ("t.created_at", "timestamp")},
            {"created_at": "created_at", "updated_at": "updated_at"},
        ),
        Kind(
            "subscriptions",
            "subscription",
            "stripe_subscriptions",
            _SUBSCRIPTION_DOC,
            "left join stripe_prices p on p.id = t.price",
            {
                **_COMMON_FILTERS,
                "customer_id": ("t.customer", "string"),
                "status": (SUBSCRIPTION_STATUS, "string"),
                "created_at": ("t.created_at", "timestamp"),
            },
            {"created_at": "created_at", "updated_at": "updated_at"},
            SUBSCRIPTION_STATUSES,
        ),
        Kind(
            "invoices",
            "invoice",
            "stripe_invoices",
            _INVOICE_DOC,
            "",
            {
                **_COMMON_FILTERS,
                "customer_id": ("t.customer", "string"),
                "subscription_id": ("t.subscription", "string"),
                "status": (INVOICE_STATUS, "string"),
                "date": ("t.created_at", "timestamp"),
            },
            {"date": "created_at", "updated_at": "updated_at"},
            INVOICE_STATUSES,
        ),
    )
}
OPERATORS = {
    "timestamp": ("after", "before", "between"),
    "string": ("is", "is_not", "starts_with", "in", "not_in"),
}
_PLAIN_PARAMS = {"limit", "offset", "include_deleted"}
_FILTER = re.compile(r"^([a-z_]+)\[([a-z_]+)\]$")

router = APIRouter()


# -- credentials, auth, errors --------------------------------------------------------------------
def _token(seed: str, label: str, size: int) -> str:
    return hashlib.blake2b(f"{seed}:{label}".encode(), digest_size=size).hexdigest()


_creds_cache: dict[int, dict[str, str]] = {}


def credentials(world: World) -> dict[str, str]:
    """`cred.chargebee.*` from the world's meta table, else derived from the world's seed."""
    found = _creds_cache.get(id(world))
    if found is None:
        seed = world.meta("seed", "0")
        stored = world.rows("select key, value from meta where key like 'cred.chargebee.%'")
        found = {"site": SITE, "api_key": f"test_{_token(seed, 'chargebee', 16)}"}
        found.update({key.split(".", 2)[2]: value for key, value in stored})
        _creds_cache[id(world)] = found
    return found


def authenticate(request: Request) -> str:
    """Basic `base64("{api_key}:")`: the API key is the user name, the password empty."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic" or not value.strip():
        raise VendorError(401, "Sorry, authentication failed. Please provide your API key as the user name.")
    try:
        user, _, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        user, password = "", ""
    if not user or password or user != credentials(request.app.state.world)["api_key"]:
        raise VendorError(401, "Sorry, authentication failed. Invalid api key")
    return f"****{user[-4:]}"


# app-level codes -> (api_error_code, type)
_CODES: dict[str, tuple[str, str | None]] = {
    "not_found": ("resource_not_found", "invalid_request"),
    "not_allowed": ("invalid_request", "invalid_request"),
    "invalid_request": ("invalid_request", "invalid_request"),
    "invalid_json": ("invalid_request", "invalid_request"),
    "parameter_invalid_integer": ("param_wrong_value", "invalid_request"),
    "parameter_out_of_range": ("param_wrong_value", "invalid_request"),
    "rate_limit": ("api_request_limit_exceeded", None),
    "maintenance": ("internal_temporary_error", None),
    "server_error": ("internal_error", None),
    "internal_error": ("internal_error", None),
}


def error_body(status: int, message: str, code: str | None, param: str | None) -> dict:
    if status == 401:
        api_code, kind = "api_authentication_failed", None
    elif status in (502, 503) and code == "server_error":
        api_code, kind = "internal_temporary_error", None
    else:
        api_code, kind = _CODES.get(code or "", (code or "invalid_request", "invalid_request"))
    body: dict[str, Any] = {"message": message}
    if kind:
        body["type"] = kind
    body["api_error_code"] = api_code
    if param:
        body["param"] = param
    body.update(error_code=api_code, error_msg=message, http_status_code=status)
    if param:
        body["error_param"] = param
    return body


def vendor() -> Vendor:
    return Vendor(name=NAME, router=router, error_body=error_body, authenticate=authenticate)


# -- parameters -----------------------------------------------------------------------------------
def _wrong(param: str, message: str) -> VendorError:
    return VendorError(400, f"{param} : {message}", "param_wrong_value", param=param)


def _limit(request: Request) -> int:
    raw = request.query_params.get("limit")
    if raw is None or raw == "":
        return DEFAULT_LIMIT
    if not re.fullmatch(r"\d+", raw) or not 1 <= int(raw) <= MAX_LIMIT:
        raise _wrong("limit", f"The value {raw} is invalid. It should be between 1 and {MAX_LIMIT}.")
    return int(raw)


def _encode_offset(key: int, seq: int) -> str:
    return orjson.dumps([str(key * 1000), str(seq)]).decode()


def _decode_offset(raw: str) -> tuple[int, int]:
    try:
        parts = orjson.loads(raw)
    except orjson.JSONDecodeError:
        parts = None
    if (
        not isinstance(parts, list)
        or len(parts) != 2
        or not all(isinstance(p, str) and p.isdigit() for p in parts)
        or int(parts[0]) % 1000
    ):
        raise _wrong("offset", "The offset is invalid. Pass the next_offset of the previous page as is.")
    return int(parts[0]) // 1000, int(parts[1])


def _int(param: str, raw: str) -> int:
    if not re.fullmatch(r"-?\d+", raw.strip()):
        raise _wrong(param, f"The value {raw!r} is not a valid timestamp.")
    return int(raw)


def _values(param: str, raw: str) -> list[str]:
    """`in`/`not_in` values: a JSON array or a bracketed comma list (`[a,b]`)."""
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError:
        parsed = [v.strip().strip('"') for v in raw.strip().strip("[]").split(",") if v.strip()]
    if not isinstance(parsed, list) or not parsed:
        raise _wrong(param, "Expected a list of values like [value1,value2].")
    return [str(v) for v in parsed]


def _condition(kind: Kind, field: str, op: str, raw: str) -> tuple[str, list[Any]]:
    param = f"{field}[{op}]"
    if field not in kind.filters:
        raise VendorError(
            400, f"{param} : is not a supported filter for {kind.path}.", "invalid_request", param=param
        )
    expr, kind_of = kind.filters[field]
    if op not in OPERATORS[kind_of]:
        allowed = ", ".join(OPERATORS[kind_of])
        raise _wrong(param, f"The operator {op!r} is not supported for {field}; use one of {allowed}.")
    if kind_of == "timestamp":
        if op == "between":
            bounds = _values(param, raw)
            if len(bounds) != 2:
                raise _wrong(param, "Expected two timestamps like [from,to].")
            return f"{expr} between ? and ?", [_int(param, b) for b in bounds]
        return f"{expr} {'>' if op == 'after' else '<'} ?", [_int(param, raw)]
    values = _values(param, raw) if op in ("in", "not_in") else [raw]
    if field == "status":
        for value in values:
            if value not in kind.statuses:
                raise _wrong(param, f"The value {value!r} is invalid. Use one of {', '.join(kind.statuses)}.")
    if op == "is":
        return f"{expr} = ?", values
    if op == "is_not":
        return f"{expr} is distinct from ?", values
    if op == "starts_with":
        return f"starts_with({expr}, ?)", values
    marks = ", ".join("?" for _ in values)
    return f"{expr} {'not in' if op == 'not_in' else 'in'} ({marks})", values


def _sort(kind: Kind, request: Request) -> tuple[str, bool]:
    """(column, descending); newest created first unless `sort_by[asc|desc]` says otherwise."""
    asc, desc = request.query_params.get("sort_by[asc]"), request.query_params.get("sort_by[desc]")
    if asc is not None and desc is not None:
        raise _wrong("sort_by", "Only one of sort_by[asc] and sort_by[desc] may be given.")
    chosen = asc if asc is not None else desc
    if chosen is None:
        return "created_at", True
    if chosen not in kind.sorts:
        param = "sort_by[asc]" if asc is not None else "sort_by[desc]"
        raise _wrong(param, f"The value {chosen!r} is invalid. Use one of {', '.join(kind.sorts)}.")
    return kind.sorts[chosen], desc is not None


def _conditions(kind: Kind, request: Request) -> tuple[list[str], list[Any]]:
    where, params = [], []
    for name, raw in request.query_params.multi_items():
        if name in _PLAIN_PARAMS or name in ("sort_by[asc]", "sort_by[desc]"):
            continue
        match = _FILTER.match(name)
        if match is None:
            raise VendorError(
                400, f"{name} : is not a supported parameter for {kind.path}.", "invalid_request", param=name
            )
        sql, values = _condition(kind, match[1], match[2], raw)
        where.append(sql)
        params += values
    deleted = request.query_params.get("include_deleted")
    if deleted not in (None, "true", "false"):
        raise _wrong("include_deleted", f"The value {deleted!r} is invalid. Use true or false.")
    return where, params


# -- endpoints ------------------------------------------------------------------------------------
_fast_docs: dict[str, str] = {}


def _doc(kind: Kind) -> str:
    if kind.path not in _fast_docs:
        _fast_docs[kind.path] = struct_json(kind.doc)
    return _fast_docs[kind.path]


def _kind(name: str) -> Kind:
    if name not in KINDS:
        raise VendorError(404, "Sorry, we couldn't find that resource", "not_found")
    return KINDS[name]


@router.get("/api/v2/{name}")
async def list_records(request: Request, name: str):
    """One page in (sort column, seq) order, keyset-paged: `next_offset` encodes the last row's key."""
    kind = _kind(name)
    world: World = request.app.state.world
    limit = _limit(request)
    column, descending = _sort(kind, request)
    where, params = _conditions(kind, request)
    raw_offset = request.query_params.get("offset")
    if raw_offset:
        key, seq = _decode_offset(raw_offset)
        where.append(f"(t.{column}, t.seq) {'<' if descending else '>'} (?, ?)")
        params += [key, seq]
    order = f"t.{column} {'desc' if descending else 'asc'}, t.seq {'desc' if descending else 'asc'}"
    chosen = (
        f"select t.* from {kind.table} t {'where ' + ' and '.join(where) if where else ''}"
        f" order by {order} limit ?"
    )
    sql = f"select t.{column}, t.seq, {_doc(kind)} from ({chosen}) t {kind.joins} order by {order}"
    rows = world.rows(sql, [*params, limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    items = ",".join('{"' + kind.singular + '":' + r[2] + "}" for r in rows)
    tail = f',"next_offset":{orjson.dumps(_encode_offset(rows[-1][0], rows[-1][1])).decode()}' if more else ""
    return json_response('{"list":[' + items + "]" + tail + "}")


@router.get("/api/v2/{name}/{record_id}")
async def retrieve_record(request: Request, name: str, record_id: str):
    kind = _kind(name)
    world: World = request.app.state.world
    rows = world.rows(
        f"select {_doc(kind)} from (select * from {kind.table} where id = ?) t {kind.joins}", [record_id]
    )
    if not rows:
        raise VendorError(404, f"{record_id} not found", "not_found", param=f"{kind.singular}_id")
    return json_response('{"' + kind.singular + '":' + rows[0][0] + "}")
