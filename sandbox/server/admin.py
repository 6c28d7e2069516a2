"""`/__sandbox__/*`: the sandbox's own control and inspection endpoints (no vendor auth).

Mounted on every vendor port; they all act on the one shared world.
"""

from __future__ import annotations

import time

import orjson
from fastapi import APIRouter, Request

from sandbox.server.app import VendorError, int_param, json_response

router = APIRouter()


@router.get("/health")
async def health(request: Request):
    world, faults = request.app.state.world, request.app.state.faults
    vendor = request.app.state.vendor.name
    return json_response(
        {
            "vendor": vendor,
            "world": str(world.path),
            "now": int(time.time()),
            "maintenance_until": faults.maintenance_until(vendor) if faults else None,
        }
    )


@router.get("/writes")
async def writes(request: Request):
    """The write log in arrival order; `vendor` filters, `after` (a seq) pages, `limit` caps."""
    world = request.app.state.world
    after = int_param(request, "after", 0, 0, 2**62)
    limit = int_param(request, "limit", 1000, 1, 100_000)
    vendor = request.query_params.get("vendor")
    sql = (
        "select seq, vendor, method, path, status, idempotency_key, principal, body, response, replayed,"
        " received_at from writes where seq > ?"
    )
    params: list = [after]
    if vendor:
        sql += " and vendor = ?"
        params.append(vendor)
    rows = world.rows(sql + " order by seq limit ?", [*params, limit])
    cols = [
        "seq",
        "vendor",
        "method",
        "path",
        "status",
        "idempotency_key",
        "principal",
        "body",
        "response",
        "replayed",
        "received_at",
    ]
    out = []
    for row in rows:
        item = dict(zip(cols, row, strict=True))
        for key in ("body", "response"):
            if item[key] is not None:
                item[key] = orjson.loads(item[key])
        out.append(item)
    return json_response({"writes": out, "count": len(out)})


@router.get("/counts")
async def counts(request: Request):
    """Row counts of the world's tables (`table` may name one), read from the served world itself."""
    world = request.app.state.world
    sql = "select table_name from information_schema.tables where table_schema = 'main'"
    tables = [r[0] for r in world.rows(sql)]
    wanted = request.query_params.get("table")
    if wanted is not None and wanted not in tables:
        raise VendorError(404, f"No table named {wanted!r} in the world.", "not_found")
    chosen = [wanted] if wanted else sorted(tables)
    since = request.query_params.get("changed_since")
    if since is None:
        return json_response({t: int(world.scalar(f'select count(*) from "{t}"')) for t in chosen})
    # With `changed_since=<epoch>`: rows written (created or updated) at or after it, per table that
    # tracks updates -- the records an incremental extraction must find.
    try:
        bound = int(since)
    except ValueError:
        raise VendorError(
            400, "changed_since must be epoch seconds.", "invalid", param="changed_since"
        ) from None
    sql = "select table_name from information_schema.columns where column_name = 'updated_at'"
    tracked = {r[0] for r in world.rows(sql)}
    return json_response(
        {
            t: int(world.scalar(f'select count(*) from "{t}" where updated_at >= ?', [bound]))
            for t in chosen
            if t in tracked
        }
    )


@router.post("/advance")
async def advance(request: Request):
    """Age the world by `minutes` and apply a step of lifecycle events (see sandbox.world.changes).

    `events` overrides how many lifecycle events the step applies; the ground-truth file beside the
    world is rewritten.
    """
    from sandbox.world.changes import advance as advance_world

    world = request.app.state.world
    minutes = int_param(request, "minutes", 60, 1, 60 * 24 * 90)
    events = int_param(request, "events", -1, 0, 1_000_000) if "events" in request.query_params else None
    summary = advance_world(
        world.con,
        minutes,
        events=events,
        truth_path=world.path.parent / "ground_truth.jsonl",
        losses=_losses(request),
    )
    world.changed_all()
    return json_response(summary)


def _losses(request: Request) -> frozenset[str] | None:
    """Repeated `lose=<mismatch type>` steers which downstream effects are lost (`lose=none`: none)."""
    given = request.query_params.getlist("lose")
    if not given:
        return None
    from sandbox.world.plan import ANCHOR_SYSTEM

    unknown = [g for g in given if g != "none" and g not in ANCHOR_SYSTEM]
    if unknown:
        raise VendorError(
            400,
            f"unknown mismatch type(s) {unknown} in lose; use one of {sorted(ANCHOR_SYSTEM)} or none",
            "invalid",
            param="lose",
        )
    return frozenset(g for g in given if g != "none")


@router.post("/event")
async def event(request: Request):
    """Apply one lifecycle event now (`kind`), to `customer` (a customer ref, optional), losing exactly
    the downstream effects named by repeated `lose` (default none): a business workflow on demand."""
    from sandbox.world.changes import STEERED_EVENTS, apply_event

    world = request.app.state.world
    kind = request.query_params.get("kind", "")
    if kind not in STEERED_EVENTS:
        raise VendorError(400, f"kind must be one of {', '.join(STEERED_EVENTS)}", "invalid", param="kind")
    summary = apply_event(
        world.con,
        kind,
        losses=_losses(request) or frozenset(),
        customer=request.query_params.get("customer"),
        truth_path=world.path.parent / "ground_truth.jsonl",
    )
    world.changed_all()
    return json_response(summary)


@router.get("/truth")
async def truth(request: Request):
    """Injected discrepancies by type, split into those detectable now and those not yet."""
    world = request.app.state.world
    now = int(time.time())
    rows = world.rows(
        "select mismatch_type, count(*) filter (where detectable_at <= ?),"
        " count(*) filter (where detectable_at > ?) from truth group by 1 order by 1",
        [now, now],
    )
    return json_response({"by_type": {t: {"detectable": d, "pending": p} for t, d, p in rows}})


@router.get("/faults")
async def faults_state(request: Request):
    faults = request.app.state.faults
    return json_response(faults.describe() if faults else {"profiles": {}, "injected": {}})


@router.post("/maintenance")
async def maintenance(request: Request):
    """Open a maintenance window (503 on every vendor request) for `seconds` on `vendor`."""
    faults = request.app.state.faults
    if faults is None:
        raise VendorError(409, "This sandbox was started without a fault injector.", "faults_disabled")
    vendor = request.query_params.get("vendor", request.app.state.vendor.name)
    seconds = int_param(request, "seconds", 60, 0, 24 * 3600)
    until = faults.open_maintenance(vendor, seconds)
    return json_response({"vendor": vendor, "maintenance_until": until})
