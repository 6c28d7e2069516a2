"""The quality gate: a stage's suites validated after dbt, failing closed.

Stages follow the data (`staging`, `canonical`, `sync`): each is one checkpoint, run by its own Airflow
task in the `reconcile` DAG, that validates every suite of its tables plus the gate's own checks:

- minimum rows (an empty source or a failed build) and volume against the previous run that passed
  (a row count outside [previous x (1 - band), previous / (1 - band)] blocks; `volume_band`);
- freshness of each source the stage reads: every raw stream's last landing (`revsync_state.cursors`)
  within `freshness_hours` of the validation time.

Then, in one transaction on the warehouse: every outcome lands in `revsync_state.quality_results`;
failing change rows of `quarantine` expectations (and the changes that depend on them) are held in
`revsync_state.quarantined_changes` with their reasons; rows quarantined earlier are released when
they now pass, or superseded when the change set no longer has them (reviewable, never silently
dropped); and the sync stage publishes what passed as `validated.<change set>`, the only tables the push
reads. A `block` failure anywhere empties the `validated` tables instead and raises `GateBlocked`,
naming the suite, the expectation, the table and sample failing rows. GX Data Docs of every stage's
latest checkpoint go to `<docs_dir>/<stage>/index.html`.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import great_expectations.expectations as gxe
import sqlalchemy as sa

from revsync.quality import results as quality_results
from revsync.quality.engine import Outcome, SuiteResult, run_suites
from revsync.quality.results import SCHEMA, is_postgres, new_run_id, state_engine, write_results, writer_lock
from revsync.quality.suites import BLOCK, SuiteSpec, load_suites, sql_check
from revsync.warehouse.connect import warehouse_path
from revsync.warehouse.state import VALIDATED_SCHEMA

STAGES = ("staging", "canonical", "sync")
QUARANTINE_TABLE = f"{SCHEMA}.quarantined_changes"
CURSORS_TABLE = f"{SCHEMA}.cursors"
ROOT = Path(__file__).resolve().parents[3]

QUARANTINE_DDL = f"""create table if not exists {QUARANTINE_TABLE} (
    change_table varchar not null,
    idempotency_key varchar not null,
    customer_key varchar,
    record_type varchar,
    source_id varchar,
    reasons json not null,
    row_data json not null,
    status varchar not null,
    first_gate_run varchar not null,
    last_gate_run varchar not null,
    quarantined_at timestamp not null,
    resolved_at timestamp,
    resolution varchar
)"""


@dataclass(frozen=True)
class GateSettings:
    """Thresholds of the gate's own checks (environment: REVSYNC_GATE_*; DAG params override)."""

    volume_band: float = 0.5
    freshness_hours: float = 24.0
    docs_dir: Path = ROOT / "build" / "quality"

    @classmethod
    def from_env(cls, **overrides: Any) -> GateSettings:
        env = os.environ
        settings = cls(
            volume_band=float(env.get("REVSYNC_GATE_VOLUME_BAND", cls.volume_band)),
            freshness_hours=float(env.get("REVSYNC_GATE_FRESHNESS_HOURS", cls.freshness_hours)),
            docs_dir=Path(env.get("REVSYNC_QUALITY_DOCS", cls.docs_dir)),
        )
        settings = cls(**{**settings.__dict__, **{k: v for k, v in overrides.items() if v is not None}})
        if not 0 < settings.volume_band < 1:
            raise ValueError(
                f"volume_band {settings.volume_band} must lie between 0 and 1 (0.5: from half to double)"
            )
        return settings


@dataclass
class GateReport:
    stage: str
    run_id: str
    results: list[SuiteResult]
    validated_at: datetime
    docs: Path
    quarantined: dict[str, dict[Any, list[str]]] = field(default_factory=dict)  # table -> key -> reasons
    validated_rows: dict[str, int] = field(default_factory=dict)
    released: int = 0
    superseded: int = 0

    @property
    def blocking(self) -> list[Outcome]:
        return [o for r in self.results for o in r.failures if o.policy == "block"]

    @property
    def passed(self) -> bool:
        return not self.blocking

    def summary(self) -> dict[str, Any]:
        outcomes = [o for r in self.results for o in r.outcomes]
        return {
            "stage": self.stage,
            "gate_run_id": self.run_id,
            "passed": self.passed,
            "suites": len(self.results),
            "expectations": len(outcomes),
            "failed": sum(not o.success for o in outcomes),
            "blocking": len(self.blocking),
            "quarantined": {t: len(keys) for t, keys in self.quarantined.items()},
            "validated_rows": self.validated_rows,
            "released": self.released,
            "superseded": self.superseded,
            "seconds": round(sum(r.seconds for r in self.results), 2),
            "docs": str(self.docs / "index.html"),
        }

    def message(self) -> str:
        lines = [
            f"quality gate `{self.stage}` ({self.run_id}) blocked the push: {len(self.blocking)} blocking "
            f"failure(s); results in {quality_results.TABLE}, Data Docs {self.docs / 'index.html'}"
        ]
        lines += [f"- {o.describe()}" for o in self.blocking]
        return "\n".join(lines)


class GateBlocked(RuntimeError):
    def __init__(self, report: GateReport):
        super().__init__(report.message())
        self.report = report


def volume_checks(spec: SuiteSpec, previous: int | None, band: float) -> list:
    """The minimum row count, and the band around the previous passing run's count."""
    checks = [
        gxe.ExpectTableRowCountToBeBetween(min_value=spec.min_rows, meta={**BLOCK, "check": "row_count"})
    ]
    if spec.volume and previous:
        low, high = math.ceil(previous * (1 - band)), math.floor(previous / (1 - band))
        checks.append(
            gxe.ExpectTableRowCountToBeBetween(
                min_value=low,
                max_value=high,
                meta={**BLOCK, "check": "volume_vs_previous_run", "previous_row_count": previous},
            )
        )
    return checks


def freshness_suite(streams: Sequence[tuple[str, str, bool]], now: datetime, hours: float) -> SuiteSpec:
    """One suite over `revsync_state.cursors`: each (source, stream, required) landed within `hours`
    before `now`; a required stream never landed fails too (an optional one, like metered usage a company
    may not sell, only once it has been landed)."""
    oldest = (now - timedelta(hours=hours)).strftime("%Y-%m-%d %H:%M:%S")

    def check(source: str, stream: str, required: bool):  # noqa: ANN202
        this = f"source = '{source}' and stream = '{stream}'"
        # the columns named, so the stand-in row for a missing stream lines up with them
        query = (
            f"select source, stream, cursor, batch_id, updated_at from {{batch}} "
            f"where {this} and updated_at < timestamp '{oldest}'"
        )
        if required:
            query += (
                f" union all select '{source}', '{stream}', null, null, null "
                f"where not exists (select 1 from {{batch}} where {this})"
            )
        return sql_check(
            f"raw_{source}.{stream} landed within {hours:g} h of the validation time",
            f"fresh_{source}_{stream}",
            query,
            "block",
            column="updated_at",
        )

    def build(_: datetime) -> list:
        return [check(*stream) for stream in streams]

    return SuiteSpec("freshness", CURSORS_TABLE, "stream", build, stage="staging", min_rows=0, volume=False)


def run_gate(
    stage: str,
    warehouse: Path | str | None = None,
    now: datetime | None = None,
    run_id: str | None = None,
    settings: GateSettings | None = None,
    specs: Iterable[SuiteSpec] | None = None,
) -> GateReport:
    """Validate `stage` and apply its outcome (see the module doc); raises GateBlocked on a block."""
    if stage not in STAGES:
        raise ValueError(f"unknown gate stage {stage!r}; one of {', '.join(STAGES)}")
    warehouse = warehouse or warehouse_path()
    settings = settings or GateSettings.from_env()
    now = now or datetime.now(UTC).replace(tzinfo=None)
    run_id = run_id or new_run_id()
    specs = list(load_suites(stage=stage).values() if specs is None else specs)
    streams = sorted({(*s.source, s.min_rows > 0) for s in specs if s.source})
    if streams:
        specs.append(freshness_suite(streams, now, settings.freshness_hours))
    docs = settings.docs_dir / stage
    # the docs show the latest checkpoint of each stage; the history is in quality_results
    shutil.rmtree(docs / "validations", ignore_errors=True)
    engine = state_engine(warehouse)
    try:
        # DuckDB: no writer may change a table between its validation and the gate's own writes
        with writer_lock(warehouse):
            with engine.connect() as connection:
                previous = _previous_counts(connection, [s.table for s in specs if s.volume])
            if not is_postgres(warehouse):
                engine.dispose()  # GX opens read-only connections, which DuckDB refuses beside this one
            extra = {s.table: volume_checks(s, previous.get(s.table), settings.volume_band) for s in specs}
            results = run_suites(warehouse, specs, now, extra=extra, docs_dir=docs)
            report = GateReport(stage, run_id, results, now, docs)
            with engine.begin() as connection:
                write_results(connection, results, run_id, now, stage)
                _apply(connection, report, [s for s in specs if s.is_change_set])
    finally:
        engine.dispose()
    if not report.passed:
        raise GateBlocked(report)
    return report


def _previous_counts(connection: sa.Connection, tables: list[str]) -> dict[str, int]:
    """Each table's row count in its latest gate run whose blocking checks all passed."""
    if not tables or not _tables(connection, SCHEMA) & {"quality_results"}:
        return {}
    results = quality_results.TABLE
    rows = connection.execute(
        sa.text(
            f"select r.table_name, r.observed from {results} as r where r.expectation = 'row_count' "
            f"and not exists (select 1 from {results} as f where f.run_id = r.run_id and "
            "f.table_name = r.table_name and f.policy = 'block' and not f.success) order by r.validated_at"
        )
    ).fetchall()
    counts = {table: observed for table, observed in rows if table in tables}
    return {t: int(json.loads(v) if isinstance(v, str) else v) for t, v in counts.items() if v is not None}


def _apply(connection: sa.Connection, report: GateReport, change_sets: list[SuiteSpec]) -> None:
    """Quarantine, release and publish the change sets (or empty `validated` on a block)."""
    connection.execute(sa.text(f"create schema if not exists {VALIDATED_SCHEMA}"))
    connection.execute(sa.text(QUARANTINE_DDL))
    if not report.passed:
        for name in sorted(_tables(connection, VALIDATED_SCHEMA)):
            connection.execute(sa.text(f"delete from {VALIDATED_SCHEMA}.{name}"))
        return
    results = {r.table: r for r in report.results}
    for spec in change_sets:
        reasons = _held(connection, spec, results[spec.table])
        report.quarantined[spec.table] = reasons
        _record_quarantine(connection, report, spec, reasons)
        report.validated_rows[spec.table] = _publish(connection, spec, report.run_id)


def _held(connection: sa.Connection, spec: SuiteSpec, result: SuiteResult) -> dict[Any, list[str]]:
    """key -> reasons for every row a quarantine expectation failed, and the rows depending on them."""
    reasons: dict[Any, list[str]] = {}
    for outcome in result.failures:
        for key in outcome.failing_keys:
            where = f"{outcome.column}" if outcome.column else outcome.table
            reasons.setdefault(key, []).append(f"{outcome.suite}: {outcome.expectation} on {where}")
    if spec.depends_on and reasons:
        waiting: dict[Any, list[Any]] = {}
        pairs = f"select {spec.key}, {spec.depends_on} from {spec.table} where {spec.depends_on} is not null"
        for key, prerequisite in connection.execute(sa.text(pairs)):
            waiting.setdefault(prerequisite, []).append(key)
        queue = list(reasons)
        while queue:
            held = queue.pop()
            for dependent in waiting.get(held, []):
                if dependent not in reasons:
                    reasons[dependent] = [f"prerequisite {held} quarantined"]
                    queue.append(dependent)
    return reasons


def _record_quarantine(
    connection: sa.Connection, report: GateReport, spec: SuiteSpec, reasons: dict[Any, list[str]]
) -> None:
    table, now, run_id = spec.table, report.validated_at, report.run_id
    open_rows = dict(
        connection.execute(
            sa.text(
                f"select idempotency_key, first_gate_run from {QUARANTINE_TABLE} "
                "where change_table = :t and status = 'quarantined'"
            ),
            {"t": table},
        ).fetchall()
    )
    rows = _rows(connection, spec, list(reasons)) if reasons else {}
    for key, why in reasons.items():
        row = rows.get(key, {})
        values = {
            "t": table,
            "k": key,
            "reasons": json.dumps(why),
            "row": json.dumps(row, default=str),
            "run": run_id,
            "now": now,
        }
        if key in open_rows:
            connection.execute(
                sa.text(
                    f"update {QUARANTINE_TABLE} set reasons = :reasons, row_data = :row, "
                    "last_gate_run = :run where change_table = :t and idempotency_key = :k "
                    "and status = 'quarantined'"
                ),
                values,
            )
        else:
            connection.execute(
                sa.text(
                    f"insert into {QUARANTINE_TABLE} (change_table, idempotency_key, customer_key, "
                    "record_type, source_id, reasons, row_data, status, first_gate_run, last_gate_run, "
                    "quarantined_at) values (:t, :k, :customer, :record_type, :source_id, :reasons, :row, "
                    "'quarantined', :run, :run, :now)"
                ),
                values
                | {
                    "customer": row.get("customer_key"),
                    "record_type": row.get("record_type"),
                    "source_id": row.get("source_id") or row.get("organization_id"),
                },
            )
    # earlier quarantines that are no longer failing: released into this run's validated set if the change
    # set still has them (fixed by a rule or threshold change), superseded otherwise (the data was fixed
    # and the change recomputed under a new key, or the mismatch resolved itself)
    gone = [k for k in open_rows if k not in reasons]
    present = _present(connection, spec, gone)
    for key in gone:
        resolution = "released" if key in present else "superseded"
        connection.execute(
            sa.text(
                f"update {QUARANTINE_TABLE} set status = :status, resolved_at = :now, "
                "last_gate_run = :run, resolution = :why where change_table = :t and idempotency_key = :k "
                "and status = 'quarantined'"
            ),
            {
                "status": resolution,
                "now": now,
                "run": run_id,
                "t": table,
                "k": key,
                "why": "passed the gate" if key in present else "no longer in the change set",
            },
        )
        if resolution == "released":
            report.released += 1
        else:
            report.superseded += 1


def _rows(connection: sa.Connection, spec: SuiteSpec, keys: list) -> dict[Any, dict]:
    found: dict[Any, dict] = {}
    for start in range(0, len(keys), 1000):
        query = (
            sa.select(sa.text("*"))
            .select_from(_table(spec.table))
            .where(sa.column(spec.key).in_(keys[start : start + 1000]))
        )
        for row in connection.execute(query).mappings():
            found[row[spec.key]] = json.loads(json.dumps(dict(row), default=str))
    return found


def _present(connection: sa.Connection, spec: SuiteSpec, keys: list) -> set:
    """Which of `keys` the change set still has (their keys only: the rows themselves are not needed)."""
    found: set = set()
    for start in range(0, len(keys), 1000):
        query = sa.select(sa.column(spec.key)).select_from(_table(spec.table))
        found.update(
            connection.execute(query.where(sa.column(spec.key).in_(keys[start : start + 1000]))).scalars()
        )
    return found


def _tables(connection: sa.Connection, schema: str) -> set[str]:
    query = "select table_name from information_schema.tables where table_schema = :s"
    return {name for (name,) in connection.execute(sa.text(query), {"s": schema})}


def _table(qualified: str) -> sa.TableClause:
    schema, _, name = qualified.rpartition(".")
    return sa.table(name, schema=schema or None)


def _publish(connection: sa.Connection, spec: SuiteSpec, run_id: str) -> int:
    """`validated.<table>`: the change set without its quarantined rows, stamped with the gate run."""
    name = spec.table.rpartition(".")[2]
    target, staged = f"{VALIDATED_SCHEMA}.{name}", f"{VALIDATED_SCHEMA}.{name}__next"
    connection.execute(sa.text(f"drop table if exists {staged}"))
    connection.execute(
        sa.text(
            f"create table {staged} as select c.*, cast(:run as varchar) as gate_run_id "
            f"from {spec.table} as c where c.{spec.key} not in (select idempotency_key "
            f"from {QUARANTINE_TABLE} where change_table = :t and status = 'quarantined')"
        ),
        {"run": run_id, "t": spec.table},
    )
    connection.execute(sa.text(f"drop table if exists {target}"))
    connection.execute(sa.text(f"alter table {staged} rename to {name}"))
    return connection.execute(sa.text(f"select count(*) from {target}")).scalar_one()
