"""Names the sqlfluff jinja templater gets from this folder (`library_path` in dbt_project/.sqlfluff).

sqlfluff's dbt builtins stub `var()` with a placeholder string, which the project's macros cannot
iterate; this `var()` returns the defaults from dbt_project.yml instead, so sqlfluff lints the SQL
dbt compiles with default vars.
"""

from pathlib import Path

import yaml
from jinja2 import pass_context

_VARS = yaml.safe_load((Path(__file__).resolve().parents[2] / "dbt_project.yml").read_text()).get("vars") or {}


def var(name, default=None):
    """dbt's `var(name, default)` over the project's default vars."""
    if name in _VARS:
        return _VARS[name]
    if default is None:
        raise KeyError(f"dbt var {name!r} has no default in dbt_project.yml")
    return default


class _Adapter:
    """dbt's `adapter` for `adapter.dispatch(name, namespace)` (macros/cross_db.sql): sqlfluff lints the
    `duckdb__` implementations, the SQL of the dialect it parses."""

    @pass_context
    def dispatch(self, context, macro_name, macro_namespace=None):
        return context[f"duckdb__{macro_name}"]


adapter = _Adapter()
