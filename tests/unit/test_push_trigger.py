"""The push DAGs' availability trigger against a real HTTP server on loopback: it keeps probing while
the target answers 503 (maintenance, honouring Retry-After) or refuses connections, and fires on the
first other answer (a 401 or 404 means the service is up); the trigger serializes without secrets."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from revsync.orchestration.push import TargetAvailableTrigger


class _Maintenance(BaseHTTPRequestHandler):
    down_until = 0.0
    seen: list[int] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        status = 503 if time.monotonic() < type(self).down_until else 401
        type(self).seen.append(status)
        self.send_response(status)
        if status == 503:
            self.send_header("Retry-After", "1")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args) -> None:  # quiet
        pass


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Maintenance)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()


async def _first_event(trigger: TargetAvailableTrigger, timeout: float = 30.0):
    return await asyncio.wait_for(anext(trigger.run()), timeout)


def test_the_trigger_waits_out_maintenance_then_fires(server):
    _Maintenance.seen = []
    _Maintenance.down_until = time.monotonic() + 2.5
    url = f"http://127.0.0.1:{server.server_address[1]}/services/rest/record/v1/metadata-catalog"
    trigger = TargetAvailableTrigger("netsuite", url, poll_interval=1.0)
    started = time.monotonic()
    event = asyncio.run(_first_event(trigger))
    assert event.payload["status"] == "available" and event.payload["target"] == "netsuite"
    assert time.monotonic() - started >= 2.0
    assert _Maintenance.seen[0] == 503 and _Maintenance.seen[-1] == 401 and _Maintenance.seen.count(401) == 1
    classpath, kwargs = trigger.serialize()
    assert classpath == "revsync.orchestration.push.TargetAvailableTrigger"
    assert kwargs == {"target": "netsuite", "url": url, "poll_interval": 1.0}  # no credentials


def test_the_trigger_keeps_waiting_while_the_target_is_unreachable():
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    trigger = TargetAvailableTrigger("zendesk", f"http://127.0.0.1:{port}/api/v2/organizations.json", 1.0)
    with pytest.raises(TimeoutError):
        asyncio.run(_first_event(trigger, timeout=2.5))
