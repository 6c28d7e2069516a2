"""Builds one FastAPI app per vendor on the shared World: error shapes, auth, admin routes, faults.

A vendor module supplies a `Vendor`: its name, how it shapes an error body, how it authenticates a
request, and an APIRouter with its endpoints. Everything that can go wrong in a request (unknown path,
bad parameter, malformed body, an unexpected exception) comes back in that vendor's error shape.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sandbox.server.world import World

log = logging.getLogger(__name__)

ADMIN_PREFIX = "/__sandbox__"


class VendorError(Exception):
    """Raised by handlers to answer with the vendor's own error shape."""

    def __init__(
        self,
        status: int,
        message: str,
        code: str | None = None,
        *,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.param = status, message, code, param
        self.headers = headers or {}


@dataclass(frozen=True)
class Vendor:
    name: str
    router: APIRouter
    # (status, message, code, param) -> JSON-able error body in the vendor's shape
    error_body: Callable[[int, str, str | None, str | None], Any]
    # request -> principal (e.g. the API key's last 4) or raises VendorError(401, ...)
    authenticate: Callable[[Request], str]
    # extra headers on every response (rate-limit headers and the like)
    default_headers: Callable[[], dict[str, str]] = dict


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    content = (
        body.encode() if isinstance(body, str) else body if isinstance(body, bytes) else orjson.dumps(body)
    )
    return Response(content=content, status_code=status, media_type="application/json", headers=headers)


def with_headers(send: Send, extra: dict[str, str]) -> Send:
    """`send` that adds `extra` headers (unless already set) to the response start."""

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start" and extra:
            headers = MutableHeaders(scope=message)
            for key, value in extra.items():
                if key not in headers:
                    headers[key] = value
        await send(message)

    return wrapped


class VendorGate:
    """ASGI middleware in front of a vendor's routes: authentication, faults, default headers.

    Pure ASGI rather than Starlette's BaseHTTPMiddleware, which re-streams every response and cost
    about a third of the server's time on list pages.
    """

    def __init__(self, app: ASGIApp, vendor: Vendor, faults: Any, error: Callable[..., Response]) -> None:
        self.app, self.vendor, self.faults, self.error = app, vendor, faults, error

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(ADMIN_PREFIX):
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            request.state.principal = self.vendor.authenticate(request)
        except VendorError as exc:
            await self.error(exc.status, exc.message, exc.code, exc.param, exc.headers)(scope, receive, send)
            return
        send = with_headers(send, self.vendor.default_headers())
        if self.faults is not None:
            await self.faults.handle(self.vendor.name, request, self.app, send, self.error)
        else:
            await self.app(scope, receive, send)


def make_app(vendor: Vendor, world: World, faults: Any = None) -> FastAPI:
    """The HTTP app for one vendor. `faults` is a sandbox.server.faults.FaultInjector or None."""
    app = FastAPI(title=f"revsync sandbox: {vendor.name}", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.world = world
    app.state.vendor = vendor
    app.state.faults = faults

    def error(status: int, message: str, code: str | None = None, param: str | None = None, headers=None):
        merged = {**vendor.default_headers(), **(headers or {})}
        return json_response(vendor.error_body(status, message, code, param), status, merged)

    @app.exception_handler(VendorError)
    async def _vendor_error(_: Request, exc: VendorError):
        return error(exc.status, exc.message, exc.code, exc.param, exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException):
        if exc.status_code == 404:
            return error(
                404, f"Unrecognized request URL ({request.method}: {request.url.path}).", "not_found"
            )
        if exc.status_code == 405:
            return error(405, f"Method {request.method} is not allowed on {request.url.path}.", "not_allowed")
        return error(exc.status_code, str(exc.detail), None)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ())[1:]) or None
        return error(400, f"Invalid request: {first.get('msg', 'malformed input')}", "invalid_request", where)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        log.exception("sandbox %s: %s %s failed", vendor.name, request.method, request.url.path)
        return error(500, "An unexpected error occurred.", "internal_error")

    app.add_middleware(VendorGate, vendor=vendor, faults=faults, error=error)

    app.include_router(vendor.router)
    from sandbox.server.admin import router as admin_router

    app.include_router(admin_router, prefix=ADMIN_PREFIX)
    return app


async def read_json_body(request: Request) -> Any:
    """The request's JSON body, or a 400 VendorError naming the problem."""
    raw = await request.body()
    if not raw:
        raise VendorError(400, "The request body is empty; a JSON object is required.", "invalid_request")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise VendorError(400, f"The request body is not valid JSON: {exc}", "invalid_json") from None


def int_param(
    request: Request,
    name: str,
    default: int,
    lo: int,
    hi: int,
    *,
    invalid: Callable[[str], Exception] | None = None,
    out_of_range: Callable[[int], Exception] | None = None,
) -> int:
    """A bounded integer query parameter, or a 400 naming it.

    `invalid(raw)` and `out_of_range(value)` build a vendor's own error; Stripe's shape by default.
    """
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        if invalid is not None:
            raise invalid(raw) from None
        raise VendorError(400, f"Invalid integer: {raw}", "parameter_invalid_integer", param=name) from None
    if not lo <= value <= hi:
        if out_of_range is not None:
            raise out_of_range(value)
        raise VendorError(
            400, f"{name} must be between {lo} and {hi}, got {value}.", "parameter_out_of_range", param=name
        )
    return value


def log_write(request: Request, status: int, body: Any, response: Any) -> None:
    """Record a write the request made in the world's write log (vendor, path and principal from it)."""
    request.app.state.world.record_write(
        vendor=request.app.state.vendor.name,
        method=request.method,
        path=request.url.path,
        status=status,
        principal=getattr(request.state, "principal", None),
        body=body,
        response=response,
    )
