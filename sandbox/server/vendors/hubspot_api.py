"""HubSpot CRM v3 sandbox: companies, contacts and deals as `hubspot-api-client` speaks to them.

Lists page by id ascending with an opaque `after` (the last record's id, which encodes its seq), rendered
in DuckDB SQL per (object type, requested properties, associations) and cached in blocks by
`World.scan`. Search compiles filterGroups/sorts to SQL over the typed columns and pages by offset, and
refuses to page past 10,000 results as HubSpot does. Every property value is served as a string;
datetime properties (`createdate`, `hs_lastmodifieddate`, `closedate`) are ISO-8601 with milliseconds,
as the v3 API serves them, and search filters accept them as epoch milliseconds or ISO-8601.
"""

from __future__ import annotations

import time
import uuid
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from sandbox.server.app import Vendor, VendorError, int_param, json_response, read_json_body
from sandbox.server.world import Resource, World
from sandbox.world.ids import numeric_id, numeric_seq

SEARCH_CAP = 10_000
BURST_MAX, BURST_WINDOW_S, DAILY_MAX = 100, 10.0, 500_000
MISSING_AUTH = (
    "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find more "
    "details at https://developers.hubspot.com/docs/methods/auth/oauth-overview"
)


@dataclass(frozen=True)
class Prop:
    name: str
    kind: str  # string | number | datetime
    column: str | None  # writable column, None when read-only
    render: str  # SQL: the string value HubSpot serves
    typed: str  # SQL: the typed value filters and sorts compare (datetimes in epoch ms)


def _string(name: str, column: str | None = None) -> Prop:
    col = column or name
    return Prop(name, "string", col, f"nullif(t.{col}, '')", f"nullif(t.{col}, '')")


def _decimal(name: str, column: str | None = None) -> Prop:
    col = column or name
    render = (
        f"case when t.{col} is null then null "
        f"when t.{col} = trunc(t.{col}) then trunc(t.{col})::bigint::varchar "
        f"else rtrim(t.{col}::varchar, '0') end"
    )
    return Prop(name, "number", col, render, f"t.{col}")


def _datetime(name: str, column: str, writable: bool = False) -> Prop:
    return Prop(
        name, "datetime", column if writable else None, f"iso_ms_z(t.{column})", f"(t.{column} * 1000)"
    )


_COMMON = (
    _datetime("createdate", "created_at"),
    Prop("hs_object_id", "number", None, "t.id", "try_cast(t.id as bigint)"),
)


@dataclass(frozen=True)
class ObjectType:
    path: str
    table: str
    label: str  # singular, for messages
    props: dict[str, Prop]
    defaults: tuple[str, ...]
    searchable: tuple[str, ...]  # columns the free-text `query` matches
    unique: tuple[str, ...]  # properties usable as idProperty
    required: tuple[str, ...] = ()
    association: str | None = None  # association type name toward companies


def _props(*props: Prop) -> dict[str, Prop]:
    return {p.name: p for p in (*props, *_COMMON)}


COMPANIES = ObjectType(
    "companies",
    "hubspot_companies",
    "company",
    _props(
        _string("name"),
        _string("domain"),
        _string("lifecyclestage"),
        _decimal("arr"),
        _string("arr_currency"),
        _string("stripe_customer_id"),
        _datetime("hs_lastmodifieddate", "updated_at"),
    ),
    ("createdate", "domain", "hs_lastmodifieddate", "hs_object_id", "name"),
    ("name", "domain"),
    ("hs_object_id", "domain", "stripe_customer_id"),
)
CONTACTS = ObjectType(
    "contacts",
    "hubspot_contacts",
    "contact",
    _props(
        _string("email"),
        _string("firstname"),
        _string("lastname"),
        Prop(
            "associatedcompanyid",
            "number",
            "company_id",
            "nullif(t.company_id, '')",
            "try_cast(nullif(t.company_id, '') as bigint)",
        ),
        _datetime("lastmodifieddate", "updated_at"),
        _datetime("hs_lastmodifieddate", "updated_at"),
    ),
    ("createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname"),
    ("email", "firstname", "lastname"),
    ("hs_object_id", "email"),
    association="contact_to_company",
)
DEALS = ObjectType(
    "deals",
    "hubspot_deals",
    "deal",
    _props(
        _string("dealname"),
        _string("dealstage"),
        _string("pipeline"),
        _decimal("amount"),
        _string("deal_currency_code"),
        _datetime("closedate", "closedate_at", writable=True),
        _string("plan"),
        _datetime("hs_lastmodifieddate", "updated_at"),
    ),
    (
        "amount",
        "closedate",
        "createdate",
        "dealname",
        "dealstage",
        "hs_lastmodifieddate",
        "hs_object_id",
        "pipeline",
    ),
    ("dealname",),
    ("hs_object_id",),
    required=("dealname", "dealstage"),
    association="deal_to_company",
)
TYPES = {t.path: t for t in (COMPANIES, CONTACTS, DEALS)}
# Columns a new row needs when no property sets them (the tables are NOT NULL there).
_NEW_ROW = {
    "hubspot_companies": {"name": "", "domain": "", "lifecyclestage": ""},
    "hubspot_contacts": {"email": "", "firstname": "", "lastname": ""},
    "hubspot_deals": {
        "dealname": "",
        "dealstage": "",
        "pipeline": "default",
        "amount": 0,
        "deal_currency_code": "USD",
        "plan": "",
        "company_id": "",
    },
}


# -- errors, auth, headers -------------------------------------------------------------------------
_CATEGORY = {
    400: "VALIDATION_ERROR",
    401: "INVALID_AUTHENTICATION",
    403: "MISSING_SCOPES",
    404: "OBJECT_NOT_FOUND",
    405: "VALIDATION_ERROR",
    409: "CONFLICT",
    429: "RATE_LIMITS",
}


def error_body(status: int, message: str, code: str | None, param: str | None) -> dict:
    category = (
        code
        if code and code.isupper()
        else _CATEGORY.get(status, "INTERNAL_ERROR" if status >= 500 else "VALIDATION_ERROR")
    )
    body: dict[str, Any] = {
        "status": "error",
        "message": message,
        "correlationId": str(uuid.uuid4()),
        "category": category,
    }
    if status in (400, 404, 409):
        if param and param.startswith("["):
            body["errors"] = orjson.loads(param)
        elif param:
            body["errors"] = [{"message": message, "in": param}]
        else:
            body["errors"] = []
    return body


def _invalid(
    message: str, errors: list[dict] | None = None, status: int = 400, category: str = "VALIDATION_ERROR"
):
    return VendorError(
        status, message, category, param=orjson.dumps(errors or [{"message": message}]).decode()
    )


_TOKENS: dict[int, str | None] = {}
_BURST: deque[float] = deque()
_DAY = {"day": 0, "count": 0}


def _tick() -> None:
    now = time.monotonic()
    while _BURST and _BURST[0] <= now - BURST_WINDOW_S:
        _BURST.popleft()
    _BURST.append(now)
    day = int(time.time() // 86400)
    if _DAY["day"] != day:
        _DAY.update(day=day, count=0)
    _DAY["count"] += 1


def default_headers() -> dict[str, str]:
    return {
        "X-HubSpot-RateLimit-Daily": str(DAILY_MAX),
        "X-HubSpot-RateLimit-Daily-Remaining": str(max(DAILY_MAX - _DAY["count"], 0)),
        "X-HubSpot-RateLimit-Interval-Milliseconds": str(int(BURST_WINDOW_S * 1000)),
        "X-HubSpot-RateLimit-Max": str(BURST_MAX),
        "X-HubSpot-RateLimit-Remaining": str(max(BURST_MAX - len(_BURST), 0)),
    }


def authenticate(request: Request) -> str:
    _tick()
    world: World = request.app.state.world
    if id(world) not in _TOKENS:
        _TOKENS[id(world)] = world.meta("cred.hubspot.token")
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or token != _TOKENS[id(world)]:
        raise VendorError(401, MISSING_AUTH, "INVALID_AUTHENTICATION")
    return f"****{token[-4:]}"


def drift(record: dict) -> None:
    """Schema drift: records gain a `url` and `archived` turns from a boolean into a string."""
    record["url"] = f"https://app.hubspot.com/contacts/0/record/0-2/{record.get('id', '')}"
    record["archived"] = "true" if record.get("archived") else "false"


# -- rendering -------------------------------------------------------------------------------------
def _doc_sql(ot: ObjectType, props: tuple[str, ...], associations: bool) -> str:
    pairs = ", ".join(f"'{name}', {ot.props[name].render}" for name in props)
    base = (
        f"json_object('id', t.id, 'properties', json_object({pairs}), 'createdAt', iso_ms_z(t.created_at),"
        f" 'updatedAt', iso_ms_z(t.updated_at), 'archived', t.archived)"
    )
    extra = ["'archivedAt', case when t.archived then iso_ms_z(t.updated_at) end"]
    if associations and ot.association:
        extra.append(
            "'associations', case when nullif(t.company_id, '') is null then null else "
            "json_object('companies', json_object('results', json_array("
            f"json_object('id', t.company_id, 'type', '{ot.association}')))) end"
        )
    return f"json_merge_patch({base}, json_object({', '.join(extra)}))::varchar"


_RESOURCES: dict[tuple, Resource] = {}


def _resource(ot: ObjectType, props: tuple[str, ...], associations: bool) -> Resource:
    key = (ot.path, props, associations)
    found = _RESOURCES.get(key)
    if found is None:
        if len(_RESOURCES) > 256:
            _RESOURCES.clear()
        select = f"select t.seq, {_doc_sql(ot, props, associations)}, t.archived from {ot.table} t"
        found = Resource(
            f"hubspot.{len(_RESOURCES)}.{ot.path}",
            ot.table,
            select + " where t.seq between $lo and $hi",
            ("archived",),
        )
        _RESOURCES[key] = found
    return found


def _requested(ot: ObjectType, raw: list[str] | None) -> tuple[str, ...]:
    """Requested property names HubSpot knows (unknown names are ignored, as HubSpot does)."""
    if not raw:
        return ot.defaults
    names = [n.strip() for item in raw for n in item.split(",") if n.strip()]
    known = sorted({n for n in names if n in ot.props})
    return tuple(known) if known else ("hs_object_id",)


def _bool_param(request: Request, name: str) -> bool:
    raw = request.query_params.get(name)
    if raw in (None, "", "false", "False"):
        return False
    if raw in ("true", "True"):
        return True
    raise _invalid(
        f"Invalid input: {name} must be true or false, got {raw!r}.",
        [{"message": f"{name} must be a boolean", "in": name}],
    )


def _associations(request: Request, ot: ObjectType) -> bool:
    wanted = [n.strip() for item in request.query_params.getlist("associations") for n in item.split(",")]
    return ot.association is not None and any(n in ("companies", "company", "0-2") for n in wanted)


def _type(path: str) -> ObjectType:
    ot = TYPES.get(path)
    if ot is None:
        raise VendorError(404, f"Unable to infer object type from: {path}", "OBJECT_NOT_FOUND")
    return ot


# -- reads -----------------------------------------------------------------------------------------
async def list_objects(request: Request, object_type: str) -> Response:
    ot = _type(object_type)
    world: World = request.app.state.world
    limit = int_param(request, "limit", 10, 1, 100)
    archived = _bool_param(request, "archived")
    props = _requested(ot, request.query_params.getlist("properties"))
    assoc = _associations(request, ot)
    after = 0
    raw_after = request.query_params.get("after")
    if raw_after:
        seq = numeric_seq(ot.table, raw_after)
        if seq is None:
            raise _invalid(
                f"Invalid input JSON on line 1: after must be a valid paging cursor, got {raw_after!r}",
                [{"message": "Invalid paging cursor", "in": "after"}],
            )
        after = seq
        if getattr(request.state, "fault_duplicate", False):
            after -= 1
            request.state.duplicated = True
    rows, has_more = world.scan(
        _resource(ot, props, assoc),
        after=after,
        limit=limit,
        keep=lambda row: bool(row.extra["archived"]) == archived,
    )
    body = '{"results":[' + ",".join(r.doc for r in rows) + "]"
    if has_more and rows:
        cursor = str(numeric_id(ot.table, rows[-1].seq))
        query = f"after={cursor}&limit={limit}"
        if request.query_params.get("properties"):
            query += "&properties=" + ",".join(props)
        if archived:
            query += "&archived=true"
        link = f"{str(request.base_url).rstrip('/')}/crm/v3/objects/{ot.path}?{query}"
        body += ',"paging":{"next":{"after":"' + cursor + '","link":"' + link + '"}}'
    return json_response(body + "}")


def _find(world: World, ot: ObjectType, value: str, id_property: str | None) -> int | None:
    """The seq of the record whose `id_property` (default the object id) equals `value`."""
    if not id_property or id_property == "hs_object_id":
        seq = numeric_seq(ot.table, value)
        return seq if seq is not None and seq <= world.max_seq(ot.table) else None
    prop = ot.props.get(id_property)
    if prop is None or id_property not in ot.unique:
        raise _invalid(
            f"Property {id_property} is not a unique identifier property of {ot.path}.",
            [{"message": f"{id_property} is not a unique property", "in": "idProperty"}],
        )
    found = world.scalar(f"select min(t.seq) from {ot.table} t where lower({prop.typed}) = lower(?)", [value])
    return None if found is None else int(found)


def _not_found(object_id: str) -> VendorError:
    return VendorError(
        404,
        "Object not found.  objectId are usually numeric.",
        "OBJECT_NOT_FOUND",
        param=orjson.dumps([{"message": "Object not found", "context": {"id": [object_id]}}]).decode(),
    )


async def get_object(request: Request, object_type: str, object_id: str) -> Response:
    ot = _type(object_type)
    world: World = request.app.state.world
    archived = _bool_param(request, "archived")
    seq = _find(world, ot, object_id, request.query_params.get("idProperty"))
    resource = _resource(
        ot, _requested(ot, request.query_params.getlist("properties")), _associations(request, ot)
    )
    row = world.get(resource, seq)
    if row is None or bool(row.extra["archived"]) != archived:
        raise _not_found(object_id)
    return json_response(row.doc)


# -- search ----------------------------------------------------------------------------------------
_OPERATORS = {
    "EQ",
    "NEQ",
    "GT",
    "GTE",
    "LT",
    "LTE",
    "BETWEEN",
    "IN",
    "NOT_IN",
    "HAS_PROPERTY",
    "NOT_HAS_PROPERTY",
    "CONTAINS_TOKEN",
    "NOT_CONTAINS_TOKEN",
}


def _coerce(prop: Prop, value: Any, where: str) -> Any:
    if value is None:
        raise _invalid(
            f"A value is required for a filter on {prop.name}.",
            [{"message": f"missing value for {prop.name}", "in": where}],
        )
    text = str(value).strip()
    try:
        if prop.kind == "string":
            return text.lower()
        if prop.kind == "number":
            return float(text)
        if text.lstrip("-").isdigit():
            return int(text)
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return int(parsed.timestamp() * 1000)
    except ValueError:
        raise _invalid(
            f"Invalid value {text!r} for property {prop.name} of type {prop.kind}.",
            [
                {
                    "message": f"{text!r} is not a valid {prop.kind}",
                    "in": where,
                    "code": "INVALID_FILTER_VALUE",
                }
            ],
        ) from None


def _filter_sql(ot: ObjectType, flt: Any, where: str) -> tuple[str, list[Any]]:
    if not isinstance(flt, dict):
        raise _invalid(
            "Each filter must be an object.", [{"message": "filter must be an object", "in": where}]
        )
    name, op = flt.get("propertyName"), flt.get("operator", "EQ")
    prop = ot.props.get(name) if isinstance(name, str) else None
    if prop is None:
        raise _invalid(
            f"There was a problem with the request: unknown property {name!r} for {ot.path}.",
            [
                {
                    "message": f"Unknown property {name!r}",
                    "in": f"{where}.propertyName",
                    "code": "PROPERTY_DOESNT_EXIST",
                }
            ],
        )
    if op not in _OPERATORS:
        raise _invalid(
            f"Unknown filter operator {op!r}.",
            [{"message": f"Unknown operator {op!r}", "in": f"{where}.operator"}],
        )
    expr = f"lower({prop.typed})" if prop.kind == "string" else prop.typed
    if op == "HAS_PROPERTY":
        return f"{prop.typed} is not null", []
    if op == "NOT_HAS_PROPERTY":
        return f"{prop.typed} is null", []
    if op in ("IN", "NOT_IN"):
        values = flt.get("values")
        if not isinstance(values, list) or not values:
            raise _invalid(
                f"{op} needs a non-empty `values` list.",
                [{"message": "values required", "in": f"{where}.values"}],
            )
        marks = ", ".join("?" for _ in values)
        sql = f"{expr} in ({marks})" if op == "IN" else f"({expr} is null or {expr} not in ({marks}))"
        return sql, [_coerce(prop, v, f"{where}.values") for v in values]
    if op == "BETWEEN":
        low = _coerce(prop, flt.get("value"), f"{where}.value")
        high = _coerce(prop, flt.get("highValue"), f"{where}.highValue")
        return f"{expr} between ? and ?", [low, high]
    value = _coerce(prop, flt.get("value"), f"{where}.value")
    if op in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
        pattern = "%" + str(value).replace("*", "%") + "%"
        return (f"{expr} like ?" if op == "CONTAINS_TOKEN" else f"({expr} is null or {expr} not like ?)"), [
            pattern
        ]
    sym = {"EQ": "=", "GT": ">", "GTE": ">=", "LT": "<", "LTE": "<="}.get(op)
    if sym:
        return f"{expr} {sym} ?", [value]
    return f"{expr} is distinct from ?", [value]  # NEQ


def _sort_sql(ot: ObjectType, sorts: Any) -> str:
    if sorts in (None, []):
        return "t.seq"
    if not isinstance(sorts, list) or len(sorts) > 1:
        raise _invalid("Only one sort is supported.", [{"message": "at most one sort", "in": "sorts"}])
    sort = sorts[0]
    if isinstance(sort, str):
        name, descending = sort.lstrip("-"), sort.startswith("-")
    elif isinstance(sort, dict):
        name = sort.get("propertyName")
        direction = sort.get("direction", "ASCENDING")
        if direction not in ("ASCENDING", "DESCENDING"):
            raise _invalid(
                f"Invalid sort direction {direction!r}.",
                [{"message": "direction must be ASCENDING or DESCENDING", "in": "sorts[0].direction"}],
            )
        descending = direction == "DESCENDING"
    else:
        raise _invalid("Invalid sort.", [{"message": "sort must be a string or an object", "in": "sorts[0]"}])
    prop = ot.props.get(name) if isinstance(name, str) else None
    if prop is None:
        raise _invalid(
            f"Cannot sort on unknown property {name!r}.",
            [{"message": f"Unknown property {name!r}", "in": "sorts[0].propertyName"}],
        )
    return f"{prop.typed} {'desc' if descending else 'asc'} nulls last, t.seq"


async def search_objects(request: Request, object_type: str) -> Response:
    ot = _type(object_type)
    world: World = request.app.state.world
    body = await read_json_body(request)
    if not isinstance(body, dict):
        raise _invalid("The search request body must be a JSON object.")
    limit = body.get("limit", 10)
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= 200:
        raise _invalid(
            f"limit must be an integer between 1 and 200, got {limit!r}.",
            [{"message": "must be between 1 and 200", "in": "limit"}],
        )
    raw_after = body.get("after", 0) or 0
    try:
        offset = int(raw_after)
        if offset < 0:
            raise ValueError
    except (TypeError, ValueError):
        raise _invalid(
            f"Invalid paging cursor {raw_after!r}.", [{"message": "invalid after", "in": "after"}]
        ) from None
    if offset >= SEARCH_CAP:
        raise _invalid(
            f"Search results are limited to {SEARCH_CAP} records; after={offset} is past the end. "
            "Narrow the search (for example on hs_lastmodifieddate) instead of paging further.",
            [{"message": f"after must be less than {SEARCH_CAP}", "in": "after"}],
        )
    groups = body.get("filterGroups") or []
    if not isinstance(groups, list) or len(groups) > 5:
        raise _invalid(
            "filterGroups must be a list of at most 5 groups.",
            [{"message": "too many filterGroups", "in": "filterGroups"}],
        )
    clauses, params = [], []
    total_filters = 0
    for gi, group in enumerate(groups):
        filters = group.get("filters") if isinstance(group, dict) else None
        if not isinstance(filters, list) or not filters:
            raise _invalid(
                "Each filter group needs a non-empty `filters` list.",
                [{"message": "filters required", "in": f"filterGroups[{gi}].filters"}],
            )
        total_filters += len(filters)
        parts = []
        for fi, flt in enumerate(filters):
            sql, values = _filter_sql(ot, flt, f"filterGroups[{gi}].filters[{fi}]")
            parts.append(sql)
            params.extend(values)
        clauses.append("(" + " and ".join(parts) + ")")
    if total_filters > 25:
        raise _invalid(
            "A search can have at most 25 filters.", [{"message": "too many filters", "in": "filterGroups"}]
        )
    where = "not t.archived"
    if clauses:
        where += " and (" + " or ".join(clauses) + ")"
    query = body.get("query")
    if isinstance(query, str) and query.strip():
        where += " and (" + " or ".join(f"lower(t.{c}) like ?" for c in ot.searchable) + ")"
        params.extend(["%" + query.strip().lower() + "%"] * len(ot.searchable))
    order = _sort_sql(ot, body.get("sorts"))
    props_raw = body.get("properties")
    if props_raw is not None and not (
        isinstance(props_raw, list) and all(isinstance(p, str) for p in props_raw)
    ):
        raise _invalid(
            "properties must be a list of strings.", [{"message": "invalid properties", "in": "properties"}]
        )
    props = _requested(ot, props_raw)
    total = int(world.scalar(f"select count(*) from {ot.table} t where {where}", params))
    docs = world.rows(
        f"select {_doc_sql(ot, props, False)} from {ot.table} t where {where}"
        f" order by {order} limit ? offset ?",
        [*params, limit, offset],
    )
    out = '{"total":' + str(total) + ',"results":[' + ",".join(d[0] for d in docs) + "]"
    if offset + limit < total:
        out += ',"paging":{"next":{"after":"' + str(offset + limit) + '"}}'
    return json_response(out + "}")


# -- writes ----------------------------------------------------------------------------------------
def _column_values(ot: ObjectType, world: World, properties: Any, where: str) -> dict[str, Any]:
    """Validate a `properties` object and map it to column values; one 400 listing every bad property."""
    if not isinstance(properties, dict):
        raise _invalid(
            "properties must be an object of property name to value.",
            [{"message": "properties must be an object", "in": where}],
        )
    values, problems = {}, []
    for name, value in properties.items():
        prop = ot.props.get(name)
        if prop is None:
            problems.append(
                {
                    "name": name,
                    "error": "PROPERTY_DOESNT_EXIST",
                    "message": f'Property "{name}" does not exist',
                }
            )
            continue
        if prop.column is None:
            problems.append(
                {
                    "name": name,
                    "error": "READ_ONLY_VALUE",
                    "message": f'"{name}" is a read only property; its value cannot be set.',
                }
            )
            continue
        if value is not None and not isinstance(value, str | int | float | bool):
            problems.append(
                {"name": name, "error": "INVALID_OPTION", "message": f"{value!r} is not a valid value"}
            )
            continue
        text = None if value is None else str(value).strip()
        if prop.kind == "number" and prop.name != "associatedcompanyid":
            if text in (None, ""):
                values[prop.column] = None
                continue
            try:
                values[prop.column] = round(float(text), 2)
            except ValueError:
                problems.append(
                    {"name": name, "error": "INVALID_DECIMAL", "message": f"{text} was not a valid number."}
                )
        elif prop.kind == "datetime":
            if text in (None, ""):
                values[prop.column] = None
                continue
            try:
                values[prop.column] = _coerce(prop, text, name) // 1000
            except VendorError:
                problems.append(
                    {
                        "name": name,
                        "error": "INVALID_DATE",
                        "message": f"{text} was not a valid date or epoch milliseconds.",
                    }
                )
        elif prop.name == "associatedcompanyid":
            if text and _find(world, COMPANIES, text, None) is None:
                problems.append(
                    {
                        "name": name,
                        "error": "INVALID_OBJECT_ID",
                        "message": f"No company with id {text} exists.",
                    }
                )
            values[prop.column] = text or ""
        else:
            values[prop.column] = text
    if problems:
        detail = orjson.dumps(
            [{"isValid": False, **p, "localizedErrorMessage": p["message"]} for p in problems]
        )
        raise _invalid(
            f"Property values were not valid: {detail.decode()}",
            [
                {"message": p["message"], "code": p["error"], "context": {"propertyName": [p["name"]]}}
                for p in problems
            ],
        )
    return values


def _company_association(world: World, associations: Any) -> str | None:
    if not isinstance(associations, list):
        return None
    for assoc in associations:
        to = assoc.get("to") if isinstance(assoc, dict) else None
        target = str(to.get("id", "")) if isinstance(to, dict) else ""
        if target and _find(world, COMPANIES, target, None) is not None:
            return target
    return None


def _insert(world: World, ot: ObjectType, values: dict[str, Any], now: int) -> int:
    row = {
        **_NEW_ROW[ot.table],
        **{k: v for k, v in values.items() if v is not None or k not in _NEW_ROW[ot.table]},
    }
    seq = world.next_seq(ot.table)
    cols = ["seq", "id", *row, "archived", "created_at", "updated_at"]
    world.con.execute(
        f"insert into {ot.table} ({', '.join(cols)}) values ({', '.join('?' for _ in cols)})",
        [seq, str(numeric_id(ot.table, seq)), *row.values(), False, now, now],
    )
    return seq


def _update(world: World, ot: ObjectType, seq: int, values: dict[str, Any], now: int) -> None:
    values = {k: ("" if v is None and k in _NEW_ROW[ot.table] else v) for k, v in values.items()}
    sets = [f"{col} = ?" for col in values] + ["updated_at = ?"]
    world.con.execute(f"update {ot.table} set {', '.join(sets)} where seq = ?", [*values.values(), now, seq])


def _rendered(world: World, ot: ObjectType, seq: int, extra_props: set[str]) -> dict:
    names = tuple(sorted(set(ot.defaults) | {p for p in extra_props if p in ot.props}))
    return orjson.loads(world.get(_resource(ot, names, False), seq).doc)


async def _logged(request: Request, status_ok: int, work) -> Response:
    """Run a write, record it (success or failure) in the write log, and answer."""
    world: World = request.app.state.world
    raw = await request.body()
    try:
        body: Any = orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        body = {"_raw": raw.decode("utf-8", "replace")[:2000]}
    log = {
        "vendor": "hubspot",
        "method": request.method,
        "path": request.url.path,
        "principal": getattr(request.state, "principal", None),
        "body": body,
    }
    try:
        status, response = await work()
    except VendorError as exc:
        world.record_write(
            **log, status=exc.status, response=error_body(exc.status, exc.message, exc.code, exc.param)
        )
        raise
    world.record_write(**log, status=status or status_ok, response=response)
    return json_response(response, status or status_ok)


async def create_object(request: Request, object_type: str) -> Response:
    ot = _type(object_type)
    world: World = request.app.state.world

    async def work():
        body = await read_json_body(request)
        if not isinstance(body, dict):
            raise _invalid("The request body must be a JSON object.")
        properties = body.get("properties", {})
        values = _column_values(ot, world, properties, "properties")
        missing = [n for n in ot.required if not (properties.get(n) or "").strip()]
        if missing:
            raise _invalid(
                f"Missing required properties: {', '.join(missing)}.",
                [{"message": f"{n} is required", "code": "REQUIRED_FIELD", "in": n} for n in missing],
            )
        if ot.association:
            company = _company_association(world, body.get("associations"))
            if company:
                values["company_id"] = company
        if ot is CONTACTS and values.get("email"):
            existing = _find(world, CONTACTS, values["email"], "email")
            if existing is not None:
                raise _invalid(
                    f"Contact already exists. Existing ID: {numeric_id(ot.table, existing)}",
                    status=409,
                    category="CONFLICT",
                )
        seq = _insert(world, ot, values, int(time.time()))
        world.changed(ot.table)
        return 201, _rendered(world, ot, seq, set(properties))

    return await _logged(request, 201, work)


async def update_object(request: Request, object_type: str, object_id: str) -> Response:
    ot = _type(object_type)
    world: World = request.app.state.world

    async def work():
        body = await read_json_body(request)
        if not isinstance(body, dict):
            raise _invalid("The request body must be a JSON object.")
        seq = _find(world, ot, object_id, request.query_params.get("idProperty"))
        if seq is None or world.scalar(f"select archived from {ot.table} where seq = ?", [seq]):
            raise _not_found(object_id)
        properties = body.get("properties", {})
        values = _column_values(ot, world, properties, "properties")
        _update(world, ot, seq, values, int(time.time()))
        world.changed(ot.table)
        return 200, _rendered(world, ot, seq, set(properties))

    return await _logged(request, 200, work)


async def batch_upsert(request: Request, object_type: str) -> Response:
    ot = _type(object_type)
    world: World = request.app.state.world

    async def work():
        started = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        body = await read_json_body(request)
        inputs = body.get("inputs") if isinstance(body, dict) else None
        if not isinstance(inputs, list) or not inputs:
            raise _invalid(
                "inputs must be a non-empty list.", [{"message": "inputs required", "in": "inputs"}]
            )
        if len(inputs) > 100:
            raise _invalid(
                "A batch can have at most 100 inputs.", [{"message": "too many inputs", "in": "inputs"}]
            )
        now = int(time.time())
        results, errors, touched = [], [], False
        for index, item in enumerate(inputs):
            try:
                if not isinstance(item, dict) or not str(item.get("id") or "").strip():
                    raise _invalid(f"inputs[{index}] needs an `id`.")
                key, id_property = str(item["id"]).strip(), item.get("idProperty") or "hs_object_id"
                properties = item.get("properties") or {}
                values = _column_values(ot, world, properties, f"inputs[{index}].properties")
                seq = _find(world, ot, key, id_property)
                if seq is None:
                    if id_property == "hs_object_id":
                        raise _not_found(key)
                    values.setdefault(ot.props[id_property].column, key)
                    seq, new = _insert(world, ot, values, now), True
                else:
                    _update(world, ot, seq, values, now)
                    new = False
                touched = True
                world.changed(ot.table)
                results.append({**_rendered(world, ot, seq, set(properties)), "new": new})
            except VendorError as exc:
                detail = error_body(exc.status, exc.message, exc.code, exc.param)
                errors.append(
                    {
                        "status": "error",
                        "category": detail["category"],
                        "message": exc.message,
                        "context": {"id": [str(item.get("id")) if isinstance(item, dict) else str(index)]},
                        "errors": detail.get("errors", []),
                    }
                )
        if touched:
            world.changed(ot.table)
        done = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        response: dict[str, Any] = {
            "status": "COMPLETE",
            "results": results,
            "startedAt": started,
            "completedAt": done,
        }
        if errors:
            if not results:
                raise _invalid(
                    f"All {len(errors)} inputs failed: {errors[0]['message']}",
                    [e for err in errors for e in err["errors"]] or [{"message": errors[0]["message"]}],
                )
            response.update(numErrors=len(errors), errors=errors)
            return 207, response
        return 200, response

    return await _logged(request, 200, work)


# HubSpot's v4 association type ids for the HUBSPOT_DEFINED labels the sandbox serves
ASSOCIATION_TYPE_IDS = {"contact_to_company": 279, "deal_to_company": 341}


async def batch_read_associations(request: Request, from_type: str, to_type: str) -> Response:
    """POST /crm/v4/associations/{from}/{to}/batch/read: each input id's associated company ids."""
    ot = _type(from_type)
    if ot.association is None or to_type not in ("companies", "company", "0-2"):
        raise _invalid(f"No association from {from_type} to {to_type}.")
    body = await read_json_body(request)
    inputs = body.get("inputs") if isinstance(body, dict) else None
    if not isinstance(inputs, list) or not all(isinstance(i, dict) and "id" in i for i in inputs):
        raise _invalid(
            "inputs must be a list of objects with an id.", [{"message": "invalid", "in": "inputs"}]
        )
    if len(inputs) > 1000:
        raise _invalid("At most 1000 inputs per batch.", [{"message": "too many", "in": "inputs"}])
    world: World = request.app.state.world
    ids = [str(i["id"]) for i in inputs]
    linked = dict(
        world.rows(
            f"select t.id::varchar, t.company_id from {ot.table} t"
            " where t.id::varchar in (select unnest(?::varchar[])) and nullif(t.company_id, '') is not null",
            [ids],
        )
    )
    type_id = ASSOCIATION_TYPE_IDS[ot.association]
    results = [
        {
            "from": {"id": i},
            "to": [
                {
                    "toObjectId": int(linked[i]),
                    "associationTypes": [{"category": "HUBSPOT_DEFINED", "typeId": type_id, "label": None}],
                }
            ],
        }
        for i in dict.fromkeys(ids)
        if i in linked
    ]
    now = _iso_now()
    return json_response(
        orjson.dumps(
            {"status": "COMPLETE", "results": results, "startedAt": now, "completedAt": now}
        ).decode()
    )


def _iso_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())


def vendor() -> Vendor:
    router = APIRouter()
    router.add_api_route(
        "/crm/v4/associations/{from_type}/{to_type}/batch/read", batch_read_associations, methods=["POST"]
    )
    base = "/crm/v3/objects/{object_type}"
    router.add_api_route(base, list_objects, methods=["GET"])
    router.add_api_route(base, create_object, methods=["POST"])
    router.add_api_route(base + "/search", search_objects, methods=["POST"])
    router.add_api_route(base + "/batch/upsert", batch_upsert, methods=["POST"])
    router.add_api_route(base + "/{object_id}", get_object, methods=["GET"])
    router.add_api_route(base + "/{object_id}", update_object, methods=["PATCH"])
    return Vendor(
        name="hubspot",
        router=router,
        error_body=error_body,
        authenticate=authenticate,
        default_headers=default_headers,
    )
