"""The reconcile DAG built from the checkout's real dbt manifest: one task per model (a source's staging
views together), dependencies as in dbt's graph, every test in exactly one task, scheduled on the raw
Assets of the enabled sources, publishing `revsync://warehouse/reconciled`."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from airflow.sdk import AssetAll, AssetAny

from revsync.orchestration.extract import enabled_sources
from revsync.orchestration.reconcile import BUILT_TYPES, build_reconcile_dag, plan, run_as_of, validated_uri


@pytest.fixture(scope="module")
def manifest(reconcile_home) -> dict:
    return json.loads((reconcile_home / "dbt" / "manifest.json").read_text())


@pytest.fixture(scope="module")
def dag(manifest):
    return build_reconcile_dag(manifest, sources=enabled_sources({}))


def _built(manifest: dict) -> dict[str, dict]:
    return {
        uid: n
        for uid, n in manifest["nodes"].items()
        if n["resource_type"] in BUILT_TYPES and n["config"]["materialized"] != "ephemeral"
    }


def _owner(manifest: dict) -> dict[str, str]:
    return {uid: task.task_id for task in plan(manifest) for uid in task.nodes}


def test_tasks_are_the_manifest_models(manifest, dag):
    built = _built(manifest)
    tasks = plan(manifest)
    owned = [uid for task in tasks for uid in task.nodes]
    assert sorted(owned) == sorted(built)  # every model once, nothing else
    assert len(built) >= 20 and "model.revsync.mismatches" in built
    staging = {t.task_id: t for t in tasks if t.task_id.startswith("staging_")}
    assert set(staging) >= {"staging_stripe", "staging_hubspot", "staging_zendesk", "staging_netsuite"}
    for task in tasks:
        if task.task_id in staging:
            source = task.task_id.removeprefix("staging_")
            assert all(built[uid]["fqn"][1:3] == ["staging", source] for uid in task.nodes)
        else:
            assert len(task.nodes) == 1 and built[task.nodes[0]]["name"] == task.task_id
    assert sum(len(t.nodes) for t in staging.values()) == sum(
        n["fqn"][1] == "staging" for n in built.values()
    )
    gates = {"gate_staging", "gate_canonical", "gate_sync", "publish_changes"}
    assert {t.task_id for t in dag.tasks} == {t.task_id for t in tasks} | {"publish"} | gates


def test_dependencies_follow_the_dbt_graph(manifest, dag):
    built, owner = _built(manifest), _owner(manifest)
    expected: dict[str, set[str]] = {task_id: set() for task_id in set(owner.values())}
    for uid, node in built.items():
        for parent in node["depends_on"]["nodes"]:
            if parent in owner and owner[parent] != owner[uid]:
                expected[owner[uid]].add(owner[parent])
    tests = [n for n in manifest["nodes"].values() if n["resource_type"] == "test"]
    for task in plan(manifest):
        actual = dag.get_task(task.task_id).upstream_task_ids
        assert actual >= expected[task.task_id], task.task_id
        for extra in actual - expected[task.task_id]:  # only a test spanning both tasks adds an edge
            assert any(
                {owner.get(p) for p in t["depends_on"]["nodes"]} >= {extra, task.task_id} for t in tests
            ), (task.task_id, extra)
    assert dag.get_task("int_customer_identity").upstream_task_ids == {
        "staging_stripe",
        "staging_hubspot",
        "staging_zendesk",
        "staging_netsuite",
    }
    assert "int_customer_identity" in dag.get_task("mismatches").upstream_task_ids
    assert dag.get_task("publish").upstream_task_ids == set(owner.values())


def test_every_dbt_test_runs_in_exactly_one_task_after_all_its_models(manifest):
    tasks = {t.task_id: t for t in plan(manifest)}
    owner = _owner(manifest)
    tests = {uid: n for uid, n in manifest["nodes"].items() if n["resource_type"] == "test"}
    tests |= manifest.get("unit_tests", {})
    assert sum(t.tests for t in tasks.values()) == len(tests)  # every test of the project has a task
    for test in tests.values():
        owners = {owner[p] for p in test["depends_on"]["nodes"] if p in owner}
        if len(owners) > 1:  # spans tasks: named in the one that waits for all the others
            (host,) = [t for t in tasks.values() if test["name"] in t.select]
            assert owners - {host.task_id} <= host.upstream


def test_schedule_is_the_enabled_sources_raw_assets(dag):
    assert isinstance(dag.schedule, AssetAny)
    assert sorted(a.uri for a in dag.schedule.objects) == sorted(
        f"revsync://raw/{s}" for s in ("stripe", "hubspot", "zendesk", "netsuite")
    )
    assert dag.catchup is False and dag.max_active_runs == 1 and dag.max_active_tasks == 1
    assert sorted(dag.params.keys()) == [
        "as_of",
        "dbt_vars",
        "full_refresh",
        "gate_freshness_hours",
        "gate_volume_band",
    ]
    assert dag.default_args["retries"] == 3 and dag.doc_md and "reconcile" in dag.tags
    assert [a.uri for a in dag.get_task("publish").outlets] == ["revsync://warehouse/reconciled"]
    assert dag.get_task("mismatches").doc_md.startswith("`dbt build --select mismatches")


def test_an_optional_source_joins_the_schedule(manifest):
    dag = build_reconcile_dag(manifest, sources=enabled_sources({"REVSYNC_EXTRA_SOURCES": "chargebee"}))
    assert "revsync://raw/chargebee" in {a.uri for a in dag.schedule.objects}


def test_plan_looks_through_ephemeral_models_and_names_tests_spanning_tasks():
    def node(name, kind="model", materialized="table", parents=(), fqn=None):
        return {
            "unique_id": f"{kind}.p.{name}",
            "name": name,
            "resource_type": kind,
            "fqn": fqn or ["p", "marts", name],
            "config": {"materialized": materialized},
            "depends_on": {"nodes": list(parents)},
        }

    nodes = [
        node(
            "stg_a__x", materialized="view", parents=["source.p.a.x"], fqn=["p", "staging", "a", "stg_a__x"]
        ),
        node(
            "stg_a__y", materialized="view", parents=["source.p.a.y"], fqn=["p", "staging", "a", "stg_a__y"]
        ),
        node("eph", materialized="ephemeral", parents=["model.p.stg_a__x"]),
        node("mart", parents=["model.p.eph"]),
        node("other", parents=["model.p.stg_a__y"]),
        node("rel_mart_other", kind="test", parents=["model.p.mart", "model.p.other"]),
        node("src_test", kind="test", parents=["source.p.a.x"]),
    ]
    tasks = {t.task_id: t for t in plan({"nodes": {n["unique_id"]: n for n in nodes}})}
    assert sorted(tasks) == ["mart", "other", "staging_a"]
    assert tasks["staging_a"].select == ["stg_a__x", "stg_a__y", "src_test"]
    assert tasks["mart"].upstream == {"staging_a"}  # through the ephemeral model
    host = tasks["other"] if "rel_mart_other" in tasks["other"].select else tasks["mart"]
    assert host.upstream >= {"mart", "other"} - {host.task_id}
    assert sum(t.tests for t in tasks.values()) == 2


def test_as_of_is_the_param_else_the_run_time():
    run_after = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)
    assert run_as_of({"as_of": ""}, run_after) == "2026-03-01T12:30:00Z"
    assert run_as_of({"as_of": "2026-02-01T01:00:00+01:00"}, run_after) == "2026-02-01T00:00:00Z"
    with pytest.raises(ValueError, match="time zone"):
        run_as_of({"as_of": "2026-02-01T01:00:00"}, run_after)


def test_each_gate_stage_follows_its_schemas_models_and_the_stage_before(manifest, dag):
    """gate_<stage> waits for every dbt task building a relation in schema <stage> and for the previous
    gate; only publish_changes, after gate_sync, emits the validated change-set Assets."""
    owner = _owner(manifest)
    for previous, stage in ((None, "staging"), ("gate_staging", "canonical"), ("gate_canonical", "sync")):
        building = {owner[uid] for uid, n in _built(manifest).items() if n["schema"] == stage}
        assert building, stage
        expected = building | ({previous} if previous else set())
        assert dag.get_task(f"gate_{stage}").upstream_task_ids == expected, stage
    publish = dag.get_task("publish_changes")
    assert publish.upstream_task_ids == {"gate_sync"}
    assert {o.uri for o in publish.outlets} == {
        validated_uri("erp_changes"),
        validated_uri("entitlement_changes"),
    }
    assert not any(dag.get_task(f"gate_{s}").outlets for s in ("staging", "canonical", "sync"))


def test_the_layer_grain_builds_each_schema_in_one_task_in_dependency_order(manifest, monkeypatch):
    monkeypatch.setenv("REVSYNC_RECONCILE_GRAIN", "layer")
    dag = build_reconcile_dag(manifest, sources=enabled_sources({}))
    tasks = plan(manifest, "layer")
    assert [t.task_id for t in tasks] == ["staging", "intermediate", "canonical", "reconciliation", "sync"]
    built = _built(manifest)
    assert sorted(uid for t in tasks for uid in t.nodes) == sorted(built)
    assert all(built[uid]["schema"] == t.task_id for t in tasks for uid in t.nodes)
    tests = [n for n in manifest["nodes"].values() if n["resource_type"] == "test"]
    assert sum(t.tests for t in tasks) == len(tests) + len(manifest.get("unit_tests", {}))
    assert dag.get_task("gate_canonical").upstream_task_ids == {"canonical", "gate_staging"}
    assert "intermediate" in dag.get_task("reconciliation").upstream_task_ids
    assert "reconciliation" in dag.get_task("sync").upstream_task_ids
    monkeypatch.setenv("REVSYNC_RECONCILE_GRAIN", "per-row")
    with pytest.raises(ValueError, match="model or layer or project"):
        build_reconcile_dag(manifest, sources=enabled_sources({}))


def test_the_project_grain_is_one_dbt_task_then_one_gate_task(manifest, monkeypatch):
    monkeypatch.setenv("REVSYNC_RECONCILE_GRAIN", "project")
    dag = build_reconcile_dag(manifest, sources=enabled_sources({}))
    (task,) = plan(manifest, "project")
    assert task.task_id == "dbt_build" and sorted(task.nodes) == sorted(_built(manifest))
    tests = [n for n in manifest["nodes"].values() if n["resource_type"] == "test"]
    assert task.tests == len(tests) + len(manifest.get("unit_tests", {}))
    assert set(dag.task_ids) == {"dbt_build", "publish", "gate", "publish_changes"}
    assert dag.get_task("gate").upstream_task_ids == {"dbt_build"}
    assert dag.get_task("publish_changes").upstream_task_ids == {"gate"}
    assert dag.get_task("publish").upstream_task_ids == {"dbt_build"}


def test_reconcile_can_wait_for_every_source(manifest, monkeypatch):
    monkeypatch.setenv("REVSYNC_RECONCILE_ON", "all")
    dag = build_reconcile_dag(manifest, sources=["stripe", "zendesk"])
    assert isinstance(dag.schedule, AssetAll)
    assert sorted(a.uri for a in dag.schedule.objects) == ["revsync://raw/stripe", "revsync://raw/zendesk"]
    monkeypatch.setenv("REVSYNC_RECONCILE_ON", "some")
    with pytest.raises(ValueError, match="any or all"):
        build_reconcile_dag(manifest, sources=["stripe"])
