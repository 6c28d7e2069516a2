"""The reconciliation report inside the Airflow UI: an Airflow 3 plugin with a FastAPI app (mounted on
the api-server under /revsync) and an external view that adds "Reconciliation" to the UI's navigation,
shown in the UI's own frame.

Registered through the `airflow.plugins` entry point (pyproject.toml), so the api-server finds it
wherever the package is installed, without importing the rest of plugins/ as plugin files. The page
is the last report `revsync report` wrote (`REVSYNC_REPORT_DIR`, default build/report in the checkout).
"""

from __future__ import annotations

import os
from pathlib import Path

from airflow.plugins_manager import AirflowPlugin
from fastapi import FastAPI, HTTPException
from fastapi.responses import FileResponse, HTMLResponse

ROOT = Path(__file__).resolve().parents[2]
URL_PREFIX = "/revsync"


def report_dir() -> Path:
    return Path(os.environ.get("REVSYNC_REPORT_DIR", ROOT / "build" / "report"))


app = FastAPI(title="revsync reconciliation report", docs_url=None, redoc_url=None, openapi_url=None)


@app.get("/report/", response_class=HTMLResponse)
def report_page() -> FileResponse:
    page = report_dir() / "index.html"
    if not page.exists():
        raise HTTPException(
            status_code=404,
            detail=f"no report at {page} yet: it is written by `revsync report` (and the demo)",
        )
    return FileResponse(page, media_type="text/html")


@app.get("/report/metrics.json")
def report_metrics() -> FileResponse:
    data = report_dir() / "metrics.json"
    if not data.exists():
        raise HTTPException(status_code=404, detail=f"no metrics at {data} yet: run `revsync report`")
    return FileResponse(data, media_type="application/json")


class RevsyncPlugin(AirflowPlugin):
    name = "revsync"
    fastapi_apps = [{"app": app, "url_prefix": URL_PREFIX, "name": "revsync reconciliation report"}]
    external_views = [
        {
            "name": "Reconciliation",
            "href": f"{URL_PREFIX.lstrip('/')}/report/",
            "destination": "nav",
            "url_route": "reconciliation",
        }
    ]
