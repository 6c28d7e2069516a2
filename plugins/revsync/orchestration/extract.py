"""The extract DAGs: `extract_<source>` for every registered source, one task per stream (or, with
`REVSYNC_EXTRACT_GRAIN=source`, one task reading the source's streams one after another).

Each stream task reads its cursor, fetches its pages (the list, or the change feed since the cursor)
into a spool file without holding the warehouse, then lands the spool under the warehouse lock as
batch `<run_id>`: a retry, a cleared task or a rerun of the run replaces its own batch and lands
nothing twice. When every stream succeeded, `publish` emits the source's Asset, which schedules the
reconcile DAG; a run with a failed stream emits nothing.

Parsing builds DAG objects from the connector registry only: no database, network or file access.
"""

from __future__ import annotations

import logging
import os
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from revsync.connectors import registry
from revsync.connectors.base import run_stream
from revsync.connectors.load import DEFAULT_LOOKBACK_S, Window, plan_stream
from revsync.connectors.spool import read_spool, write_spool
from revsync.warehouse.connect import open_warehouse, warehouse_path
from revsync.warehouse.landing import land, read_cursor

log = logging.getLogger(__name__)

DEFAULT_SCHEDULE = "*/15 * * * *"


def asset_uri(source: str) -> str:
    return f"revsync://raw/{source}"


def enabled_sources(environ: dict[str, str] | None = None) -> list[str]:
    """The core sources, plus an optional one when its connection is configured through the environment
    (`AIRFLOW_CONN_<SOURCE>_DEFAULT`) or named in `REVSYNC_EXTRA_SOURCES` (for connections kept in the
    metadata database or a secrets backend, which parsing must not query)."""
    env = os.environ if environ is None else environ
    extra = {s.strip() for s in env.get("REVSYNC_EXTRA_SOURCES", "").split(",") if s.strip()}
    return list(registry.available(lambda s: f"AIRFLOW_CONN_{s.upper()}_DEFAULT" in env or s in extra))


def parse_start_cursor(value: Any) -> int | None:
    """The `start_cursor` param (ISO 8601 or epoch seconds; empty for none) as epoch seconds."""
    if value in (None, ""):
        return None
    text = str(value).strip()
    if text.lstrip("-").isdigit():
        return int(text)
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError(f"start_cursor {value!r} has no time zone; add Z or an offset")
    return int(parsed.timestamp())


def run_window(params: dict[str, Any], data_interval_end: datetime | None, lookback_s: int | None) -> Window:
    return Window(
        full_refresh=bool(params.get("full_refresh", False)),
        start_cursor=parse_start_cursor(params.get("start_cursor")),
        until=int(data_interval_end.timestamp()) if data_interval_end is not None else None,
        lookback_s=int(params.get("lookback_seconds") or lookback_s or DEFAULT_LOOKBACK_S),
        force=bool(params.get("force", False)),
    )


def extract_stream_task(
    source: str,
    stream_name: str,
    base_url: str,
    credentials: dict[str, str],
    batch_id: str,
    window: Window,
    warehouse: Path | None = None,
    spool_dir: Path | None = None,
) -> dict[str, Any]:
    """The body of one stream task (callable without Airflow); returns a summary without secrets."""
    connector = registry.get(source)
    stream = connector.stream(stream_name)
    warehouse = warehouse or warehouse_path()
    spool_dir = spool_dir or warehouse.parent / "spool"
    started = time.monotonic()
    with open_warehouse(warehouse) as con:
        stored = read_cursor(con, source, stream_name)
    plan = plan_stream(stream, stored, window)
    if plan.mode == "skipped":
        log.info(
            "%s.%s: read to %s; not due again for %d s", source, stream_name, stored, stream.refresh_every_s
        )
        counts = dict.fromkeys(("pages", "received", "landed", "unchanged", "duplicates", "quarantined"), 0)
        return {
            "source": source,
            "stream": stream_name,
            "mode": plan.mode,
            "since": None,
            **counts,
            "drift": [],
            "cursor": stored,
            "retries": 0,
            "seconds": round(time.monotonic() - started, 3),
        }
    log.info("%s.%s: %s read since %s (stored cursor %s)", source, stream_name, plan.mode, plan.since, stored)
    spool = spool_dir / f"{source}.{stream_name}.{_safe(batch_id)}.jsonl"
    with connector.fetcher(credentials) as fetcher:
        stats = write_spool(spool, run_stream(fetcher, base_url, plan.stream), log=log)
        retries = fetcher.retries
    log.info("%s.%s: fetched %d pages, %d records", source, stream_name, stats.pages, stats.records)
    with open_warehouse(warehouse) as con:
        result = land(con, source, plan.stream, read_spool(spool), batch_id, cursor_floor=plan.cursor_floor)
    spool.unlink(missing_ok=True)
    summary = {
        "source": source,
        "stream": stream_name,
        "mode": plan.mode,
        "since": plan.since,
        "pages": stats.pages,
        "received": result.received,
        "landed": result.rows,
        "unchanged": result.unchanged,
        "duplicates": result.duplicates,
        "quarantined": result.quarantined,
        "drift": [f"{d.change}:{d.field}" for d in result.drift],
        "cursor": result.cursor,
        "retries": retries,
        "seconds": round(time.monotonic() - started, 3),
    }
    log.info("%s.%s: %s", source, stream_name, summary)
    return summary


def _safe(batch_id: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in batch_id)


def extract_schedule(environ: dict[str, str] | None = None) -> str | None:
    """`REVSYNC_EXTRACT_SCHEDULE` (a cron expression or preset; `none`: only triggered runs), else every
    15 minutes."""
    value = (os.environ if environ is None else environ).get("REVSYNC_EXTRACT_SCHEDULE", DEFAULT_SCHEDULE)
    return None if value.strip().lower() in ("none", "manual", "") else value.strip()


def extract_grain(environ: dict[str, str] | None = None) -> str:
    """`REVSYNC_EXTRACT_GRAIN`: `stream` (the default: a task per stream, each retried and rerun alone) or
    `source` (one task per source: each task start costs a process and its imports, ~3 s of CPU, which
    on small data outweighs the reading; a failed stream then reruns the source's task)."""
    grain = (os.environ if environ is None else environ).get("REVSYNC_EXTRACT_GRAIN", "stream")
    grain = grain.strip().lower()
    if grain not in ("stream", "source"):
        raise ValueError(f"REVSYNC_EXTRACT_GRAIN={grain!r}: use stream or source")
    return grain


def task_defaults() -> dict[str, Any]:
    """Every revsync DAG's task defaults: REVSYNC_TASK_RETRIES retries (3) with exponential backoff, and
    the failure alert (revsync.observability.alerts: a webhook in the `revsync_alerts` connection)."""
    from revsync.observability.alerts import on_failure

    return {
        "retries": int(os.environ.get("REVSYNC_TASK_RETRIES", "3")),
        "retry_delay": timedelta(seconds=30),
        "retry_exponential_backoff": True,
        "execution_timeout": timedelta(hours=2),
        "on_failure_callback": on_failure,
    }


def build_extract_dag(source: str, schedule: str | None = None):
    """The `extract_<source>` DAG."""
    from airflow.sdk import DAG, Asset, BaseHook, Param, get_current_context, task

    from revsync.orchestration.connections import conn_id, source_config

    connector = registry.get(source)
    asset = Asset(asset_uri(source), extra={"source": source})
    with DAG(
        dag_id=f"extract_{source}",
        schedule=schedule or extract_schedule(),
        start_date=datetime(2026, 1, 1),
        catchup=False,
        max_active_runs=1,
        tags=["revsync", "extract", source],
        doc_md=__doc__ + f"\n\nSource `{source}`: streams {', '.join(s.name for s in connector.streams)}; "
        f"connection `{conn_id(source)}`; emits Asset `{asset_uri(source)}`.",
        default_args=task_defaults(),
        params={
            "full_refresh": Param(False, type="boolean", description="Read every stream in full."),
            "force": Param(
                False,
                type="boolean",
                description="Also read streams read within their refresh interval (Stripe usage: hourly).",
            ),
            "start_cursor": Param(
                "",
                type="string",
                description="Read changes since this time (ISO 8601 or epoch seconds) instead of the cursor.",
            ),
            "lookback_seconds": Param(
                DEFAULT_LOOKBACK_S,
                type="integer",
                minimum=0,
                description="Re-read this much before the cursor.",
            ),
        },
    ) as dag:

        def run_stream_task(stream_name: str) -> dict[str, Any]:
            context = get_current_context()
            config = source_config(source, BaseHook.get_connection(conn_id(source)))
            window = run_window(context["params"], context.get("data_interval_end"), config.lookback_s)
            return extract_stream_task(
                source, stream_name, config.base_url, config.credentials, context["run_id"], window
            )

        if extract_grain() == "source":

            @task(task_id="extract", doc_md=f"Extract every `{source}` stream into raw landing, in turn.")
            def extract_all() -> list[dict[str, Any]]:
                return [run_stream_task(stream.name) for stream in connector.streams]

            streams = extract_all()
        else:
            streams = []
            for stream in connector.streams:

                @task(
                    task_id=f"extract_{stream.name}",
                    doc_md=f"Extract `{source}.{stream.name}` into raw landing.",
                )
                def extract(stream_name: str = stream.name) -> dict[str, Any]:
                    return run_stream_task(stream_name)

                streams.append(extract())

        @task(task_id="publish", outlets=[asset], doc_md="Emit the source Asset once every stream landed.")
        def publish(summaries: list[dict[str, Any]]) -> dict[str, int]:
            totals = {"landed": sum(s["landed"] for s in summaries)}
            totals["quarantined"] = sum(s["quarantined"] for s in summaries)
            log.info("%s: %s", source, totals)
            return totals

        publish(streams)
    return dag


def build_extract_dags() -> dict[str, Any]:
    return {f"extract_{source}": build_extract_dag(source) for source in enabled_sources()}
