"""Run Great Expectations suites against warehouse tables and return structured outcomes.

The engine is GX's SQL datasource: every metric is a query the warehouse computes (DuckDB through
duckdb-engine with the two patches in `duckdb_patch`, PostgreSQL as is), so nothing loads a whole table
into pandas. Each expectation's outcome names the suite, the expectation, the table, the column, its
policy (`meta.policy`: block | quarantine), the observed value and a sample of failing rows (fetched
by the table's key from GX's unexpected index list). An expectation GX could not evaluate (a metric
raised) is a failure: the gate fails closed.
"""

from __future__ import annotations

import json
import logging
import os
import time
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

import great_expectations as gx  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from great_expectations.datasource.fluent.interfaces import TestConnectionError  # noqa: E402

from revsync.quality import duckdb_patch  # noqa: E402
from revsync.quality.suites import POLICIES, SuiteSpec  # noqa: E402
from revsync.warehouse.connect import MEMORY_LIMIT  # noqa: E402
from revsync.warehouse.state import connection_url  # noqa: E402

# duckdb-engine exposes no type module to GX, which then (rightly, for our reflection) compares column
# types with SQLAlchemy's top-level types, warning once per column; the warning is not news.
logging.getLogger("great_expectations.expectations.type_comparison").setLevel(logging.ERROR)

SAMPLE_ROWS = 5
DOCS_SITE = "revsync"


@dataclass(frozen=True)
class Outcome:
    """One expectation's verdict on one table."""

    suite: str
    expectation: str
    table: str
    column: str | None
    success: bool
    policy: str
    observed: Any
    unexpected_count: int | None = None
    sample_rows: list[dict] = field(default_factory=list)
    error: str | None = None
    # every failing row's key, for a quarantine expectation on a change set (what the gate holds back)
    failing_keys: tuple = ()

    def describe(self) -> str:
        where = f"{self.table}.{self.column}" if self.column else self.table
        text = f"[{self.policy}] {self.suite}: {self.expectation} on {where} observed {self.observed!r}"
        if self.unexpected_count:
            text += f", {self.unexpected_count} failing rows"
        if self.sample_rows:
            text += f", e.g. {json.dumps(self.sample_rows[:2], default=str)}"
        if self.error:
            text += f" (error: {self.error})"
        return text


@dataclass
class SuiteResult:
    suite: str
    table: str
    outcomes: list[Outcome]
    seconds: float

    @property
    def success(self) -> bool:
        return all(o.success for o in self.outcomes)

    @property
    def failures(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.success]


def _engine_kwargs(url: str) -> dict:
    if not url.startswith("duckdb"):
        return {}
    # read-only: the gate never writes through GX; the memory limit is revsync's (spills beyond it)
    return {"connect_args": {"read_only": True, "config": {"memory_limit": MEMORY_LIMIT}}}


def run_suites(
    warehouse: Path | str,
    specs: Iterable[SuiteSpec],
    now: datetime | None = None,
    sample_size: int = SAMPLE_ROWS,
    extra: dict[str, list] | None = None,
    docs_dir: Path | None = None,
) -> list[SuiteResult]:
    """Validate each suite against its table in `warehouse` (a DuckDB path or a PostgreSQL URL).

    `extra` adds expectations to a table's suite (the gate's volume and freshness checks). With
    `docs_dir`, GX Data Docs of the suites and these results are built there (index.html).

    On DuckDB this opens its own read-only connections (closed on return): call it while this process
    holds no other connection to the file (DuckDB refuses a second, differently configured one), and
    store the results (`results.store_results`) afterwards."""
    duckdb_patch.apply()
    now = now or datetime.now(UTC).replace(tzinfo=None)
    url = connection_url(warehouse)
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = {"globally": False, "metric_calculations": False}
    if docs_dir is not None:
        context.add_data_docs_site(
            DOCS_SITE,
            {
                "class_name": "SiteBuilder",
                "store_backend": {
                    "class_name": "TupleFilesystemStoreBackend",
                    "base_directory": str(Path(docs_dir).absolute()),
                },
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            },
        )
    datasource = context.data_sources.add_sql(
        name="warehouse", connection_string=url, kwargs=_engine_kwargs(url)
    )
    results: list[SuiteResult] = []
    try:
        for spec in specs:
            started = time.monotonic()
            try:
                added = (extra or {}).get(spec.table, [])
                results.append(_run_one(context, datasource, spec, now, sample_size, added))
            except TestConnectionError as exc:  # no such table (an empty source, a failed build): fail closed
                missing = Outcome(
                    spec.name, "table_exists", spec.table, None, False, "block", None, error=str(exc)
                )
                results.append(SuiteResult(spec.name, spec.table, [missing], time.monotonic() - started))
        if docs_dir is not None:
            context.build_data_docs(site_names=[DOCS_SITE])
    finally:
        # DuckDB refuses a differently configured connection to a file while any is open: close every
        # pooled connection (the execution engine builds its own SQLAlchemy engine besides the source's)
        datasource.get_execution_engine().close()
        datasource.get_engine().dispose()
    return results


def _run_one(context, datasource, spec: SuiteSpec, now: datetime, sample_size: int, added: list):  # noqa: ANN001
    started = time.monotonic()
    schema, _, name = spec.table.rpartition(".")
    with warnings.catch_warnings():
        # GX 1.x deprecates schema_name in favour of a schema in the connection; one connection
        # serves every schema here (sync, canonical, staging), and schema_name qualifies the queries
        warnings.simplefilter("ignore", DeprecationWarning)
        asset = datasource.add_table_asset(name=spec.table, table_name=name, schema_name=schema or None)
    batch_definition = asset.add_batch_definition_whole_table("whole_table")
    suite = context.suites.add(gx.ExpectationSuite(name=spec.name, expectations=[*spec.build(now), *added]))
    for expectation in suite.expectations:
        policy = (expectation.meta or {}).get("policy")
        if policy not in POLICIES or (policy == "quarantine" and not spec.is_change_set):
            raise ValueError(
                f"{spec.name}: {expectation.expectation_type} has policy {policy!r}; a policy is one of "
                f"{POLICIES}, and only change sets (schema sync) can quarantine"
            )
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name=f"{spec.name}__whole_table", data=batch_definition, suite=suite)
    )
    # Two passes. The first asks only for verdicts and counts (GX bundles a table's aggregate metrics into
    # few queries, and a zero-row sample is not fetched), so a clean table costs a few scans, not one per
    # expectation; the second details only what failed: sample rows, and for a change set's quarantine
    # every failing key. On 700k-row staging views this is 40 s -> a few seconds per suite.
    validation = definition.run(result_format={"result_format": "BASIC", "partial_unexpected_count": 0})
    results = list(validation.results)
    failed = [i for i, r in enumerate(results) if not r.success]
    if failed:
        details = context.suites.add(
            gx.ExpectationSuite(
                name=f"{spec.name}__failures",
                expectations=[_detached(results[i].expectation_config) for i in failed],
            )
        )
        detailed = context.validation_definitions.add(
            gx.ValidationDefinition(name=f"{spec.name}__failures", data=batch_definition, suite=details)
        ).run(
            result_format={
                # a change set's quarantine needs every failing row's key, not a sample
                "result_format": "COMPLETE" if spec.is_change_set else "SUMMARY",
                "unexpected_index_column_names": [spec.key],
                "partial_unexpected_count": sample_size,
                "return_unexpected_index_query": False,
            }
        )
        for i, result in zip(failed, detailed.results, strict=True):
            results[i] = result
    engine = datasource.get_execution_engine().engine
    outcomes = [_outcome(spec, r, engine, sample_size) for r in results]
    return SuiteResult(spec.name, spec.table, outcomes, time.monotonic() - started)


def _outcome(spec: SuiteSpec, r, engine: sa.Engine, sample_size: int) -> Outcome:  # noqa: ANN001
    config = r.expectation_config
    column = config.kwargs.get("column")
    result = r.result or {}
    error = None
    info = r.exception_info or {}
    raised = [v for v in info.values() if isinstance(v, dict) and v.get("raised_exception")]
    if info.get("raised_exception"):
        raised.append(info)
    if raised:
        error = str(raised[0].get("exception_message"))[:500]
    if "observed_value" in result:
        observed = result["observed_value"]
    elif "unexpected_count" in result:
        observed = {
            "element_count": result.get("element_count"),
            "unexpected_count": result.get("unexpected_count"),
            "unexpected_percent": result.get("unexpected_percent"),
            "partial_unexpected_list": result.get("partial_unexpected_list", [])[:sample_size],
        }
    else:
        observed = None
    meta = config.meta or {}
    expectation = meta.get("check", config.type)  # a check of revsync's own is named in its meta
    unexpected_count = result.get("unexpected_count")
    if config.type == "unexpected_rows_expectation":
        # a SQL check: GX reports only the count, the sample is the query's rows
        column = meta.get("column", column)
        if observed is not None and error is None:
            unexpected_count = observed = int(observed)
        failed = not r.success and error is None
        query = config.kwargs["unexpected_rows_query"]
        sample = _query_rows(engine, query, spec.table, sample_size) if failed else []
        keys = _query_keys(engine, query, spec) if failed and _quarantines(spec, meta) else []
    else:
        keys = [row[spec.key] for row in result.get("partial_unexpected_index_list") or [] if spec.key in row]
        sample = _sample_rows(engine, spec, keys, sample_size) if keys and not r.success else []
        if _quarantines(spec, meta) and not r.success:
            complete = result.get("unexpected_index_list") or []
            keys = [row[spec.key] for row in complete if spec.key in row]
    policy = meta["policy"]
    quarantined = _quarantines(spec, meta) and not r.success
    failing_keys = tuple(dict.fromkeys(keys)) if quarantined else ()
    # GX lists at most MAX_RESULT_RECORDS failing rows, and none when the check itself errored: a
    # quarantine that cannot name every failing row would let the others through, so it blocks instead
    if quarantined and (
        error is not None or unexpected_count is None or len(failing_keys) < unexpected_count
    ):
        policy = "block"
        error = (
            error
            or f"{unexpected_count} failing rows, only {len(failing_keys)} could be listed to quarantine"
        )
    return Outcome(
        suite=spec.name,
        expectation=expectation,
        table=spec.table,
        column=column,
        success=bool(r.success) and error is None,
        policy=policy,
        observed=_jsonable(observed),
        unexpected_count=unexpected_count,
        sample_rows=sample,
        error=error,
        failing_keys=failing_keys,
    )


def _detached(config):  # noqa: ANN001, ANN202
    """A fresh expectation from a result's configuration (GX lets an expectation belong to one suite)."""
    expectation = config.to_domain_obj()
    expectation.id = None
    return expectation


def _quarantines(spec: SuiteSpec, meta: dict) -> bool:
    return spec.is_change_set and meta.get("policy") == "quarantine"


def _query_keys(engine: sa.Engine, query: str, spec: SuiteSpec) -> list:
    """Every key of the rows an unexpected-rows query selects."""
    sql = f"select {spec.key} from ({query.replace('{batch}', spec.table)}) as unexpected"
    with engine.connect() as connection:
        return [row[0] for row in connection.execute(sa.text(sql)).fetchall()]


def _query_rows(engine: sa.Engine, query: str, table: str, limit: int) -> list[dict]:
    """The first `limit` rows of an unexpected-rows query (`{batch}` is the table)."""
    sql = f"select * from ({query.replace('{batch}', table)}) as unexpected limit {int(limit)}"
    with engine.connect() as connection:
        rows = connection.execute(sa.text(sql)).mappings().fetchall()
    return [_jsonable(dict(row)) for row in rows]


def _sample_rows(engine: sa.Engine, spec: SuiteSpec, keys: Sequence[Any], limit: int) -> list[dict]:
    schema, _, name = spec.table.rpartition(".")
    table = sa.table(name, schema=schema or None)
    key = sa.column(spec.key)
    query = (
        sa.select(sa.text("*"))
        .select_from(table)
        .where(key.in_(list(dict.fromkeys(keys))[:limit]))
        .order_by(key)
        .limit(limit)
    )
    with engine.connect() as connection:
        rows = connection.execute(query).mappings().fetchall()
    return [_jsonable(dict(row)) for row in rows]


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))
