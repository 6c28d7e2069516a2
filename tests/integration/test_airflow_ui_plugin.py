"""The reconciliation report inside a running Airflow 3 api-server: the revsync plugin (an entry-point
plugin) mounts its FastAPI app under /revsync and adds "Reconciliation" to the UI's navigation; the
page served is the report `revsync report` wrote."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time

import httpx
import pytest
from conftest import AIRFLOW, airflow_env

from revsync.observability.report import build_report

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def api_server(small_built, airflow_home, tmp_path_factory):
    folder = tmp_path_factory.mktemp("ui_plugin")
    warehouse = folder / "warehouse.duckdb"
    shutil.copy(small_built.warehouse, warehouse)
    build_report(warehouse, folder / "report", folder / "quality", folder / "dbt-docs")
    home = airflow_home(folder / "airflow")
    port = _free_port()
    env = {
        **airflow_env(home),
        "REVSYNC_REPORT_DIR": str(folder / "report"),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
    }
    log = (folder / "api-server.log").open("w")
    server = subprocess.Popen(
        [AIRFLOW, "api-server", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        cwd=home,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            assert server.poll() is None, (folder / "api-server.log").read_text()[-3000:]
            try:
                if httpx.get(f"{base}/api/v2/version", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, (folder / "api-server.log").read_text()[-3000:]
            time.sleep(0.5)
        yield base
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def test_the_api_server_serves_the_report_under_the_plugin_prefix(api_server):
    page = httpx.get(f"{api_server}/revsync/report/", timeout=30)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "Reconciliation report" in page.text and 'id="mismatches-by-type"' in page.text
    metrics = httpx.get(f"{api_server}/revsync/report/metrics.json", timeout=30)
    assert metrics.status_code == 200 and "mismatches_by_type" in metrics.json()


def test_the_ui_navigation_lists_reconciliation(api_server):
    plugins = httpx.get(f"{api_server}/api/v2/plugins", timeout=30)
    assert plugins.status_code == 200, plugins.text
    (revsync,) = [p for p in plugins.json()["plugins"] if p["name"] == "revsync"]
    (view,) = revsync["external_views"]
    assert view["name"] == "Reconciliation" and view["destination"] == "nav"
    assert view["href"] == "revsync/report/"
    frame = httpx.get(f"{api_server}/{view['href']}", timeout=30)  # what the UI frames
    assert frame.status_code == 200 and "Exceptions queue" in frame.text
