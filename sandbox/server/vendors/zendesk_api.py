"""Zendesk Support sandbox: organizations, users and tickets over Zendesk's REST API v2.

Speaks enough of the wire protocol for zenpy (pointed here with ZENPY_FORCE_NETLOC/ZENPY_FORCE_SCHEME)
and the revsync connector: Basic `{email}/token:{api_token}` or Bearer auth; cursor paging
(`page[size]`/`page[after]`/`page[before]`) with absolute `links` on the request's own host; classic
offset paging (`page`/`per_page`) that fails past 10,000 records as Zendesk does; show endpoints; the
cursor-based incremental exports for tickets and users and the time-based one for organizations; and
organization writes (PUT, create_or_update, search by external_id).

Deviation from real Zendesk: the incremental exports do NOT hold back changes made in the last minute.
The sandbox keeps the world consistent with the wall clock and ages it with `advance` instead, so a
pipeline run right after a change sees it. Everything else follows the public docs.

Record `url` fields are rendered with a placeholder host in SQL (so pages stay cached) and the
placeholder is replaced with the request's own origin once per response.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections import deque
from typing import Any
from urllib.parse import urlencode

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from sandbox.server.app import Vendor, VendorError, int_param, json_response, log_write, read_json_body
from sandbox.server.world import Resource, World
from sandbox.world.ids import numeric_id, numeric_seq

NAME = "zendesk"
ORIGIN = "__ZD_ORIGIN__"  # replaced by the request's scheme://host in every response body
RATE_LIMIT = 700  # requests per minute (Enterprise plan)
OFFSET_LIMIT = 10_000  # offset paging stops here (400), as Zendesk does since 2023
SUPPORT_TIERS = ("basic", "standard", "premium", "enterprise")

_ORG_DOC = (
    "json_object('url', '"
    + ORIGIN
    + "/api/v2/organizations/' || t.id || '.json', 'id', t.id, 'name', t.name,"
    " 'shared_tickets', false, 'shared_comments', false, 'external_id', t.external_id,"
    " 'created_at', iso_z(t.created_at), 'updated_at', iso_z(t.updated_at), 'domain_names', t.domain_names,"
    " 'details', '', 'notes', '', 'group_id', null, 'tags', t.tags,"
    " 'organization_fields', t.organization_fields)::varchar"
)
_USER_DOC = (
    "json_object('id', t.id, 'url', '" + ORIGIN + "/api/v2/users/' || t.id || '.json', 'name', t.name,"
    " 'email', t.email, 'created_at', iso_z(t.created_at), 'updated_at', iso_z(t.updated_at),"
    " 'time_zone', 'UTC', 'locale', 'en-US', 'organization_id', t.organization_id, 'role', t.role,"
    " 'verified', true, 'active', true, 'suspended', false, 'tags', json('[]'),"
    " 'user_fields', json('{}'))::varchar"
)
_TICKET_DOC = (
    "json_object('url', '" + ORIGIN + "/api/v2/tickets/' || t.id || '.json', 'id', t.id, 'external_id', null,"
    " 'created_at', iso_z(t.created_at), 'updated_at', iso_z(t.updated_at), 'type', null,"
    " 'subject', t.subject, 'raw_subject', t.subject, 'status', t.status, 'priority', t.priority,"
    " 'requester_id', t.requester_id, 'submitter_id', t.requester_id, 'assignee_id', null,"
    " 'organization_id', t.organization_id, 'group_id', null, 'tags', json('[]'),"
    " 'generated_timestamp', t.updated_at)::varchar"
)

# plural name -> (table, doc expression)
KINDS: dict[str, tuple[str, str]] = {
    "organizations": ("zendesk_organizations", _ORG_DOC),
    "users": ("zendesk_users", _USER_DOC),
    "tickets": ("zendesk_tickets", _TICKET_DOC),
}
RESOURCES = {
    kind: Resource(
        f"zendesk.{kind}", table, f"select t.seq, {doc} from {table} t where t.seq between $lo and $hi"
    )
    for kind, (table, doc) in KINDS.items()
}

router = APIRouter()
_calls: deque[float] = deque()


# -- errors, auth, headers ---------------------------------------------------------------------
_GENERIC_CODES = {
    "not_found": "InvalidEndpoint",
    "not_allowed": "InvalidEndpoint",
    "invalid_json": "InvalidJSON",
    "invalid_request": "InvalidValue",
    "parameter_invalid_integer": "InvalidValue",
    "parameter_out_of_range": "InvalidValue",
    "rate_limit": "TooManyRequests",
    "maintenance": "ServiceUnavailable",
    "server_error": "InternalServerError",
    "internal_error": "InternalServerError",
}


def error_body(status: int, message: str, code: str | None, param: str | None) -> dict:
    if status == 401:
        return {"error": "Couldn't authenticate you"}
    if code == "not_found":
        return {"error": "InvalidEndpoint", "description": "Not found"}
    return {"error": _GENERIC_CODES.get(code or "", code or "InvalidValue"), "description": message}


_creds_cache: dict[int, tuple[str | None, str | None]] = {}


def _creds(world: World) -> tuple[str | None, str | None]:
    found = _creds_cache.get(id(world))
    if found is None:
        found = (world.meta("cred.zendesk.email"), world.meta("cred.zendesk.token"))
        _creds_cache[id(world)] = found
    return found


def authenticate(request: Request) -> str:
    now = time.monotonic()
    _calls.append(now)
    while _calls and _calls[0] <= now - 60:
        _calls.popleft()
    email, token = _creds(request.app.state.world)
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and token and value.strip() == token:
        return "bearer"
    if scheme.lower() == "basic":
        try:
            user, _, secret = base64.b64decode(value.strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            user, secret = "", ""
        if email and token and user == f"{email}/token" and secret == token:
            return email
    raise VendorError(401, "Couldn't authenticate you")


def default_headers() -> dict[str, str]:
    return {"X-Rate-Limit": str(RATE_LIMIT), "X-Rate-Limit-Remaining": str(max(RATE_LIMIT - len(_calls), 0))}


def vendor() -> Vendor:
    return Vendor(
        name=NAME,
        router=router,
        error_body=error_body,
        authenticate=authenticate,
        default_headers=default_headers,
    )


def drift(record: dict) -> None:
    """Schema drift: a new field appears and `id` turns from a number into a string."""
    record["custom_status_id"] = 360000001
    if "id" in record:
        record["id"] = str(record["id"])


# -- helpers -----------------------------------------------------------------------------------
def _origin(request: Request) -> str:
    host = request.headers.get("host") or f"{request.url.hostname}:{request.url.port}"
    return f"{request.url.scheme}://{host}"


def _send(request: Request, body: str, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return json_response(body.replace(ORIGIN, _origin(request)), status, headers)


def _int(request: Request, name: str, default: int, lo: int, hi: int, code: str = "InvalidValue") -> int:
    return int_param(
        request,
        name,
        default,
        lo,
        hi,
        invalid=lambda raw: VendorError(400, f"{name} must be an integer, got {raw!r}", code),
        out_of_range=lambda value: VendorError(
            400, f"{name} must be between {lo} and {hi}, got {value}", code
        ),
    )


def _encode_cursor(*parts: int) -> str:
    return base64.urlsafe_b64encode(".".join(str(p) for p in parts).encode()).decode().rstrip("=")


def _decode_cursor(raw: str, arity: int) -> tuple[int, ...]:
    try:
        text = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
        parts = tuple(int(p) for p in text.split("."))
    except (binascii.Error, UnicodeDecodeError, ValueError):
        parts = ()
    if len(parts) != arity:
        raise VendorError(400, "The cursor is invalid or has expired.", "InvalidPaginationParameter")
    return parts


def _kind(name: str) -> str:
    kind = name.removesuffix(".json")
    if kind not in KINDS:
        raise VendorError(404, "Not found", "not_found")
    return kind


def _seq_of(kind: str, raw: str) -> int:
    seq = numeric_seq(KINDS[kind][0], raw.removesuffix(".json"))
    if seq is None:
        raise VendorError(404, "Not found", "RecordNotFound")
    return seq


def _list_url(request: Request, params: dict[str, Any]) -> str:
    return f"{_origin(request)}{request.url.path}?{urlencode(params, safe='[]')}"


# -- lists -------------------------------------------------------------------------------------
def _cursor_page(request: Request, kind: str, size: int) -> Response:
    world: World = request.app.state.world
    q = request.query_params
    after_raw, before_raw = q.get("page[after]"), q.get("page[before]")
    if after_raw and before_raw:
        raise VendorError(
            400, "page[after] and page[before] are mutually exclusive", "InvalidPaginationParameter"
        )
    resource = RESOURCES[kind]
    if before_raw:
        (before,) = _decode_cursor(before_raw, 1)
        rows, more = world.scan(resource, before=before, descending=True, limit=size)
        rows.reverse()
    else:
        after = _decode_cursor(after_raw, 1)[0] if after_raw else 0
        if after and getattr(request.state, "fault_duplicate", False):
            after -= 1
            request.state.duplicated = True
        rows, more = world.scan(resource, after=after, limit=size)
    first = _encode_cursor(rows[0].seq) if rows else None
    last = _encode_cursor(rows[-1].seq) if rows else None
    base = {"page[size]": size}
    links = {
        "prev": _list_url(request, {**base, "page[before]": first}) if first else None,
        "next": _list_url(request, {**base, "page[after]": last}) if last else None,
    }
    meta = {"has_more": more, "after_cursor": last, "before_cursor": first}
    tail = orjson.dumps({"meta": meta, "links": links}).decode()
    body = '{"' + kind + '":[' + ",".join(r.doc for r in rows) + "]," + tail[1:]
    return _send(request, body)


def _offset_page(request: Request, kind: str) -> Response:
    world: World = request.app.state.world
    per_page = _int(request, "per_page", 100, 1, 100)
    page = _int(request, "page", 1, 1, 10**9)
    if page * per_page > OFFSET_LIMIT:
        raise VendorError(
            400,
            f"Offset pagination is limited to the first {OFFSET_LIMIT} records; use cursor pagination "
            "(page[size]) to go further.",
            "InvalidPaginationParameter",
        )
    after = (page - 1) * per_page
    if after and getattr(request.state, "fault_duplicate", False):
        after -= 1
        request.state.duplicated = True
    rows, more = world.scan(RESOURCES[kind], after=after, limit=per_page)
    count = int(world.scalar(f"select count(*) from {KINDS[kind][0]}"))
    tail = {
        "next_page": _list_url(request, {"page": page + 1, "per_page": per_page}) if more else None,
        "previous_page": _list_url(request, {"page": page - 1, "per_page": per_page}) if page > 1 else None,
        "count": count,
    }
    body = '{"' + kind + '":[' + ",".join(r.doc for r in rows) + "]," + orjson.dumps(tail).decode()[1:]
    return _send(request, body)


@router.get("/api/v2/{name}")
async def list_records(request: Request, name: str):
    kind = _kind(name)
    raw_size = request.query_params.get("page[size]")
    if raw_size is not None:
        size = _int(request, "page[size]", 100, 1, 100, "InvalidPaginationParameter")
        return _cursor_page(request, kind, size)
    return _offset_page(request, kind)


# -- search and incremental exports (before the {id} routes so they win) -----------------------
@router.get("/api/v2/organizations/search{suffix:path}")
async def search_organizations(request: Request, suffix: str):
    if suffix not in ("", ".json"):
        raise VendorError(404, "Not found", "not_found")
    world: World = request.app.state.world
    external_id, name = request.query_params.get("external_id"), request.query_params.get("name")
    if external_id is None and name is None:
        raise VendorError(400, "Either external_id or name is required", "InvalidValue")
    column, value = ("external_id", external_id) if external_id is not None else ("name", name)
    docs = [
        r[0]
        for r in world.rows(
            f"select {_ORG_DOC} from zendesk_organizations t where t.{column} = ? order by t.seq", [value]
        )
    ]
    body = (
        '{"organizations":['
        + ",".join(docs)
        + '],"next_page":null,"previous_page":null,"count":'
        + str(len(docs))
        + "}"
    )
    return _send(request, body)


def _start_time(request: Request) -> int:
    raw = request.query_params.get("start_time")
    if raw is None or raw == "":
        raise VendorError(400, "start_time is required", "InvalidValue")
    try:
        start = int(raw)
    except ValueError:
        raise VendorError(400, f"start_time must be a unix timestamp, got {raw!r}", "InvalidValue") from None
    if start > int(time.time()):
        raise VendorError(
            400, "Too recent start_time. Use a start_time at least one minute in the past.", "InvalidValue"
        )
    return max(start, 0)


@router.get("/api/v2/incremental/{name}/cursor.json")
async def incremental_cursor(request: Request, name: str):
    if name not in ("tickets", "users"):
        raise VendorError(404, "Not found", "not_found")
    world: World = request.app.state.world
    table, doc = KINDS[name]
    per_page = _int(request, "per_page", 1000, 1, 1000)
    cursor = request.query_params.get("cursor")
    position = _decode_cursor(cursor, 2) if cursor else (_start_time(request), 0)
    rows = world.rows(
        f"select t.updated_at, t.id, {doc} from {table} t where (t.updated_at, t.id) > (?, ?)"
        " order by t.updated_at, t.id limit ?",
        [position[0], position[1] if cursor else -1, per_page + 1],
    )
    end_of_stream = len(rows) <= per_page
    rows = rows[:per_page]
    after = _encode_cursor(rows[-1][0], rows[-1][1]) if rows else (cursor or _encode_cursor(position[0], -1))
    before = _encode_cursor(rows[0][0], rows[0][1]) if rows else None
    base = f"{_origin(request)}/api/v2/incremental/{name}/cursor.json?"
    extra = {} if per_page == 1000 else {"per_page": per_page}
    tail = {
        "after_url": base + urlencode({**extra, "cursor": after}),
        "before_url": base + urlencode({**extra, "cursor": before}) if before else None,
        "after_cursor": after,
        "before_cursor": before,
        "end_of_stream": end_of_stream,
    }
    body = '{"' + name + '":[' + ",".join(r[2] for r in rows) + "]," + orjson.dumps(tail).decode()[1:]
    return _send(request, body)


@router.get("/api/v2/incremental/organizations{suffix:path}")
async def incremental_organizations(request: Request, suffix: str):
    if suffix not in ("", ".json"):
        raise VendorError(404, "Not found", "not_found")
    world: World = request.app.state.world
    start = _start_time(request)
    per_page = _int(request, "per_page", 1000, 1, 1000)
    sql = f"select t.updated_at, {_ORG_DOC} from zendesk_organizations t where t.updated_at >= ?"
    rows = world.rows(sql + " order by t.updated_at, t.id limit ?", [start, per_page])
    end_of_stream = len(rows) < per_page
    if rows and not end_of_stream and rows[-1][0] == start:
        # The whole page shares one timestamp: return all of them, as Zendesk does, so paging advances.
        rows = world.rows(sql + " and t.updated_at = ? order by t.id", [start, start])
    end_time = rows[-1][0] if rows else start
    if rows and end_time == start and not end_of_stream:
        end_time = start + 1
    next_page = f"{_origin(request)}/api/v2/incremental/organizations.json?" + urlencode(
        {"start_time": end_time, **({} if per_page == 1000 else {"per_page": per_page})}
    )
    tail = {"next_page": next_page, "end_time": end_time, "count": len(rows), "end_of_stream": end_of_stream}
    body = '{"organizations":[' + ",".join(r[1] for r in rows) + "]," + orjson.dumps(tail).decode()[1:]
    return _send(request, body)


# -- writes ------------------------------------------------------------------------------------
_ORG_FIELDS = {
    "name",
    "external_id",
    "domain_names",
    "tags",
    "organization_fields",
    "details",
    "notes",
    "group_id",
    "shared_tickets",
    "shared_comments",
    "id",
    "url",
    "created_at",
    "updated_at",
}


def _invalid(request: Request, details: dict[str, str], body: Any, status: int = 422) -> Response:
    payload = {
        "error": "RecordInvalid",
        "description": "Record validation errors",
        "details": {
            field: [{"description": text, "error": "InvalidValue"}] for field, text in details.items()
        },
    }
    log_write(request, status, body, payload)
    return json_response(payload, status)


def _org_input(body: Any) -> dict:
    if not isinstance(body, dict) or not isinstance(body.get("organization"), dict):
        raise VendorError(
            400, "The request body must be a JSON object with an 'organization' object.", "InvalidValue"
        )
    return body["organization"]


def _validate_org(org: dict) -> dict[str, str]:
    problems: dict[str, str] = {}
    unknown = sorted(set(org) - _ORG_FIELDS)
    for key in unknown:
        problems[key] = f"{key}: is not a valid organization attribute"
    if "name" in org and (not isinstance(org["name"], str) or not org["name"].strip()):
        problems["name"] = "Name: cannot be blank"
    for key in ("domain_names", "tags"):
        if key in org and not (isinstance(org[key], list) and all(isinstance(v, str) for v in org[key])):
            problems[key] = f"{key}: must be an array of strings"
    if (
        "external_id" in org
        and org["external_id"] is not None
        and not isinstance(org["external_id"], str | int)
    ):
        problems["external_id"] = "external_id: must be a string"
    fields = org.get("organization_fields")
    if fields is not None:
        if not isinstance(fields, dict):
            problems["organization_fields"] = "organization_fields: must be an object"
        elif "support_tier" in fields and fields["support_tier"] not in (*SUPPORT_TIERS, None):
            problems["organization_fields"] = (
                f"Support tier: {fields['support_tier']!r} is not one of {', '.join(SUPPORT_TIERS)}"
            )
    return problems


def _apply_org(world: World, seq: int | None, org: dict) -> int:
    """Update row `seq` with `org` (merging organization_fields), or insert it when seq is None."""
    now = int(time.time())
    table = "zendesk_organizations"
    if seq is None:
        seq = world.next_seq(table)
        world.con.execute(
            f"insert into {table} values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                seq,
                numeric_id(table, seq),
                org["name"].strip(),
                _ext(org.get("external_id")),
                orjson.dumps(org.get("domain_names") or []).decode(),
                orjson.dumps({k: v for k, v in (org.get("organization_fields") or {}).items()}).decode(),
                orjson.dumps(org.get("tags") or []).decode(),
                now,
                now,
            ],
        )
    else:
        current = world.rows(f"select organization_fields from {table} where seq = ?", [seq])[0][0]
        merged = {**orjson.loads(current or "{}"), **(org.get("organization_fields") or {})}
        sets, params = ["organization_fields = ?", "updated_at = ?"], [orjson.dumps(merged).decode(), now]
        for key in ("name", "external_id", "domain_names", "tags"):
            if key in org:
                value = org[key]
                sets.append(f"{key} = ?")
                params.append(
                    _ext(value)
                    if key == "external_id"
                    else value.strip()
                    if key == "name"
                    else orjson.dumps(value).decode()
                )
        world.con.execute(f"update {table} set {', '.join(sets)} where seq = ?", [*params, seq])
    world.changed(table)
    return seq


def _ext(value: Any) -> str | None:
    return None if value is None else str(value)


def _org_doc(world: World, seq: int) -> str:
    return world.rows(f"select {_ORG_DOC} from zendesk_organizations t where t.seq = ?", [seq])[0][0]


@router.post("/api/v2/organizations/create_or_update{suffix:path}")
async def create_or_update_organization(request: Request, suffix: str):
    if suffix not in ("", ".json"):
        raise VendorError(404, "Not found", "not_found")
    world: World = request.app.state.world
    body = await read_json_body(request)
    org = _org_input(body)
    problems = _validate_org(org)
    if problems:
        return _invalid(request, problems, body)
    seq = None
    if org.get("id") is not None:
        seq = numeric_seq("zendesk_organizations", org["id"])
        if seq is None or seq > world.max_seq("zendesk_organizations"):
            seq = None
    if seq is None and org.get("external_id") not in (None, ""):
        found = world.scalar(
            "select min(seq) from zendesk_organizations where external_id = ?", [str(org["external_id"])]
        )
        seq = int(found) if found is not None else None
    if seq is None and not str(org.get("name") or "").strip():
        return _invalid(request, {"name": "Name: cannot be blank"}, body)
    status = 200 if seq is not None else 201
    seq = _apply_org(world, seq, org)
    doc = _org_doc(world, seq).replace(ORIGIN, _origin(request))
    response = '{"organization":' + doc + "}"
    log_write(request, status, body, orjson.loads(response))
    return json_response(response, status)


@router.put("/api/v2/organizations/{raw_id}")
async def update_organization(request: Request, raw_id: str):
    world: World = request.app.state.world
    seq = _seq_of("organizations", raw_id)
    if seq > world.max_seq("zendesk_organizations"):
        raise VendorError(404, "Not found", "RecordNotFound")
    body = await read_json_body(request)
    org = _org_input(body)
    problems = _validate_org(org)
    if problems:
        return _invalid(request, problems, body)
    _apply_org(world, seq, org)
    response = '{"organization":' + _org_doc(world, seq).replace(ORIGIN, _origin(request)) + "}"
    log_write(request, 200, body, orjson.loads(response))
    return json_response(response)


# -- show --------------------------------------------------------------------------------------
@router.get("/api/v2/{name}/{raw_id}")
async def show_record(request: Request, name: str, raw_id: str):
    kind = _kind(name)
    world: World = request.app.state.world
    row = world.get(RESOURCES[kind], _seq_of(kind, raw_id))
    if row is None:
        raise VendorError(404, "Not found", "RecordNotFound")
    singular = kind[:-1]
    return _send(request, '{"' + singular + '":' + row.doc + "}")
