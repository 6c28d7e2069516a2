"""Serve the vendor sandboxes from one process: one event loop, one world, one port per vendor.

Six vendors: the four the world is generated for, and Chargebee and Freshdesk, which serve the same
world's Stripe billing and Zendesk support data in their own wire protocols (OPTIONAL_VENDORS).

One process owns the world's DuckDB file (DuckDB allows one writer), so `advance` and vendor writes go
through this process's HTTP endpoints rather than opening the file beside it.
"""

from __future__ import annotations

import asyncio
import base64
import errno
import importlib
import json
import os
import signal
import socket
from collections.abc import Callable
from pathlib import Path

import uvicorn

from sandbox.server.app import make_app
from sandbox.server.faults import VENDORS, FaultInjector, parse_faults
from sandbox.server.world import World

# Served from other vendors' tables; no fault profiles (faults.VENDORS keeps the four core vendors).
OPTIONAL_VENDORS = ("chargebee", "freshdesk")
SERVED = (*VENDORS, *OPTIONAL_VENDORS)
DEFAULT_PORTS = {
    "stripe": 12111,
    "hubspot": 12112,
    "zendesk": 12113,
    "netsuite": 12114,
    "chargebee": 12115,
    "freshdesk": 12116,
}
ENDPOINTS_FILE = "endpoints.json"


class PortTaken(RuntimeError):
    pass


def vendor_module(name: str):
    return importlib.import_module(f"sandbox.server.vendors.{name}_api")


def credentials(world: World) -> dict[str, dict[str, str]]:
    """Each vendor's credential as stored in the world's meta table at generation time.

    A vendor module with its own `credentials(world)` (Chargebee, Freshdesk: derived from the world's
    seed unless meta holds them) supplies its credentials itself.
    """
    rows = dict(world.rows("select key, value from meta where key like 'cred.%'"))
    out: dict[str, dict[str, str]] = {v: {} for v in SERVED}
    for key, value in rows.items():
        _, vendor, field = key.split(".", 2)
        out.setdefault(vendor, {})[field] = value
    for vendor in SERVED:
        module = vendor_module(vendor)
        if hasattr(module, "credentials"):
            out[vendor] = module.credentials(world)
    return out


def bind(host: str, port: int, vendor: str) -> socket.socket:
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY on accepted connections only for TCP-protocol
    # sockets; with protocol 0 Nagle's algorithm delayed every kept-alive response by ~40 ms.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise PortTaken(
                f"{vendor}: port {port} on {host} is already in use; stop whatever holds it "
                f"(`ss -ltnp 'sport = :{port}'`) or pass --port-base with free ports (0 picks any)"
            ) from None
        raise
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def client_headers(vendor: str, creds: dict[str, str]) -> dict[str, str]:
    """The Authorization header a client of `vendor`'s sandbox sends (NetSuite: its OAuth 2.0 bearer)."""
    if vendor == "zendesk":
        pair = f"{creds['email']}/token:{creds['token']}"
    elif vendor == "chargebee":
        pair = f"{creds['api_key']}:"  # the key as user name, an empty password
    elif vendor == "freshdesk":
        pair = f"{creds['api_key']}:X"  # the key as user name, any password
    else:
        token = {"stripe": "api_key", "hubspot": "token", "netsuite": "bearer"}[vendor]
        return {"Authorization": f"Bearer {creds[token]}"}
    return {"Authorization": "Basic " + base64.b64encode(pair.encode()).decode()}


def credential_line(vendor: str, creds: dict[str, str]) -> str:
    if vendor == "zendesk":
        return f"{creds['email']}/token:{creds['token']}"
    if vendor == "netsuite":
        return f"account={creds['account']} token={creds['bearer']}"
    if vendor == "chargebee":
        return f"site={creds['site']} api_key={creds['api_key']}"
    if vendor == "freshdesk":
        return f"domain={creds['domain']} api_key={creds['api_key']}"
    return creds.get("api_key") or creds.get("token", "")


async def serve(
    world_dir: Path,
    *,
    host: str = "127.0.0.1",
    port_base: int | None = None,
    faults: str = "none",
    on_ready: Callable[[dict], None] | None = None,
) -> None:
    """Serve until SIGINT/SIGTERM. `port_base` None: the default ports; 0: any free ports."""
    world = World(Path(world_dir) / "world.duckdb")
    seed = int(world.meta("seed", "0"))
    modules = {v: vendor_module(v) for v in SERVED}
    injector = FaultInjector(
        parse_faults(faults), seed, drift={v: m.drift for v, m in modules.items() if hasattr(m, "drift")}
    )
    sockets = {}
    try:
        for offset, vendor in enumerate(SERVED):
            port = DEFAULT_PORTS[vendor] if port_base is None else (port_base + offset if port_base else 0)
            sockets[vendor] = bind(host, port, vendor)
    except PortTaken:
        for sock in sockets.values():
            sock.close()
        raise
    creds = credentials(world)
    servers = []
    endpoints = {}
    for vendor, sock in sockets.items():
        app = make_app(modules[vendor].vendor(), world, injector)
        config = uvicorn.Config(
            app,
            log_level="warning",
            lifespan="off",
            access_log=False,
            proxy_headers=False,
            server_header=False,
        )
        servers.append(uvicorn.Server(config))
        port = sock.getsockname()[1]
        endpoints[vendor] = {
            "base_url": f"http://{host}:{port}",
            "credentials": creds[vendor],
            "credential": credential_line(vendor, creds[vendor]),
        }
    endpoints_path = Path(world_dir) / ENDPOINTS_FILE
    # written aside and renamed: a client polling for the file never reads it half written
    partial = endpoints_path.with_suffix(".json.partial")
    partial.write_text(
        json.dumps({"pid": os.getpid(), "faults": injector.names, "vendors": endpoints}, indent=2)
    )
    partial.replace(endpoints_path)

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    tasks = [
        asyncio.create_task(s.serve(sockets=[sock]))
        for s, sock in zip(servers, sockets.values(), strict=True)
    ]
    while not all(s.started for s in servers):
        if any(t.done() for t in tasks):
            break
        await asyncio.sleep(0.01)
    if on_ready:
        on_ready(endpoints)
    await stop.wait()
    for server in servers:
        server.should_exit = True
    await asyncio.gather(*tasks, return_exceptions=True)
    endpoints_path.unlink(missing_ok=True)
    world.close()


def read_endpoints(world_dir: Path) -> dict:
    """The running sandbox's endpoints for `world_dir`, or a clear error saying how to start one."""
    path = Path(world_dir) / ENDPOINTS_FILE
    if not path.exists():
        raise FileNotFoundError(
            f"no sandbox is serving {world_dir}: start one with `revsync sandbox serve {world_dir}`"
        )
    return json.loads(path.read_text())
