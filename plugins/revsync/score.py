"""Score the warehouse's mismatches against a sandbox world's ground truth.

A truth entry is expected when it is detectable at the as-of time (`detectable_at <= as_of`, as
`sandbox.world.verify.expected` states it); a found mismatch is a hit when an expected entry has the
same (mismatch_type, anchor_system, anchor_id). Per type: precision = hits / found, recall =
hits / expected; a type with nothing found has precision 1.0 and one with nothing expected recall 1.0.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sandbox.world.plan import MISMATCH_TYPES
from sandbox.world.truth import read_truth

Key = tuple[str, str, str]  # (mismatch_type, anchor_system, anchor_id)

# Searched in this order: mismatch_history (every mismatch ever detected) when it exists, else mismatches.
TABLES = ("mismatch_history", "mismatches")


@dataclass
class TypeScore:
    mismatch_type: str
    expected: int
    found: int
    hits: int
    missed: list[Key] = field(default_factory=list)
    unexpected: list[Key] = field(default_factory=list)

    @property
    def precision(self) -> float:
        return self.hits / self.found if self.found else 1.0

    @property
    def recall(self) -> float:
        return self.hits / self.expected if self.expected else 1.0


@dataclass
class Score:
    table: str
    as_of: datetime
    types: dict[str, TypeScore]

    @property
    def perfect(self) -> bool:
        return all(s.precision == 1.0 and s.recall == 1.0 for s in self.types.values())


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def expected_keys(truth_path: Path, as_of: datetime) -> set[Key]:
    """The truth entries detectable at `as_of`."""
    cutoff = _utc(as_of).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        (e["mismatch_type"], e["anchor_system"], str(e["anchor_id"]))
        for e in read_truth(truth_path)
        if e["detectable_at"] <= cutoff
    }


def _find_table(con, name: str) -> str | None:
    row = con.execute(
        "select table_schema from information_schema.tables where table_name = ?"
        " order by table_schema limit 1",
        [name],
    ).fetchone()
    return f'"{row[0]}"."{name}"' if row else None


def found_keys(warehouse: Path | str) -> tuple[str, set[Key], datetime | None]:
    """(table read, the mismatches found, the latest detected_at) from the warehouse, read-only: a DuckDB
    file, or a PostgreSQL database given as a SQLAlchemy URL (`dbt build --target postgres`)."""
    from revsync.warehouse.state import is_postgres

    if is_postgres(warehouse):
        return _found_keys_postgres(str(warehouse))
    import duckdb

    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        for name in TABLES:
            table = _find_table(con, name)
            if table is None:
                continue
            columns = {r[0] for r in con.execute(f"describe {table}").fetchall()}
            times = [c for c in ("detected_at", "last_detected_at", "first_detected_at") if c in columns]
            rows = con.execute(f"select mismatch_type, anchor_system, anchor_id from {table}").fetchall()
            latest = con.execute(f"select max({times[0]}) from {table}").fetchone()[0] if times else None
            return table, {(t, s, str(a)) for t, s, a in rows}, latest
    finally:
        con.close()
    raise LookupError(f"{warehouse}: no {' or '.join(TABLES)} table; run `dbt build` first")


def _found_keys_postgres(url: str) -> tuple[str, set[Key], datetime | None]:
    """found_keys on PostgreSQL: the same tables and columns, read through SQLAlchemy."""
    import sqlalchemy as sa

    engine = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        with engine.connect() as con:
            for name in TABLES:
                schema = con.execute(
                    sa.text(
                        "select table_schema from information_schema.tables where table_name = :name"
                        " order by table_schema limit 1"
                    ),
                    {"name": name},
                ).scalar()
                if schema is None:
                    continue
                table = f'"{schema}"."{name}"'
                columns = set(
                    con.execute(
                        sa.text(
                            "select column_name from information_schema.columns"
                            " where table_schema = :schema and table_name = :name"
                        ),
                        {"schema": schema, "name": name},
                    ).scalars()
                )
                times = [c for c in ("detected_at", "last_detected_at", "first_detected_at") if c in columns]
                rows = con.execute(
                    sa.text(f"select mismatch_type, anchor_system, anchor_id from {table}")
                ).all()
                latest = (
                    con.execute(sa.text(f"select max({times[0]}) from {table}")).scalar() if times else None
                )
                return table, {(t, s, str(a)) for t, s, a in rows}, latest
    finally:
        engine.dispose()
    raise LookupError(f"{sa.make_url(url).database}: no {' or '.join(TABLES)} table; run `dbt build` first")


def score(truth_path: Path, warehouse: Path | str, as_of: datetime | None = None) -> Score:
    """Precision and recall per mismatch type. `as_of` defaults to the table's latest detected_at
    (the time the rules evaluated at), else now."""
    table, found, latest = found_keys(warehouse)
    when = _utc(as_of or latest or datetime.now(UTC))
    expected = expected_keys(truth_path, when)
    kinds = list(MISMATCH_TYPES) + sorted({k[0] for k in found | expected} - set(MISMATCH_TYPES))
    types = {}
    for kind in kinds:
        exp = {k for k in expected if k[0] == kind}
        got = {k for k in found if k[0] == kind}
        types[kind] = TypeScore(
            kind, len(exp), len(got), len(exp & got), sorted(exp - got), sorted(got - exp)
        )
    return Score(table, when, types)


def format_score(result: Score) -> str:
    lines = [
        f"scored {result.table} as of {result.as_of:%Y-%m-%dT%H:%M:%SZ}",
        f"{'mismatch_type':42s} {'expected':>8s} {'found':>6s} {'hits':>6s} {'precision':>9s} {'recall':>7s}",
    ]
    for s in result.types.values():
        lines.append(
            f"{s.mismatch_type:42s} {s.expected:>8d} {s.found:>6d} {s.hits:>6d}"
            f" {s.precision:>9.2f} {s.recall:>7.2f}"
        )
        for label, keys in (("missed", s.missed), ("unexpected", s.unexpected)):
            if keys:
                more = " ..." if len(keys) > 5 else ""
                lines.append(f"    {label}: {', '.join(k[2] for k in keys[:5])}{more}")
    return "\n".join(lines)
