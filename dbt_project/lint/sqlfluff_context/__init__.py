"""Names the sqlfluff jinja templater gets from this folder (`library_path` in dbt_project/.sqlfluff).

sqlfluff's dbt builtins stub `var()` with a placeholder string, which the project's macros cannot
iterate; this `var()` returns the defaults from dbt_project.yml instead, so sqlfluff lints the SQL
dbt compiles with default vars.
"""

from pathlib import Path

import yaml

_VARS = yaml.safe_load((Path(__file__).resolve().parents[2] / "dbt_project.yml").read_text()).get("vars") or {}


def var(name, default=None):
    """dbt's `var(name, default)` over the project's default vars."""
    if name in _VARS:
        return _VARS[name]
    if default is None:
        raise KeyError(f"dbt var {name!r} has no default in dbt_project.yml")
    return default
