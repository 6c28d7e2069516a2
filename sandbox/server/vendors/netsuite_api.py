"""NetSuite sandbox: the REST record service and SuiteQL under `/services/rest`.

Speaks enough of the protocol for the `netsuite` package (subclass `NetSuiteRestApi`, override
`_make_url`) and the revsync connector and push DAGs:

- Auth: OAuth 1.0 token-based authentication (TBA) with HMAC-SHA256, verified for real: the signature
  base string is rebuilt from the method, the URL as the client addressed this server (scheme from
  `X-Forwarded-Proto` or the connection, host from the `Host` header, the raw path), the query string
  and the `oauth_*` header parameters, and signed with the consumer and token secrets from the meta
  table; the realm must name the account, timestamps must be within 5 minutes, nonces are single-use.
  `Authorization: Bearer <cred.netsuite.bearer>` stands in for NetSuite's OAuth 2.0.
- Record service `/record/v1/{customer|salesOrder|invoice|customerPayment|creditMemo|subsidiary}`:
  lists (`limit` 1-1000, `offset`, `q=`), GET by id and by `eid:<externalId>`, POST create (204 +
  Location), PATCH, upsert PUT `eid:` (204). `X-NetSuite-PropertyNameValidation: error` makes unknown
  fields a 400. A customerPayment applied to an invoice (`apply.items[{doc:{id}, amount}]` or an
  `invoice` reference) lowers the invoice's `amountRemaining` and marks it paidInFull at zero.
- SuiteQL `POST /query/v1/suiteql` (needs `Prefer: transient`): read-only single SELECT statements over
  the views `customer`, `transaction` (type SalesOrd | CustInvc | CustPymt | CustCred), `subsidiary`
  and `currency`, validated on DuckDB's parse tree (no other tables, no table functions, an allowlist
  of functions). Values come back as strings and null columns are omitted, as SuiteQL does.

Simplifications: record datetimes are rendered with a fixed -08:00 account offset; SuiteQL datetime
columns are Pacific wall-clock timestamps rendered `YYYY-MM-DD HH:MM:SS`; transaction `status` uses the
record service's status ids (e.g. `pendingBilling`, `paidInFull`) rather than one-letter codes; sublists
(`item`, `apply`) are served inline instead of as links; `oauth_body_hash` is signed but not compared
with the body.
"""

from __future__ import annotations

import bisect
import hmac
import re
import time
import weakref
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote, urlencode

import duckdb
import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response
from oauthlib.oauth1.rfc5849 import signature as oauth_sig
from oauthlib.oauth1.rfc5849 import utils as oauth_utils

from sandbox.server.app import Vendor, VendorError, int_param, json_response, log_write, read_json_body
from sandbox.server.world import Resource, World
from sandbox.world.ids import NUMERIC_BASE, numeric_id, numeric_seq

NAME = "netsuite"
ORIGIN = "__NS_ORIGIN__"  # replaced by the request's scheme://host in every response body
BASE = "/services/rest"
RECORD = f"{BASE}/record/v1"
PACIFIC = timezone(timedelta(hours=-8))
MAX_SUITEQL_RESULTS = 100_000
TIMESTAMP_SKEW = 300

CURRENCIES = {
    "USD": "1",
    "GBP": "2",
    "CAD": "3",
    "EUR": "4",
    "AUD": "5",
    "JPY": "6",
    "CHF": "7",
    "SEK": "8",
    "NZD": "9",
    "SGD": "10",
    "DKK": "11",
    "NOK": "12",
    "INR": "13",
    "BRL": "14",
    "MXN": "15",
}
CURRENCY_CODES = {v: k for k, v in CURRENCIES.items()}
_CURRENCY_ID_SQL = (
    "case {c} " + " ".join(f"when '{k}' then '{v}'" for k, v in CURRENCIES.items()) + " else {c} end"
)
STATUS_NAMES = {
    "pendingApproval": "Pending Approval",
    "pendingFulfillment": "Pending Fulfillment",
    "pendingBilling": "Pending Billing",
    "partiallyFulfilled": "Partially Fulfilled",
    "billed": "Billed",
    "closed": "Closed",
    "open": "Open",
    "paidInFull": "Paid In Full",
}
_STATUS_SQL = (
    "case {c} " + " ".join(f"when '{k}' then '{v}'" for k, v in STATUS_NAMES.items()) + " else {c} end"
)


# -- SQL rendering helpers ---------------------------------------------------------------------
def _link(rtype: str, id_sql: str) -> str:
    return f"json_array(json_object('rel', 'self', 'href', '{ORIGIN}{RECORD}/{rtype}/' || {id_sql}))"


def _ref(rtype: str, id_sql: str, name_sql: str) -> str:
    return (
        f"case when {id_sql} is null then null else json_object('id', {id_sql}, 'refName', {name_sql},"
        f" 'links', {_link(rtype, id_sql)}) end"
    )


def _currency(col: str) -> str:
    cid = _CURRENCY_ID_SQL.format(c=col)
    return _ref("currency", cid, col)


def _status(col: str) -> str:
    return f"json_object('id', {col}, 'refName', {_STATUS_SQL.format(c=col)})"


_CUSTOMER_NAME = "c.entity_id || ' ' || c.company_name"
_SO_NAME = "'Sales Order #' || so.tran_id"
_INV_NAME = "'Invoice #' || i.tran_id"
_CUSTOMER_AND_INVOICE = (
    "left join netsuite_customers c on c.id = t.customer_id"
    " left join netsuite_invoices i on i.id = t.invoice_id"
)


@dataclass(frozen=True)
class Field:
    column: str | None  # None: accepted on writes, handled specially, not filterable
    kind: str  # string | number | boolean | datetime | date | ref | currency | status
    target: str | None = None  # ref: the table the id points into
    writable: bool = True


@dataclass(frozen=True)
class RecordType:
    name: str
    table: str
    doc: str  # SQL json expression over alias t (plus the joins)
    joins: str
    fields: dict[str, Field]
    required: tuple[str, ...]
    defaults: dict[str, Any] = field(default_factory=dict)
    tran_prefix: str | None = None
    statuses: tuple[str, ...] = ()


_COMMON = {
    "id": Field("id", "string", writable=False),
    "externalId": Field("external_id", "string"),
    "dateCreated": Field("created_at", "datetime", writable=False),
    "lastModifiedDate": Field("updated_at", "datetime", writable=False),
}


def _doc(rtype: str, *pairs: str) -> str:
    body = ", ".join(pairs)
    return (
        f"json_object('links', {_link(rtype, 't.id')}, 'id', t.id, {body},"
        " 'dateCreated', iso_pacific(t.created_at), 'lastModifiedDate', iso_pacific(t.updated_at))::varchar"
    )


TYPES: dict[str, RecordType] = {
    "customer": RecordType(
        "customer",
        "netsuite_customers",
        _doc(
            "customer",
            "'externalId', t.external_id",
            "'entityId', t.entity_id",
            "'companyName', t.company_name",
            "'email', t.email",
            "'isPerson', false",
            f"'subsidiary', {_ref('subsidiary', 't.subsidiary_id', 's.name')}",
            f"'currency', {_currency('t.currency')}",
            "'isInactive', t.is_inactive",
        ),
        "left join netsuite_subsidiaries s on s.id = t.subsidiary_id",
        {
            **_COMMON,
            "entityId": Field("entity_id", "string"),
            "companyName": Field("company_name", "string"),
            "email": Field("email", "string"),
            "subsidiary": Field("subsidiary_id", "ref", "netsuite_subsidiaries"),
            "currency": Field("currency", "currency"),
            "isInactive": Field("is_inactive", "boolean"),
            "isPerson": Field(None, "boolean"),
        },
        ("companyName", "subsidiary"),
        {"email": "", "is_inactive": False},
    ),
    "salesOrder": RecordType(
        "salesOrder",
        "netsuite_sales_orders",
        _doc(
            "salesOrder",
            "'externalId', t.external_id",
            "'tranId', t.tran_id",
            f"'entity', {_ref('customer', 't.customer_id', _CUSTOMER_NAME)}",
            f"'currency', {_currency('t.currency')}",
            "'total', t.total::double",
            "'subtotal', t.total::double",
            f"'status', {_status('t.status')}",
            "'tranDate', date_pacific(t.created_at)",
            "'startDate', date_pacific(t.start_at)",
            "'endDate', date_pacific(t.end_at)",
            "'item', json_object('items', json_array(json_object('line', 1,"
            " 'item', json_object('refName', t.item), 'quantity', 1, 'amount', t.total::double)),"
            " 'totalResults', 1)",
        ),
        "left join netsuite_customers c on c.id = t.customer_id",
        {
            **_COMMON,
            "tranId": Field("tran_id", "string"),
            "entity": Field("customer_id", "ref", "netsuite_customers"),
            "currency": Field("currency", "currency"),
            "total": Field("total", "number"),
            "status": Field("status", "status"),
            "item": Field("item", "string"),
            "startDate": Field("start_at", "date"),
            "endDate": Field("end_at", "date"),
            "tranDate": Field("created_at", "date", writable=False),
        },
        ("entity", "currency"),
        {"total": 0, "status": "pendingFulfillment", "item": "", "end_at": None},
        "SO",
        ("pendingApproval", "pendingFulfillment", "partiallyFulfilled", "pendingBilling", "billed", "closed"),
    ),
    "invoice": RecordType(
        "invoice",
        "netsuite_invoices",
        _doc(
            "invoice",
            "'externalId', t.external_id",
            "'tranId', t.tran_id",
            f"'entity', {_ref('customer', 't.customer_id', _CUSTOMER_NAME)}",
            f"'createdFrom', {_ref('salesOrder', 't.sales_order_id', _SO_NAME)}",
            f"'currency', {_currency('t.currency')}",
            "'total', t.total::double",
            "'amountRemaining', t.amount_remaining::double",
            "'amountPaid', (t.total - t.amount_remaining)::double",
            f"'status', {_status('t.status')}",
            "'tranDate', date_pacific(t.tran_at)",
            "'dueDate', date_pacific(t.due_at)",
        ),
        "left join netsuite_customers c on c.id = t.customer_id "
        "left join netsuite_sales_orders so on so.id = t.sales_order_id",
        {
            **_COMMON,
            "tranId": Field("tran_id", "string"),
            "entity": Field("customer_id", "ref", "netsuite_customers"),
            "createdFrom": Field("sales_order_id", "ref", "netsuite_sales_orders"),
            "currency": Field("currency", "currency"),
            "total": Field("total", "number"),
            "amountRemaining": Field("amount_remaining", "number"),
            "status": Field("status", "status"),
            "tranDate": Field("tran_at", "date"),
            "dueDate": Field("due_at", "date"),
        },
        ("entity", "currency", "total"),
        {"sales_order_id": None, "due_at": None},
        "INV",
        ("open", "paidInFull"),
    ),
    "customerPayment": RecordType(
        "customerPayment",
        "netsuite_customer_payments",
        _doc(
            "customerPayment",
            "'externalId', t.external_id",
            "'tranId', t.tran_id",
            f"'customer', {_ref('customer', 't.customer_id', _CUSTOMER_NAME)}",
            f"'currency', {_currency('t.currency')}",
            "'payment', t.amount::double",
            "'applied', case when t.invoice_id is null then 0 else t.amount::double end",
            "'tranDate', date_pacific(t.tran_at)",
            "'apply', json_object('items', case when t.invoice_id is null then json('[]')"
            " else json_array(json_object("
            f"'doc', {_ref('invoice', 't.invoice_id', _INV_NAME)},"
            " 'apply', true, 'amount', t.amount::double)) end)",
        ),
        _CUSTOMER_AND_INVOICE,
        {
            **_COMMON,
            "tranId": Field("tran_id", "string"),
            "customer": Field("customer_id", "ref", "netsuite_customers"),
            "currency": Field("currency", "currency"),
            "payment": Field("amount", "number"),
            "tranDate": Field("tran_at", "date"),
            "invoice": Field("invoice_id", "ref", "netsuite_invoices"),
            "apply": Field(None, "apply"),
        },
        ("customer", "currency", "payment"),
        {"invoice_id": None},
        "PYMT",
    ),
    "creditMemo": RecordType(
        "creditMemo",
        "netsuite_credit_memos",
        _doc(
            "creditMemo",
            "'externalId', t.external_id",
            "'tranId', t.tran_id",
            f"'entity', {_ref('customer', 't.customer_id', _CUSTOMER_NAME)}",
            f"'createdFrom', {_ref('invoice', 't.invoice_id', _INV_NAME)}",
            f"'currency', {_currency('t.currency')}",
            "'total', t.amount::double",
            "'tranDate', date_pacific(t.tran_at)",
        ),
        _CUSTOMER_AND_INVOICE,
        {
            **_COMMON,
            "tranId": Field("tran_id", "string"),
            "entity": Field("customer_id", "ref", "netsuite_customers"),
            "createdFrom": Field("invoice_id", "ref", "netsuite_invoices"),
            "currency": Field("currency", "currency"),
            "total": Field("amount", "number"),
            "tranDate": Field("tran_at", "date"),
        },
        ("entity", "currency", "total"),
        {"invoice_id": None},
        "CM",
    ),
    "subsidiary": RecordType(
        "subsidiary",
        "netsuite_subsidiaries",
        _doc("subsidiary", "'name', t.name", f"'currency', {_currency('t.currency')}", "'isInactive', false"),
        "",
        {**_COMMON, "name": Field("name", "string"), "currency": Field("currency", "currency")},
        ("name", "currency"),
    ),
}
TYPES["subsidiary"].fields.pop("externalId")  # subsidiaries carry no external id here

FULL = {
    n: Resource(
        f"netsuite.{n}",
        t.table,
        f"select t.seq, {t.doc} from {t.table} t {t.joins} where t.seq between $lo and $hi",
    )
    for n, t in TYPES.items()
}


def _item_sql(rtype: str) -> str:
    return f"json_object('links', {_link(rtype, 't.id')}, 'id', t.id)::varchar"


ITEMS = {
    n: Resource(
        f"netsuite.items.{n}",
        t.table,
        f"select t.seq, {_item_sql(n)} from {t.table} t where t.seq between $lo and $hi",
    )
    for n, t in TYPES.items()
}

router = APIRouter()


# -- errors and auth ---------------------------------------------------------------------------
_TITLES = {
    400: ("15.5.1", "Bad Request"),
    401: ("15.5.2", "Unauthorized"),
    403: ("15.5.4", "Forbidden"),
    404: ("15.5.5", "Not Found"),
    405: ("15.5.6", "Method Not Allowed"),
    409: ("15.5.10", "Conflict"),
    415: ("15.5.16", "Unsupported Media Type"),
    500: ("15.6.1", "Internal Server Error"),
    502: ("15.6.3", "Bad Gateway"),
    503: ("15.6.4", "Service Unavailable"),
}
_GENERIC_CODES = {
    "not_found": "NONEXISTENT_ID",
    "not_allowed": "INVALID_METHOD",
    "invalid_json": "INVALID_CONTENT",
    "invalid_request": "INVALID_PARAMETER",
    "parameter_invalid_integer": "INVALID_PARAMETER",
    "parameter_out_of_range": "INVALID_PARAMETER",
    "rate_limit": "CONCURRENCY_LIMIT_EXCEEDED",
    "maintenance": "SERVICE_UNAVAILABLE",
    "server_error": "UNEXPECTED_ERROR",
    "internal_error": "UNEXPECTED_ERROR",
}


def error_body(status: int, message: str, code: str | None, param: str | None) -> dict:
    if status == 429:
        kind, title = "https://www.rfc-editor.org/rfc/rfc6585.html#section-4", "Too Many Requests"
    else:
        section, title = _TITLES.get(status, ("15.5.1", "Bad Request"))
        kind = f"https://www.rfc-editor.org/rfc/rfc9110.html#section-{section}"
    detail: dict[str, Any] = {
        "detail": message,
        "o:errorCode": _GENERIC_CODES.get(code or "", code or "USER_ERROR"),
    }
    if param:
        detail["o:errorPath"] = param
    return {"type": kind, "title": title, "status": status, "o:errorDetails": [detail]}


def _unauthorized() -> VendorError:
    return VendorError(
        401,
        "Invalid login attempt. For more details, see the Login Audit Trail in the NetSuite UI at "
        "Setup > Users/Roles > User Management > View Login Audit Trail.",
        "INVALID_LOGIN",
    )


_creds_cache: dict[int, dict[str, str]] = {}
_nonces: OrderedDict[str, float] = OrderedDict()


def _creds(world: World) -> dict[str, str]:
    found = _creds_cache.get(id(world))
    if found is None:
        rows = world.rows("select key, value from meta where key like 'cred.netsuite.%'")
        found = {k.removeprefix("cred.netsuite."): v for k, v in rows}
        _creds_cache[id(world)] = found
    return found


def _origin(request: Request) -> str:
    scheme = request.headers.get("x-forwarded-proto", request.url.scheme).split(",")[0].strip()
    host = request.headers.get("x-forwarded-host") or request.headers.get("host") or request.url.netloc
    return f"{scheme}://{host}"


@dataclass(frozen=True)
class _Secrets:
    """What oauthlib's signers read from a client."""

    client_secret: str
    resource_owner_secret: str


def authenticate(request: Request) -> str:
    creds = _creds(request.app.state.world)
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer":
        if creds.get("bearer") and hmac.compare_digest(value.strip(), creds["bearer"]):
            return "oauth2"
        raise _unauthorized()
    if scheme.lower() != "oauth":
        raise _unauthorized()
    try:
        params = {k: oauth_utils.unescape(v) for k, v in oauth_utils.parse_authorization_header(header)}
        collected = oauth_sig.collect_parameters(
            uri_query=request.url.query,
            headers={"Authorization": header},
            exclude_oauth_signature=True,
            with_realm=False,
        )
        normalized = oauth_sig.normalize_parameters(collected)
        raw_path = request.scope.get("raw_path") or request.url.path.encode()
        uri = oauth_sig.base_string_uri(_origin(request) + raw_path.decode("latin-1"))
        base = oauth_sig.signature_base_string(request.method.upper(), uri, normalized)
    except (ValueError, KeyError, TypeError):
        raise _unauthorized() from None
    ok = (
        params.get("realm", "").upper() == creds.get("account", "").upper()
        and params.get("oauth_signature_method") == "HMAC-SHA256"
        and params.get("oauth_consumer_key") == creds.get("consumer_key")
        and params.get("oauth_token") == creds.get("token_id")
        and params.get("oauth_version", "1.0") == "1.0"
    )
    if not ok:
        raise _unauthorized()
    expected = oauth_sig.sign_hmac_sha256(
        base, creds.get("consumer_secret", ""), creds.get("token_secret", "")
    )
    if not hmac.compare_digest(expected, params.get("oauth_signature", "")):
        raise _unauthorized()
    try:
        stamp = int(params.get("oauth_timestamp", ""))
    except ValueError:
        raise _unauthorized() from None
    now = time.time()
    if abs(now - stamp) > TIMESTAMP_SKEW:
        raise _unauthorized()
    nonce = f"{params.get('oauth_token')}|{params.get('oauth_nonce', '')}"
    while _nonces and next(iter(_nonces.values())) < now - 2 * TIMESTAMP_SKEW:
        _nonces.popitem(last=False)
    if nonce in _nonces:
        raise _unauthorized()
    _nonces[nonce] = now
    return creds.get("token_id", "tba")[-4:]


def vendor() -> Vendor:
    return Vendor(name=NAME, router=router, error_body=error_body, authenticate=authenticate)


def drift(record: dict) -> None:
    """Schema drift: a new custom field appears and `id` turns from a string into a number."""
    record["custentity_sandbox_segment"] = "smb"
    if isinstance(record.get("id"), str) and record["id"].isdigit():
        record["id"] = int(record["id"])


# -- shared helpers ----------------------------------------------------------------------------
def _send(request: Request, body: str, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return json_response(body.replace(ORIGIN, _origin(request)), status, headers)


def _bad(detail: str, code: str = "INVALID_PARAMETER", path: str | None = None) -> VendorError:
    return VendorError(400, detail, code, param=path)


def _type(name: str) -> RecordType:
    rtype = TYPES.get(name)
    if rtype is None:
        raise VendorError(404, f"Record type '{name}' does not exist.", "NONEXISTENT_ID")
    return rtype


def _int(request: Request, name: str, default: int, lo: int, hi: int) -> int:
    prefix = f"Invalid value for the query parameter '{name}'"
    return int_param(
        request,
        name,
        default,
        lo,
        hi,
        invalid=lambda raw: _bad(f"{prefix}: {raw}. Provide an integer."),
        out_of_range=lambda value: _bad(f"{prefix}: {value}. The value must be between {lo} and {hi}."),
    )


def _envelope(
    request: Request, path: str, items: list[str], limit: int, offset: int, total: int, extra: dict[str, str]
) -> Response:
    def href(at: int) -> str:
        return f"{ORIGIN}{path}?" + urlencode({**extra, "limit": limit, "offset": at}, quote_via=quote)

    has_more = offset + len(items) < total
    links = [{"rel": "self", "href": href(offset)}]
    if total:
        links.append({"rel": "first", "href": href(0)})
    if offset > 0:
        links.append({"rel": "prev", "href": href(max(offset - limit, 0))})
    if has_more:
        links.append({"rel": "next", "href": href(offset + limit)})
    if total:
        links.append({"rel": "last", "href": href(((total - 1) // limit) * limit)})
    head = orjson.dumps({"links": links, "count": len(items), "hasMore": has_more}).decode()
    tail = orjson.dumps({"offset": offset, "totalResults": total}).decode()
    return _send(request, head[:-1] + ',"items":[' + ",".join(items) + "]," + tail[1:])


# -- q= filter parsing -------------------------------------------------------------------------
_TOKEN = re.compile(r'\s*(?:"((?:[^"\\]|\\.)*)"|(\S+))')
_DATE_OPS = {"ON", "AFTER", "BEFORE", "ON_OR_AFTER", "ON_OR_BEFORE", "IS", "EMPTY", "EMPTY_NOT"}
_STRING_OPS = {
    "IS",
    "IS_NOT",
    "CONTAIN",
    "DOES_NOT_CONTAIN",
    "START_WITH",
    "END_WITH",
    "EMPTY",
    "EMPTY_NOT",
    "ANY_OF",
}
_NUMBER_OPS = {
    "IS",
    "EQUAL",
    "NOT_EQUAL",
    "GREATER",
    "GREATER_OR_EQUAL",
    "LESS",
    "LESS_OR_EQUAL",
    "EMPTY",
    "EMPTY_NOT",
}
_NUMBER_SQL = {
    "IS": "=",
    "EQUAL": "=",
    "NOT_EQUAL": "<>",
    "GREATER": ">",
    "GREATER_OR_EQUAL": ">=",
    "LESS": "<",
    "LESS_OR_EQUAL": "<=",
}


def _parse_when(text: str) -> tuple[int, int, bool]:
    """A q= date or datetime literal -> (start epoch, end epoch exclusive, is_date)."""
    value = text.strip()
    for fmt in ("%m/%d/%y", "%m/%d/%Y", "%Y-%m-%d"):
        try:
            day = datetime.strptime(value, fmt).date()
        except ValueError:
            continue
        start = datetime(day.year, day.month, day.day, tzinfo=PACIFIC)
        return int(start.timestamp()), int((start + timedelta(days=1)).timestamp()), True
    for fmt in ("%m/%d/%Y %I:%M %p", "%m/%d/%Y %H:%M", "%m/%d/%y %I:%M %p", "%m/%d/%Y %I:%M:%S %p"):
        try:
            moment = datetime.strptime(value.upper(), fmt).replace(tzinfo=PACIFIC)
        except ValueError:
            continue
        return int(moment.timestamp()), int(moment.timestamp()) + 60, False
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f'"{text}" is not a valid date or datetime') from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=PACIFIC)
    return int(moment.timestamp()), int(moment.timestamp()) + 1, False


def _condition(rtype: RecordType, name: str, op: str, value: str | None) -> tuple[str, list]:
    spec = rtype.fields.get(name)
    if spec is None or spec.column is None:
        raise ValueError(f"unknown field '{name}' for record type {rtype.name}")
    col = f"t.{spec.column}"
    if op in ("EMPTY", "EMPTY_NOT"):
        return (f"({col} is null)" if op == "EMPTY" else f"({col} is not null)"), []
    if value is None:
        raise ValueError(f"operator {op} needs a value")
    if spec.kind in ("datetime", "date"):
        if op not in _DATE_OPS:
            raise ValueError(f"operator {op} cannot be used with the date field '{name}'")
        start, end, is_date = _parse_when(value)
        sql = {
            "ON": (f"({col} >= ? and {col} < ?)", [start, end]),
            "IS": (f"({col} >= ? and {col} < ?)", [start, end]),
            "AFTER": (f"{col} >= ?", [end]) if is_date else (f"{col} > ?", [start]),
            "BEFORE": (f"{col} < ?", [start]),
            "ON_OR_AFTER": (f"{col} >= ?", [start]),
            "ON_OR_BEFORE": (f"{col} < ?", [end]) if is_date else (f"{col} <= ?", [start]),
        }[op]
        return sql
    if spec.kind == "number":
        if op not in _NUMBER_OPS:
            raise ValueError(f"operator {op} cannot be used with the number field '{name}'")
        try:
            number = float(value)
        except ValueError:
            raise ValueError(f"'{value}' is not a number") from None
        return f"{col} {_NUMBER_SQL[op]} ?", [number]
    if spec.kind == "boolean":
        if op != "IS" or value.lower() not in ("true", "false"):
            raise ValueError(f"the boolean field '{name}' takes IS true or IS false")
        return f"{col} = ?", [value.lower() == "true"]
    if op not in _STRING_OPS:
        raise ValueError(f"operator {op} cannot be used with the field '{name}'")
    if spec.kind == "currency" and value in CURRENCY_CODES:
        value = CURRENCY_CODES[value]
    if op == "ANY_OF":
        values = [v.strip() for v in value.split(",") if v.strip()]
        return f"{col} in ({', '.join('?' for _ in values)})", values
    pattern = {"CONTAIN": "%{}%", "DOES_NOT_CONTAIN": "%{}%", "START_WITH": "{}%", "END_WITH": "%{}"}.get(op)
    if pattern:
        neg = "not " if op == "DOES_NOT_CONTAIN" else ""
        return f"coalesce(cast({col} as varchar), '') {neg}ilike ?", [pattern.format(value)]
    return f"cast({col} as varchar) {'<>' if op == 'IS_NOT' else '='} ?", [value]


def parse_q(rtype: RecordType, q: str) -> tuple[str, list]:
    """`field OP value [AND|OR ...]` -> (SQL condition over alias t, parameters). Raises ValueError."""
    tokens: list[tuple[str, bool]] = []  # (text, was_quoted)
    pos = 0
    while pos < len(q):
        if not q[pos:].strip():
            break
        m = _TOKEN.match(q, pos)
        if m is None or m.end() == pos:
            raise ValueError(f"cannot read the query near '{q[pos : pos + 20]}'")
        quoted = m.group(1) is not None
        tokens.append((m.group(1).replace('\\"', '"') if quoted else m.group(2), quoted))
        pos = m.end()
    if not tokens:
        raise ValueError("the query is empty")
    parts: list[str] = []
    params: list = []
    i = 0
    while True:
        if i + 1 >= len(tokens):
            raise ValueError("expected <field> <operator> <value>")
        (name, _), (op, op_quoted) = tokens[i], tokens[i + 1]
        op = op.upper()
        if op_quoted:
            raise ValueError(f"expected an operator after '{name}'")
        i += 2
        value = None
        if op not in ("EMPTY", "EMPTY_NOT"):
            if i >= len(tokens):
                raise ValueError(f"operator {op} needs a value")
            value = tokens[i][0]
            i += 1
            while op == "ANY_OF" and value.endswith(",") and i < len(tokens):
                value += tokens[i][0]
                i += 1
        sql, args = _condition(rtype, name, op, value)
        parts.append(sql)
        params.extend(args)
        if i == len(tokens):
            break
        joiner = tokens[i][0].upper()
        if joiner not in ("AND", "OR") or tokens[i][1]:
            raise ValueError(f"expected AND or OR, found '{tokens[i][0]}'")
        parts.append(joiner.lower())
        i += 1
    return "(" + " ".join(parts) + ")", params


# -- record service: reads ---------------------------------------------------------------------
@router.get(RECORD + "/{name}")
async def list_records(request: Request, name: str):
    rtype = _type(name)
    world: World = request.app.state.world
    limit = _int(request, "limit", 1000, 1, 1000)
    offset = _int(request, "offset", 0, 0, 2**53)
    q = request.query_params.get("q")
    path = f"{RECORD}/{name}"
    if q is None or not q.strip():
        total = world.max_seq(rtype.table)
        start = offset
        if start and getattr(request.state, "fault_duplicate", False):
            start -= 1
            request.state.duplicated = True
        rows, _ = world.scan(ITEMS[name], after=start, limit=limit)
        return _envelope(request, path, [r.doc for r in rows], limit, offset, total, {})
    try:
        where, params = parse_q(rtype, q)
    except ValueError as exc:
        raise _bad(
            f"Invalid search query. Detailed unprocessed description follows. {exc}.",
            "INVALID_PARAMETER",
            "q",
        ) from None
    total = int(world.scalar(f"select count(*) from {rtype.table} t where {where}", params))
    docs = [
        r[0]
        for r in world.rows(
            f"select {_item_sql(name)} from {rtype.table} t where {where} order by t.seq limit ? offset ?",
            [*params, limit, offset],
        )
    ]
    return _envelope(request, path, docs, limit, offset, total, {"q": q})


# -- record keys -------------------------------------------------------------------------------
@dataclass
class _Keys:
    """What a NetSuite table's key lookups need, kept in memory so a write does not scan the table for
    an external id or count rows to check a reference.

    Valid while `version` is the world's version of the table: this module's own writes keep it in
    step (`_changed`); any other change (the admin API's lifecycle events, a rolled-back request)
    bumps the version and the next lookup rebuilds it. `numeric` says the table's ids follow the
    numeric id scheme without gaps (row seq s, for s = 1..max seq, has id numeric_id(table, s)); when
    it does not, lookups go to SQL as before.
    """

    version: int
    numeric: bool
    has_external_id: bool
    seqs: dict[str, list[int]] = field(default_factory=dict)  # external id -> its rows' seqs, ascending
    eids: dict[int, str] = field(default_factory=dict)  # seq -> external id (rows that have one)


_keys: weakref.WeakKeyDictionary[World, dict[str, _Keys]] = weakref.WeakKeyDictionary()


def _current_keys(world: World, table: str) -> _Keys | None:
    """`table`'s keys if they are up to date (no rebuild)."""
    found = _keys.get(world, {}).get(table)
    return found if found is not None and found.version == world.version(table) else None


def _table_keys(world: World, table: str) -> _Keys:
    found = _current_keys(world, table)
    if found is not None:
        return found
    rows, top, distinct, low, canonical = world.con.execute(
        f"select count(*), coalesce(max(seq), 0), count(distinct seq), coalesce(min(seq), 1),"
        f" coalesce(bool_and(id = ({NUMERIC_BASE[table]} + seq)::varchar), true) from {table}"
    ).fetchone()
    has_eid = "external_id" in world.columns(table)
    keys = _Keys(world.version(table), rows == top == distinct and low == 1 and canonical, has_eid)
    if keys.numeric and has_eid:
        for eid, seq in world.rows(
            f"select external_id, seq from {table} where external_id is not null order by seq"
        ):
            keys.seqs.setdefault(eid, []).append(seq)
            keys.eids[seq] = eid
    _keys.setdefault(world, {})[table] = keys
    return keys


def _keys_set(keys: _Keys | None, seq: int, eid: str | None) -> None:
    """Record that row `seq` now has external id `eid` (None: none)."""
    if keys is None or not keys.numeric or not keys.has_external_id:
        return
    old = keys.eids.get(seq)
    if old == eid:
        return
    if old is not None:
        keys.seqs[old].remove(seq)
        if not keys.seqs[old]:
            del keys.seqs[old]
        del keys.eids[seq]
    if eid is not None:
        bisect.insort(keys.seqs.setdefault(eid, []), seq)
        keys.eids[seq] = eid


def _changed(world: World, table: str, appended: int | None = None) -> None:
    """`world.appended(table, appended)` after an insert, else `world.updated(table)`, keeping the table's
    keys current if they were (the caller has applied its change to them)."""
    keys = _current_keys(world, table)
    if appended is not None:
        world.appended(table, appended)
    else:
        world.updated(table)
    if keys is not None:
        keys.version = world.version(table)


def _seq_for(world: World, rtype: RecordType, key: str) -> int | None:
    if key.startswith("eid:"):
        if "externalId" not in rtype.fields:
            return None
        keys = _table_keys(world, rtype.table)
        if keys.numeric and keys.has_external_id:
            seqs = keys.seqs.get(key[4:])
            return seqs[0] if seqs else None
        found = world.scalar(f"select min(seq) from {rtype.table} where external_id = ?", [key[4:]])
        return int(found) if found is not None else None
    seq = numeric_seq(rtype.table, key)
    if seq is None or seq > world.max_seq(rtype.table) or str(numeric_id(rtype.table, seq)) != key:
        return None
    return seq


def _not_found(rtype: RecordType, key: str) -> VendorError:
    return VendorError(
        404,
        f"The record instance does not exist. Provide a valid record instance ID ({rtype.name} {key}).",
        "NONEXISTENT_ID",
    )


@router.get(RECORD + "/{name}/{key}")
async def get_record(request: Request, name: str, key: str):
    rtype = _type(name)
    world: World = request.app.state.world
    row = world.get(FULL[name], _seq_for(world, rtype, key))
    if row is None:
        raise _not_found(rtype, key)
    return _send(request, row.doc)


# -- record service: writes --------------------------------------------------------------------
def _ref_id(world: World, spec: Field, name: str, value: Any) -> str:
    raw = value.get("id") if isinstance(value, dict) else value
    target = spec.target or ""
    keys = _table_keys(world, target)
    if isinstance(value, dict) and raw is None and value.get("externalId") is not None:
        if keys.numeric and keys.has_external_id:
            seqs = keys.seqs.get(str(value["externalId"]))
            found = min(str(numeric_id(target, seq)) for seq in seqs) if seqs else None
        else:
            found = world.scalar(
                f"select min(id) from {target} where external_id = ?", [str(value["externalId"])]
            )
        if found is None:
            raise _bad(
                f"Invalid Field Value {value['externalId']} for the following field: {name}",
                "USER_ERROR",
                name,
            )
        return str(found)
    if isinstance(raw, bool) or not isinstance(raw, str | int) or str(raw) == "":
        raise _bad(
            f'Invalid Field Value for the following field: {name}. Provide a reference {{"id": ...}}.',
            "USER_ERROR",
            name,
        )
    if keys.numeric:
        seq = numeric_seq(target, str(raw))
        exists = seq is not None and seq <= world.max_seq(target) and str(numeric_id(target, seq)) == str(raw)
    else:
        exists = world.scalar(f"select count(*) from {target} where id = ?", [str(raw)]) != 0
    if not exists:
        raise _bad(f"Invalid Field Value {raw} for the following field: {name}", "USER_ERROR", name)
    return str(raw)


def _currency_code(name: str, value: Any) -> str:
    raw = value.get("id") or value.get("refName") if isinstance(value, dict) else value
    text = str(raw) if isinstance(raw, str | int) and not isinstance(raw, bool) else ""
    code = CURRENCY_CODES.get(text) or (text.upper() if text.upper() in CURRENCIES else None)
    if code is None:
        raise _bad(f"Invalid Field Value {raw} for the following field: {name}", "USER_ERROR", name)
    return code


def _date_epoch(name: str, value: Any) -> int:
    try:
        day = date.fromisoformat(str(value)[:10]) if isinstance(value, str) else None
    except ValueError:
        day = None
    if day is None:
        raise _bad(
            f"Invalid Field Value {value} for the following field: {name}. Use YYYY-MM-DD.",
            "USER_ERROR",
            name,
        )
    return int(datetime(day.year, day.month, day.day, 12, tzinfo=PACIFIC).timestamp())


def _convert(world: World, rtype: RecordType, body: dict, strict: bool) -> tuple[dict[str, Any], list[dict]]:
    """Request fields -> (column values, payment applications). Raises VendorError naming the field."""
    values: dict[str, Any] = {}
    applies: list[dict] = []
    for name, value in body.items():
        spec = rtype.fields.get(name)
        if spec is None:
            if strict and name != "links":
                raise _bad(
                    f"Invalid field name '{name}'. The field does not exist on the {rtype.name} record.",
                    "INVALID_FIELD_NAME",
                    name,
                )
            continue
        if not spec.writable or spec.column is None and spec.kind != "apply":
            continue
        if spec.kind == "apply":
            items = value.get("items") if isinstance(value, dict) else value
            if not isinstance(items, list):
                raise _bad(
                    'Invalid Field Value for the following field: apply. Expected {"items": [...]}.',
                    "USER_ERROR",
                    "apply",
                )
            for item in items:
                if not isinstance(item, dict) or item.get("apply") is False:
                    continue
                doc = _ref_id(
                    world, Field("invoice_id", "ref", "netsuite_invoices"), "apply.doc", item.get("doc")
                )
                amount = item.get("amount")
                if amount is not None and (isinstance(amount, bool) or not isinstance(amount, int | float)):
                    raise _bad(
                        "Invalid Field Value for the following field: apply.amount", "USER_ERROR", "apply"
                    )
                applies.append({"invoice": doc, "amount": amount})
            continue
        if value is None:
            values[spec.column] = None
        elif spec.kind == "ref":
            values[spec.column] = _ref_id(world, spec, name, value)
        elif spec.kind == "currency":
            values[spec.column] = _currency_code(name, value)
        elif spec.kind == "number":
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise _bad(
                    f"Invalid Field Value {value} for the following field: {name}. Provide a number.",
                    "USER_ERROR",
                    name,
                )
            values[spec.column] = round(float(value), 2)
        elif spec.kind == "boolean":
            if not isinstance(value, bool):
                raise _bad(
                    f"Invalid Field Value {value} for the following field: {name}.", "USER_ERROR", name
                )
            values[spec.column] = value
        elif spec.kind == "date":
            values[spec.column] = _date_epoch(name, value)
        elif spec.kind == "status":
            status = value.get("id") if isinstance(value, dict) else value
            if status not in rtype.statuses:
                raise _bad(
                    f"Invalid Field Value {status} for the following field: {name}. "
                    f"Use one of: {', '.join(rtype.statuses)}.",
                    "USER_ERROR",
                    name,
                )
            values[spec.column] = status
        else:
            if not isinstance(value, str | int) or isinstance(value, bool):
                raise _bad(
                    f"Invalid Field Value {value} for the following field: {name}.", "USER_ERROR", name
                )
            values[spec.column] = str(value)
    if "invoice_id" in values and values["invoice_id"] and not applies:
        applies.append({"invoice": values["invoice_id"], "amount": None})
    if applies and "invoice_id" not in values:
        values["invoice_id"] = applies[0]["invoice"]
    return values, applies


def _insert(world: World, rtype: RecordType, values: dict[str, Any], body: dict) -> tuple[int, Any]:
    """Insert a record; (its seq, the amount stored for a customer payment, else None)."""
    missing = [f for f in rtype.required if body.get(f) in (None, "")]
    if missing:
        raise _bad(f"Please enter value(s) for: {', '.join(missing)}", "USER_ERROR", missing[0])
    now = int(time.time())
    seq = world.next_seq(rtype.table)
    row: dict[str, Any] = {
        "seq": seq,
        "id": str(numeric_id(rtype.table, seq)),
        "external_id": None,
        **rtype.defaults,
        "created_at": now,
        "updated_at": now,
    }
    if rtype.tran_prefix:
        row["tran_id"] = f"{rtype.tran_prefix}{numeric_id(rtype.table, seq)}"
    if rtype.table in ("netsuite_invoices", "netsuite_customer_payments", "netsuite_credit_memos"):
        row["tran_at"] = now
    if rtype.table == "netsuite_sales_orders":
        row["start_at"] = now
    if rtype.table == "netsuite_customers":
        row["entity_id"] = f"CUST{row['id']}"
        if "currency" not in values:
            row["currency"] = world.scalar(
                "select currency from netsuite_subsidiaries where id = ?", [values["subsidiary_id"]]
            )
    row.update(values)
    if rtype.table == "netsuite_invoices":
        row.setdefault("amount_remaining", row["total"])
        row["status"] = "paidInFull" if float(row["amount_remaining"]) <= 0 else "open"
    columns = world.columns(rtype.table)
    keys = _current_keys(world, rtype.table)
    payment = rtype.table == "netsuite_customer_payments"
    stored = world.con.execute(
        f"insert into {rtype.table} ({', '.join(columns)}) values ({', '.join('?' for _ in columns)})"
        + (" returning amount" if payment else ""),
        [row.get(c) for c in columns],
    ).fetchall()
    _keys_set(keys, seq, row.get("external_id"))
    _changed(world, rtype.table, appended=seq)
    return seq, stored[0][0] if payment else None


def _update(world: World, rtype: RecordType, seq: int, values: dict[str, Any]) -> None:
    values = {**values, "updated_at": int(time.time())}
    sets = ", ".join(f"{c} = ?" for c in values)
    world.con.execute(f"update {rtype.table} set {sets} where seq = ?", [*values.values(), seq])
    if "external_id" in values:
        _keys_set(_current_keys(world, rtype.table), seq, values["external_id"])
    if rtype.table == "netsuite_invoices" and ("amount_remaining" in values or "total" in values):
        world.con.execute(
            "update netsuite_invoices set status = case when amount_remaining <= 0 then 'paidInFull'"
            " else 'open' end where seq = ?",
            [seq],
        )


def _apply_payment(world: World, amount: Any, applies: list[dict]) -> None:
    """Lower each applied invoice's amount remaining by the payment's `amount` (as stored); paid in full
    at zero."""
    left = float(amount)
    now = int(time.time())
    for item in applies:
        share = left if item["amount"] is None else min(float(item["amount"]), left)
        if share <= 0:
            continue
        left -= share
        world.con.execute(
            "update netsuite_invoices set amount_remaining = greatest(amount_remaining - ?, 0),"
            " status = case when amount_remaining - ? <= 0 then 'paidInFull' else 'open' end, updated_at = ?"
            " where id = ?",
            [share, share, now, item["invoice"]],
        )
    _changed(world, "netsuite_invoices")


async def _write(request: Request, name: str, key: str | None) -> Response:
    rtype = _type(name)
    world: World = request.app.state.world
    body: Any = None
    try:
        body = await read_json_body(request)
    except VendorError as exc:
        log_write(request, exc.status, body, error_body(exc.status, exc.message, exc.code, exc.param))
        raise
    # no await from here on: the write and its log entry are one DuckDB transaction (one commit)
    world.con.execute("begin transaction")
    try:
        response = _apply_write(request, world, rtype, name, key, body)
    except BaseException:
        _finish(world)
        raise
    _finish(world)
    return response


def _finish(world: World) -> None:
    """Commit what the request did (as autocommit would have, statement by statement), or roll back a
    transaction DuckDB itself aborted."""
    try:
        world.con.execute("commit")
    except duckdb.Error:
        world.con.execute("rollback")
        world.changed_all()  # what the request wrote is gone: no cached top or block may keep it


def _apply_write(
    request: Request, world: World, rtype: RecordType, name: str, key: str | None, body: Any
) -> Response:
    try:
        if not isinstance(body, dict):
            raise _bad("The request body must be a JSON object.", "INVALID_CONTENT")
        strict = request.headers.get("x-netsuite-propertynamevalidation", "").lower() == "error"
        values, applies = _convert(world, rtype, body, strict)
        status, headers, amount = 204, {}, None
        if request.method == "POST":
            seq, amount = _insert(world, rtype, values, body)
            created = True
        else:
            seq = _seq_for(world, rtype, key or "")
            created = seq is None
            if created and (request.method == "PATCH" or not (key or "").startswith("eid:")):
                raise _not_found(rtype, key or "")
            if created:
                values["external_id"] = key[4:]
                seq, amount = _insert(world, rtype, values, {**body, "externalId": key[4:]})
            elif values:
                _update(world, rtype, seq, values)
        if created and rtype.name == "customerPayment" and applies:
            _apply_payment(world, amount, applies)
        if not created:  # an insert told the world already (World.appended)
            _changed(world, rtype.table)
        new_id = numeric_id(rtype.table, seq)
        headers["Location"] = f"{_origin(request)}{RECORD}/{name}/{new_id}"
    except VendorError as exc:
        log_write(request, exc.status, body, error_body(exc.status, exc.message, exc.code, exc.param))
        raise
    log_write(request, status, body, {"id": str(new_id), "location": headers["Location"], "created": created})
    return Response(status_code=status, headers=headers)


@router.post(RECORD + "/{name}")
async def create_record(request: Request, name: str):
    return await _write(request, name, None)


@router.patch(RECORD + "/{name}/{key}")
async def patch_record(request: Request, name: str, key: str):
    return await _write(request, name, key)


@router.put(RECORD + "/{name}/{key}")
async def upsert_record(request: Request, name: str, key: str):
    if not key.startswith("eid:"):
        raise _bad(
            "Upsert (PUT) requires an external ID in the URL: /record/v1/{type}/eid:{externalId}.",
            "INVALID_PARAMETER",
        )
    return await _write(request, name, key)


# -- SuiteQL -----------------------------------------------------------------------------------
_VIEWS_SQL = [
    # Oracle's TO_TIMESTAMP(text, format) for the formats SuiteQL clients use (DuckDB's strptime needs
    # a constant format, so the Oracle format picks one of a fixed list).
    "create or replace temp macro to_timestamp(text, fmt) as case upper(fmt)"
    " when 'YYYY-MM-DD HH24:MI:SS' then strptime(text, '%Y-%m-%d %H:%M:%S')"
    " when 'YYYY-MM-DD' then strptime(text, '%Y-%m-%d')"
    " when 'MM/DD/YYYY' then strptime(text, '%m/%d/%Y')"
    " else error('TO_TIMESTAMP format not supported: ' || fmt) end",
    "create or replace temp view customer as select t.id::bigint as id, t.entity_id as entityid,"
    " t.company_name as companyname, t.email, t.subsidiary_id::bigint as subsidiary,"
    f" ({_CURRENCY_ID_SQL.format(c='t.currency')})::bigint as currency,"
    " case when t.is_inactive then 'T' else 'F' end as isinactive, t.external_id as externalid,"
    " make_timestamp((t.created_at - 28800) * 1000000) as datecreated,"
    " make_timestamp((t.updated_at - 28800) * 1000000) as lastmodifieddate from netsuite_customers t",
    "create or replace temp view subsidiary as select t.id::bigint as id, t.name,"
    f" ({_CURRENCY_ID_SQL.format(c='t.currency')})::bigint as currency,"
    " make_timestamp((t.updated_at - 28800) * 1000000) as lastmodifieddate from netsuite_subsidiaries t",
    "create or replace temp view currency as select * from (values "
    + ", ".join(f"({v}, '{k}', '{k}')" for k, v in CURRENCIES.items())
    + ") v(id, symbol, name)",
    "create or replace temp view transaction as "
    + " union all ".join(
        f"select t.id::bigint as id, t.tran_id as tranid, '{code}' as type, t.customer_id::bigint as entity,"
        f" ({_CURRENCY_ID_SQL.format(c='t.currency')})::bigint as currency, {total} as foreigntotal,"
        f" {unpaid} as foreignamountremaining, {status} as status, {created_from}::bigint as createdfrom,"
        f" make_timestamp(({tran} - 28800) * 1000000)::date as trandate,"
        f" make_timestamp(({due} - 28800) * 1000000)::date as duedate, t.external_id as externalid,"
        " make_timestamp((t.created_at - 28800) * 1000000) as createddate,"
        f" make_timestamp((t.updated_at - 28800) * 1000000) as lastmodifieddate from {table} t"
        for code, table, total, unpaid, status, created_from, tran, due in (
            (
                "SalesOrd",
                "netsuite_sales_orders",
                "t.total",
                "null::decimal(18,2)",
                "t.status",
                "null",
                "t.created_at",
                "null::bigint",
            ),
            (
                "CustInvc",
                "netsuite_invoices",
                "t.total",
                "t.amount_remaining",
                "t.status",
                "t.sales_order_id",
                "t.tran_at",
                "t.due_at",
            ),
            (
                "CustPymt",
                "netsuite_customer_payments",
                "t.amount",
                "null::decimal(18,2)",
                "null::varchar",
                "t.invoice_id",
                "t.tran_at",
                "null::bigint",
            ),
            (
                "CustCred",
                "netsuite_credit_memos",
                "t.amount",
                "null::decimal(18,2)",
                "null::varchar",
                "t.invoice_id",
                "t.tran_at",
                "null::bigint",
            ),
        )
    ),
    "create or replace temp macro nvl(a, b) as coalesce(a, b)",
    "create or replace temp macro to_date(s, fmt) as case upper(fmt)"
    " when 'YYYY-MM-DD' then strptime(s, '%Y-%m-%d') when 'MM/DD/YYYY' then strptime(s, '%m/%d/%Y')"
    " when 'YYYY-MM-DD HH24:MI:SS' then strptime(s, '%Y-%m-%d %H:%M:%S') end",
]
VIEWS = {"customer", "transaction", "subsidiary", "currency"}
FUNCTIONS = {
    "upper",
    "lower",
    "coalesce",
    "nvl",
    "count",
    "count_star",
    "sum",
    "min",
    "max",
    "avg",
    "round",
    "abs",
    "trunc",
    "floor",
    "ceil",
    "ceiling",
    "length",
    "substr",
    "substring",
    "concat",
    "trim",
    "ltrim",
    "rtrim",
    "replace",
    "nullif",
    "to_timestamp",
    "to_date",
    "greatest",
    "least",
    "row_number",
    "rank",
    "dense_rank",
    "lpad",
    "rpad",
    "date_trunc",
    "extract",
    "date_part",
    "year",
    "month",
    "day",
    "strftime",
    "strptime",
    "now",
    "current_date",
    "~~",
    "!~~",
    "~~*",
    "!~~*",
    "||",
    "+",
    "-",
    "*",
    "/",
    "%",
}
_views_ready: set[int] = set()


def _ensure_views(world: World) -> None:
    if id(world.con) not in _views_ready:
        for sql in _VIEWS_SQL:
            world.con.execute(sql)
        _views_ready.add(id(world.con))


def _check_tree(node: Any, ctes: set[str]) -> None:
    if isinstance(node, list):
        for item in node:
            _check_tree(item, ctes)
        return
    if not isinstance(node, dict):
        return
    cte_map = node.get("cte_map")
    if isinstance(cte_map, dict):
        ctes = ctes | {str(e.get("key", "")).lower() for e in cte_map.get("map", []) if isinstance(e, dict)}
    kind = node.get("type")
    if kind == "BASE_TABLE":
        table = str(node.get("table_name", "")).lower()
        if node.get("schema_name") or node.get("catalog_name") or table not in VIEWS | ctes:
            raise ValueError(
                f"Unknown identifier '{node.get('table_name')}'. Use one of: {', '.join(sorted(VIEWS))}"
            )
    elif kind == "TABLE_FUNCTION":
        raise ValueError("Table functions are not supported in SuiteQL")
    if node.get("class") in ("FUNCTION", "WINDOW"):
        fname = str(node.get("function_name", "")).lower()
        if (
            node.get("schema")
            or node.get("catalog")
            or (fname not in FUNCTIONS and not node.get("is_operator"))
        ):
            raise ValueError(f"Unsupported function '{fname}'")
    for value in node.values():
        if isinstance(value, dict | list):
            _check_tree(value, ctes)


def _validate_suiteql(world: World, q: str) -> None:
    tree = orjson.loads(world.scalar("select json_serialize_sql(?)", [q]))
    if tree.get("error"):
        raise ValueError(tree.get("error_message", "syntax error"))
    statements = tree.get("statements", [])
    if len(statements) != 1:
        raise ValueError("Exactly one SELECT statement is allowed")
    _check_tree(statements[0], set())


_results: OrderedDict[tuple, list[str]] = OrderedDict()
_NS_TABLES = tuple(t.table for t in TYPES.values())
_CACHED_QUERIES = 8


def _rendered(world: World, q: str) -> list[str]:
    """Validate `q` and render its whole result (at most MAX_SUITEQL_RESULTS rows) as item documents,
    cached until a NetSuite table changes: paging a query runs it once, not once per page."""
    key = (id(world), q, tuple(world.version(t) for t in _NS_TABLES))  # bumped by changed()
    found = _results.get(key)
    if found is None:
        _validate_suiteql(world, q)
        columns = [d[0].lower() for d in world.con.execute(f"select * from ({q}) sub limit 0").description]
        aliases = ", ".join(f"c{i}" for i in range(len(columns)))
        pairs = ", ".join(
            f"'{name.replace(chr(39), '')}', cast(c{i} as varchar)" for i, name in enumerate(columns)
        )
        # json_merge_patch drops the null members: NetSuite leaves empty columns out of an item
        render = f"json_merge_patch('{{}}', json_object('links', json('[]'), {pairs}))::varchar"
        found = [
            r[0]
            for r in world.rows(f"select {render} from ({q}) sub({aliases}) limit ?", [MAX_SUITEQL_RESULTS])
        ]
        _results[key] = found
        while len(_results) > _CACHED_QUERIES:
            _results.popitem(last=False)
    else:
        _results.move_to_end(key)
    return found


@router.post(BASE + "/query/v1/suiteql")
async def suiteql(request: Request):
    world: World = request.app.state.world
    if "transient" not in request.headers.get("prefer", "").lower():
        raise _bad("The 'Prefer: transient' header is required for SuiteQL queries.", "INVALID_HEADER")
    limit = _int(request, "limit", 1000, 1, 1000)
    offset = _int(request, "offset", 0, 0, MAX_SUITEQL_RESULTS - 1)
    body = await read_json_body(request)
    q = body.get("q") if isinstance(body, dict) else None
    if not isinstance(q, str) or not q.strip():
        raise _bad(
            "The request body must be a JSON object with a 'q' string holding a SuiteQL query.",
            "INVALID_PARAMETER",
            "q",
        )
    q = q.strip().rstrip(";")
    _ensure_views(world)
    try:
        result = _rendered(world, q)
    except (ValueError, duckdb.Error) as exc:  # a parse/bind error is the client's query
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise _bad(
            f"Invalid search query. Detailed unprocessed description follows. {message}",
            "INVALID_PARAMETER",
            "q",
        ) from None
    docs = result[offset : offset + limit]
    return _envelope(request, f"{BASE}/query/v1/suiteql", docs, limit, offset, len(result), {})
