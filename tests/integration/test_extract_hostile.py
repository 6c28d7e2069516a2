"""Every source under `--faults hostile` (429s, 5xx, slow and truncated pages, repeated records, ERP
maintenance, schema drift) lands the same records as under `--faults none`; the drift is reported."""

from __future__ import annotations

import re

import duckdb
import orjson
import pytest

from revsync.connectors.http import RetryPolicy
from revsync.connectors.load import Window, load_source
from revsync.connectors.registry import CONNECTORS

pytestmark = pytest.mark.integration

ORIGIN = re.compile(r"http://127\.0\.0\.1:\d+")
POLICY = RetryPolicy(max_attempts=12, max_total_s=90, base_delay_s=0.05, max_delay_s=1.0)
# What the sandbox's drift does to each vendor's records (sandbox/server/vendors/*_api.py `drift`).
DRIFT = {
    "stripe": {
        ("billing_mode", "new_field", None, "object"),
        ("created", "type_changed", "number", "string"),
        ("livemode", "type_changed", "boolean", "string"),  # usage summaries have no `created`
    },
    "hubspot": {("url", "new_field", None, "string"), ("archived", "type_changed", "boolean", "string")},
    "zendesk": {
        ("custom_status_id", "new_field", None, "number"),
        ("id", "type_changed", "number", "string"),
    },
    "netsuite": {
        ("custentity_sandbox_segment", "new_field", None, "string"),
        ("id", "type_changed", "string", "number"),
    },
}


def _load_all(con, server, batch_id: str, window: Window | None = None) -> None:
    for name, connector in CONNECTORS.items():
        results = load_source(
            con,
            connector,
            server.base_url(name),
            server.creds(name),
            batch_id,
            policy=POLICY,
            window=window or Window(),
        )
        assert all(r.quarantined == 0 for r in results.values()), (name, results)


def _records(con, source: str, stream: str) -> dict[str, dict]:
    rows = con.execute(f'select _pk, record::varchar from raw_{source}."{stream}"').fetchall()
    return {pk: orjson.loads(text) for pk, text in rows}


def _normalised(record: dict, reference: dict) -> dict:
    """`record` without the fields `reference` lacks, values as JSON text (`"1"` equals `1`), and the
    two servers' origins (in Zendesk's `url`s) made equal."""
    text = {
        k: v if isinstance(v, str) else orjson.dumps(v).decode() for k, v in record.items() if k in reference
    }
    return {k: ORIGIN.sub("http://sandbox", v) for k, v in text.items()}


def test_hostile_faults_land_the_same_records_and_report_the_drift(
    sandbox, start_sandbox_factory, world_copy, tmp_path
):
    clean = duckdb.connect(str(tmp_path / "clean.duckdb"))
    _load_all(clean, sandbox, "b1")
    want = {
        (source, stream.name): _records(clean, source, stream.name)
        for source, connector in CONNECTORS.items()
        for stream in connector.streams
    }
    hostile_wh = duckdb.connect(str(tmp_path / "hostile.duckdb"))
    with start_sandbox_factory(world_copy, faults="hostile") as hostile:
        _load_all(hostile_wh, hostile, "b1")
        # the clean warehouse read again from the hostile server: the drift shows against its schema
        _load_all(clean, hostile, "b2", Window(full_refresh=True))
        injected = hostile.admin("faults")["injected"]

    for vendor in CONNECTORS:
        assert injected[vendor].get("schema_drift", 0) > 0, (vendor, injected[vendor])
        assert any(k.startswith("http_5") for k in injected[vendor]), (vendor, injected[vendor])
    assert sum(injected[v].get("truncated_page", 0) for v in CONNECTORS) > 0, injected
    assert sum(injected[v].get("duplicate_record", 0) for v in CONNECTORS) > 0, injected
    assert sum(injected[v].get("rate_limit", 0) for v in CONNECTORS) > 0, injected

    for (source, stream), records in want.items():
        got = _records(hostile_wh, source, stream)
        assert got.keys() == records.keys(), (source, stream)
        for pk, record in records.items():
            assert _normalised(got[pk], record) == _normalised(record, record), (source, stream, pk)

    drift = clean.execute(
        "select distinct source, field, change, was_type, now_type from revsync_state.schema_drift"
        " where batch_id = 'b2'"
    ).fetchall()
    for source, expected in DRIFT.items():
        assert {row[1:] for row in drift if row[0] == source} == expected, source
