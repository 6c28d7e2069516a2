"""The shape of the extract DAGs at each REVSYNC_EXTRACT_GRAIN (built from the connector registry)."""

from __future__ import annotations

import pytest

from revsync.connectors import registry
from revsync.orchestration.extract import asset_uri, build_extract_dag, extract_grain


def test_the_stream_grain_has_a_task_per_stream_before_publish(monkeypatch):
    monkeypatch.delenv("REVSYNC_EXTRACT_GRAIN", raising=False)
    dag = build_extract_dag("stripe")
    streams = {f"extract_{s.name}" for s in registry.get("stripe").streams}
    assert set(dag.task_ids) == streams | {"publish"}
    assert dag.get_task("publish").upstream_task_ids == streams


def test_the_source_grain_reads_every_stream_in_one_task_then_publishes(monkeypatch):
    monkeypatch.setenv("REVSYNC_EXTRACT_GRAIN", "source")
    dag = build_extract_dag("hubspot")
    assert set(dag.task_ids) == {"extract", "publish"}
    publish = dag.get_task("publish")
    assert publish.upstream_task_ids == {"extract"}
    assert {o.uri for o in publish.outlets} == {asset_uri("hubspot")}


def test_an_unknown_grain_is_refused_naming_the_choices():
    assert extract_grain({}) == "stream"
    with pytest.raises(ValueError, match="stream or source"):
        extract_grain({"REVSYNC_EXTRACT_GRAIN": "per-page"})
