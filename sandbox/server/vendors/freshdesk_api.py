"""Freshdesk sandbox: the world's Zendesk support data served over Freshdesk's REST API v2.

The world has no Freshdesk tables: this vendor renders `zendesk_organizations`, `zendesk_users` and
`zendesk_tickets` as Freshdesk companies, contacts and tickets (same numeric ids; ticket status as
Freshdesk's integers 2 Open, 3 Pending, 4 Resolved, 5 Closed and priority 1 Low .. 4 Urgent; ISO 8601
UTC timestamps). Speaks: Basic auth with the API key as user name and any password ("X"); lists
`GET /api/v2/{companies|contacts|tickets}` paged by `page` (1-based) and `per_page` (1-100, default
30), the next page's absolute URL in a `Link: <…>; rel="next"` header that is absent on the last page,
bare JSON array bodies; tickets take `updated_since` (ISO 8601, inclusive), `order_by` (created_at,
updated_at, status) and `order_type` (asc, desc; default created_at desc) and, as Freshdesk does,
list only tickets created in the last 30 days unless `updated_since` is given; contacts take
`_updated_since`, `email` and `company_id`; show `GET /api/v2/{resource}/{id}`. Validation errors are
`{"description":"Validation failed","errors":[{"field","message","code"}]}`; other errors
`{"code","message"}` (401 `invalid_credentials`). Rate-limit headers `X-RateLimit-Total`,
`-Remaining` and `-Used-CurrentRequest` are sent on every response (no limit is enforced without a
fault profile).

Deviations: `order_by=due_by`, the tickets `include=` and `filter=` options and the contacts `state`
filter are not served (400 naming the field); the 401 body shape and the inclusive `updated_since`
bound are from memory of Freshdesk's docs, not confirmed by a primary source here. Credentials come
from the world's meta table when present, else they are derived from the world seed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request

from sandbox.server.app import Vendor, VendorError, json_response
from sandbox.server.world import World, struct_json

NAME = "freshdesk"
DOMAIN = "revsync-demo"
RATE_LIMIT = 700  # requests per minute (Enterprise plan)
DEFAULT_PER_PAGE = 30
MAX_PER_PAGE = 100
RECENT_TICKETS_S = 30 * 86400  # the ticket list's default window without updated_since

# Zendesk -> Freshdesk vocabulary
TICKET_STATUS = (
    "case t.status when 'new' then 2 when 'open' then 2 when 'pending' then 3 when 'hold' then 3"
    " when 'solved' then 4 when 'closed' then 5 else 2 end"
)
TICKET_PRIORITY = "case t.priority when 'low' then 1 when 'normal' then 2 when 'high' then 3 else 4 end"

_COMPANY_DOC = """json_object('id', t.id, 'name', t.name, 'description', null, 'note', null,
    'domains', t.domain_names,
    'created_at', iso_z(t.created_at), 'updated_at', iso_z(t.updated_at),
    'custom_fields', json_merge_patch(t.organization_fields,
        json_object('stripe_customer_id', t.external_id)),
    'health_score', null,
    'account_tier', upper(substr(t.organization_fields->>'support_tier', 1, 1))
        || substr(t.organization_fields->>'support_tier', 2),
    'renewal_date', null, 'industry', null)::varchar"""
_CONTACT_DOC = """json_object('active', true, 'address', null, 'company_id', t.organization_id,
    'description', null, 'email', t.email, 'id', t.id, 'job_title', null, 'language', 'en',
    'mobile', null, 'name', t.name, 'phone', null, 'time_zone', 'UTC', 'twitter_id', null,
    'other_emails', json('[]'), 'view_all_tickets', false, 'unique_external_id', null,
    'custom_fields', json('{}'), 'created_at', iso_z(t.created_at),
    'updated_at', iso_z(t.updated_at))::varchar"""
_TICKET_DOC = f"""json_object('cc_emails', json('[]'), 'fwd_emails', json('[]'),
    'reply_cc_emails', json('[]'),
    'fr_escalated', false, 'spam', false, 'email_config_id', null, 'group_id', null,
    'priority', {TICKET_PRIORITY}, 'requester_id', t.requester_id, 'responder_id', null, 'source', 1,
    'company_id', t.organization_id, 'status', {TICKET_STATUS}, 'subject', t.subject, 'to_emails', null,
    'product_id', null, 'id', t.id, 'type', null, 'due_by', null, 'fr_due_by', null,
    'is_escalated', false, 'custom_fields', json('{{}}'), 'tags', json('[]'),
    'created_at', iso_z(t.created_at), 'updated_at', iso_z(t.updated_at))::varchar"""


@dataclass(frozen=True)
class Kind:
    path: str
    table: str
    doc: str
    params: frozenset[str]  # query parameters beyond page/per_page


KINDS = {
    k.path: k
    for k in (
        Kind("companies", "zendesk_organizations", _COMPANY_DOC, frozenset()),
        Kind("contacts", "zendesk_users", _CONTACT_DOC, frozenset({"_updated_since", "email", "company_id"})),
        Kind(
            "tickets",
            "zendesk_tickets",
            _TICKET_DOC,
            frozenset({"updated_since", "order_by", "order_type", "company_id", "requester_id"}),
        ),
    )
}
TICKET_ORDER = {"created_at": "t.created_at", "updated_at": "t.updated_at", "status": TICKET_STATUS}

router = APIRouter()
_calls: deque[float] = deque()


# -- credentials, auth, errors --------------------------------------------------------------------
_creds_cache: dict[int, dict[str, str]] = {}


def credentials(world: World) -> dict[str, str]:
    """`cred.freshdesk.*` from the world's meta table, else derived from the world's seed."""
    found = _creds_cache.get(id(world))
    if found is None:
        seed = world.meta("seed", "0")
        key = hashlib.blake2b(f"{seed}:freshdesk".encode(), digest_size=10).hexdigest()
        stored = world.rows("select key, value from meta where key like 'cred.freshdesk.%'")
        found = {"domain": DOMAIN, "api_key": key}
        found.update({k.split(".", 2)[2]: value for k, value in stored})
        _creds_cache[id(world)] = found
    return found


def authenticate(request: Request) -> str:
    """Basic `{api_key}:X` (any password)."""
    now = time.monotonic()
    _calls.append(now)
    while _calls and _calls[0] <= now - 60:
        _calls.popleft()
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    user = ""
    if scheme.lower() == "basic":
        try:
            user = base64.b64decode(value.strip(), validate=True).decode().partition(":")[0]
        except (binascii.Error, UnicodeDecodeError):
            user = ""
    if not user or user != credentials(request.app.state.world)["api_key"]:
        raise VendorError(401, "You have to be logged in to perform this action.", "invalid_credentials")
    return f"****{user[-4:]}"


_CODES = {
    "not_found": "invalid_url",
    "not_allowed": "method_not_allowed",
    "invalid_json": "invalid_json",
    "rate_limit": "rate_limit_exceeded",
    "maintenance": "service_unavailable",
    "server_error": "internal_error",
    "internal_error": "internal_error",
}


def error_body(status: int, message: str, code: str | None, param: str | None) -> dict:
    if status == 400:
        error = {"field": param or "", "message": message, "code": code or "invalid_value"}
        return {"description": "Validation failed", "errors": [error]}
    if status == 401:
        return {"code": "invalid_credentials", "message": message}
    return {"code": _CODES.get(code or "", code or "error"), "message": message}


def default_headers() -> dict[str, str]:
    return {
        "X-RateLimit-Total": str(RATE_LIMIT),
        "X-RateLimit-Remaining": str(max(RATE_LIMIT - len(_calls), 0)),
        "X-RateLimit-Used-CurrentRequest": "1",
    }


def vendor() -> Vendor:
    return Vendor(
        name=NAME,
        router=router,
        error_body=error_body,
        authenticate=authenticate,
        default_headers=default_headers,
    )


# -- parameters -----------------------------------------------------------------------------------
def _invalid(field: str, message: str, code: str = "invalid_value") -> VendorError:
    return VendorError(400, message, code, param=field)


def _positive(request: Request, name: str, default: int, hi: int | None = None) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not re.fullmatch(r"\d+", raw) or int(raw) < 1:
        raise _invalid(name, "It should be a Positive Number", "datatype_mismatch")
    if hi is not None and int(raw) > hi:
        raise _invalid(name, f"It should be a Positive Number less than or equal to {hi}")
    return int(raw)


def _since(name: str, raw: str) -> int:
    """ISO 8601 date or date-time (naive means UTC) -> unix seconds."""
    try:
        parsed = datetime.fromisoformat(raw.strip())
    except ValueError:
        raise _invalid(name, "It should be in the 'valid date time' format") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp())


def _id(name: str, raw: str) -> int:
    if not re.fullmatch(r"\d+", raw):
        raise _invalid(name, "It should be a Positive Number", "datatype_mismatch")
    return int(raw)


def _filters(kind: Kind, request: Request) -> tuple[list[str], list[Any], str]:
    """WHERE conditions, their values and the ORDER BY for `kind`'s list parameters."""
    q = request.query_params
    for name in q:
        if name not in kind.params and name not in ("page", "per_page"):
            raise _invalid(name, "Unexpected/invalid field in request", "invalid_field")
    where: list[str] = []
    values: list[Any] = []
    since_param = "updated_since" if kind.path == "tickets" else "_updated_since"
    if since_param in kind.params and q.get(since_param) is not None:
        where.append("t.updated_at >= ?")
        values.append(_since(since_param, q[since_param]))
    elif kind.path == "tickets":
        where.append("t.created_at >= ?")
        values.append(int(time.time()) - RECENT_TICKETS_S)
    for name, column in (("company_id", "organization_id"), ("requester_id", "requester_id")):
        if name in kind.params and q.get(name) is not None:
            where.append(f"t.{column} = ?")
            values.append(_id(name, q[name]))
    if "email" in kind.params and q.get("email") is not None:
        where.append("lower(t.email) = lower(?)")
        values.append(q["email"])
    if kind.path != "tickets":
        return where, values, "t.seq"
    order_by, order_type = q.get("order_by", "created_at"), q.get("order_type", "desc")
    if order_by not in TICKET_ORDER:
        raise _invalid("order_by", f"It should be one of these values: '{','.join(TICKET_ORDER)}'")
    if order_type not in ("asc", "desc"):
        raise _invalid("order_type", "It should be one of these values: 'asc,desc'")
    return where, values, f"{TICKET_ORDER[order_by]} {order_type}, t.seq {order_type}"


# -- endpoints ------------------------------------------------------------------------------------
_fast_docs: dict[str, str] = {}


def _doc(kind: Kind) -> str:
    if kind.path not in _fast_docs:
        _fast_docs[kind.path] = struct_json(kind.doc)
    return _fast_docs[kind.path]


def _kind(name: str) -> Kind:
    if name not in KINDS:
        raise VendorError(404, f"The URL /api/v2/{name} is not valid.", "not_found")
    return KINDS[name]


def _origin(request: Request) -> str:
    host = request.headers.get("host") or f"{request.url.hostname}:{request.url.port}"
    return f"{request.url.scheme}://{host}"


@router.get("/api/v2/{name}")
async def list_records(request: Request, name: str):
    kind = _kind(name)
    world: World = request.app.state.world
    page = _positive(request, "page", 1)
    per_page = _positive(request, "per_page", DEFAULT_PER_PAGE, MAX_PER_PAGE)
    where, values, order = _filters(kind, request)
    chosen = (
        f"select t.* from {kind.table} t {'where ' + ' and '.join(where) if where else ''}"
        f" order by {order} limit ? offset ?"
    )
    rows = world.rows(
        f"select {_doc(kind)} from ({chosen}) t order by {order}",
        [*values, per_page + 1, (page - 1) * per_page],
    )
    headers = {}
    if len(rows) > per_page:
        params = [(k, v) for k, v in request.query_params.multi_items() if k != "page"]
        url = f"{_origin(request)}{request.url.path}?{urlencode([*params, ('page', page + 1)])}"
        headers["Link"] = f'<{url}>; rel="next"'
    return json_response("[" + ",".join(r[0] for r in rows[:per_page]) + "]", headers=headers)


@router.get("/api/v2/{name}/{record_id}")
async def show_record(request: Request, name: str, record_id: str):
    kind = _kind(name)
    world: World = request.app.state.world
    if not re.fullmatch(r"\d+", record_id):
        raise VendorError(404, f"No {name} record with id {record_id}.", "not_found")
    rows = world.rows(
        f"select {_doc(kind)} from (select * from {kind.table} where id = ?) t", [int(record_id)]
    )
    if not rows:
        raise VendorError(404, f"No {name} record with id {record_id}.", "not_found")
    return json_response(rows[0][0])
