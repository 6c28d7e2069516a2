"""The dlt peer of the extraction benchmark, run by bench/peers.py in its own virtualenv (dlt's pins
must not touch revsync's): `python bench/peer_dlt.py <config.json>`.

The config names the sandbox's base URL, the auth headers and, per stream, the path, params, record
path and paging protocol, all taken from revsync's connector definitions so both clients ask for the
same pages. dlt's `rest_api` source loads them into a DuckDB file with dlt's defaults (extract,
normalize, load). Prints one JSON line: rows per stream (top-level table) and wall seconds.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import dlt
import duckdb
from dlt.sources.helpers.rest_client.paginators import BasePaginator
from dlt.sources.rest_api import rest_api_source


class StripeStartingAfter(BasePaginator):
    """Stripe lists: `starting_after=<last id>` while `has_more` (dlt has no built-in for it)."""

    def __init__(self) -> None:
        super().__init__()
        self.last_id: str | None = None

    def update_state(self, response, data=None) -> None:  # noqa: ANN001 - dlt's signature
        body = response.json()
        items = body.get("data") or []
        self._has_next_page = bool(body.get("has_more")) and bool(items)
        self.last_id = items[-1]["id"] if items else None

    def update_request(self, request) -> None:  # noqa: ANN001 - dlt's signature
        request.params["starting_after"] = self.last_id


def paginator(protocol: str):  # noqa: ANN201
    if protocol == "stripe":
        return StripeStartingAfter()
    if protocol == "hubspot":
        return {"type": "cursor", "cursor_path": "paging.next.after", "cursor_param": "after"}
    if protocol == "zendesk":
        return {"type": "json_link", "next_url_path": "links.next"}
    raise ValueError(f"no dlt paginator for {protocol!r}")


def main(config_path: str) -> None:
    config = json.loads(Path(config_path).read_text())
    work = Path(config["work"])
    resources = [
        {
            "name": s["name"],
            "endpoint": {
                "path": s["path"].lstrip("/"),
                "params": s["params"],
                "data_selector": s["record_path"],
                "paginator": paginator(s["protocol"]),
            },
            "write_disposition": "replace",
        }
        for s in config["streams"]
    ]
    source = rest_api_source(
        {
            "client": {"base_url": config["base_url"].rstrip("/") + "/", "headers": config["headers"]},
            "resources": resources,
        }
    )
    database = work / "dlt.duckdb"
    pipeline = dlt.pipeline(
        pipeline_name=f"peer_{config['source']}",
        pipelines_dir=str(work / "pipelines"),
        destination=dlt.destinations.duckdb(str(database)),
        dataset_name=config["source"],
    )
    started = time.perf_counter()
    pipeline.run(source)
    seconds = time.perf_counter() - started
    con = duckdb.connect(str(database), read_only=True)
    try:
        rows = {
            s["name"]: con.execute(f'select count(*) from "{config["source"]}"."{s["name"]}"').fetchone()[0]
            for s in config["streams"]
        }
    finally:
        con.close()
    print(json.dumps({"rows": rows, "seconds": seconds}))


if __name__ == "__main__":
    main(sys.argv[1])
