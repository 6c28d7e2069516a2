"""Suites as code: each `expectations/<schema>__<table>.py` defines one table's suite.

A suite module has `TABLE` ("schema.table"), `KEY` (the column that identifies a row, used to fetch
sample failing rows) and `build(now)` returning GX expectations, each with `meta={"policy": ...}`
(`block`: stop the whole push; `quarantine`: hold the failing change rows, push the rest). `now` is the
validation time (timestamps must not be after it).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import great_expectations.expectations as gxe

EXPECTATIONS_DIR = Path(__file__).resolve().parents[3] / "expectations"


@dataclass(frozen=True)
class SuiteSpec:
    name: str
    table: str
    key: str
    build: Callable[[datetime], list]


def load_suite(path: Path) -> SuiteSpec:
    spec = importlib.util.spec_from_file_location(f"revsync_expectations_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load suite {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return SuiteSpec(name=path.stem, table=module.TABLE, key=module.KEY, build=module.build)


def load_suites(directory: Path = EXPECTATIONS_DIR) -> dict[str, SuiteSpec]:
    """Every suite in `directory`, by table name ("schema.table")."""
    specs = [load_suite(p) for p in sorted(directory.glob("*__*.py"))]
    return {s.table: s for s in specs}


# A suite names a column's logical type; each warehouse spells it its own way. GX compares DuckDB's
# reflected types by SQLAlchemy class (isinstance; spellings that are no class name are skipped) and
# PostgreSQL's by the type's text, case-insensitively ("TIMESTAMP WITHOUT TIME ZONE", "NUMERIC(18, 3)").
TYPE_SPELLINGS = {
    "VARCHAR": ["VARCHAR", "CHARACTER VARYING", "TEXT"],
    "INTEGER": ["INTEGER"],
    "BIGINT": ["BIGINT"],
    "DECIMAL(18,3)": ["NUMERIC", "NUMERIC(18, 3)"],
    "TIMESTAMP": ["TIMESTAMP", "TIMESTAMP WITHOUT TIME ZONE"],
    "DATE": ["DATE"],
    "BOOLEAN": ["BOOLEAN"],
    "JSON": ["JSON", "JSONB"],
}


def column_types(columns: dict[str, str], meta: dict) -> list:
    """One type expectation per column of `columns` ({name: logical type from TYPE_SPELLINGS})."""
    return [
        gxe.ExpectColumnValuesToBeInTypeList(column=name, type_list=TYPE_SPELLINGS[logical], meta=meta)
        for name, logical in columns.items()
    ]
