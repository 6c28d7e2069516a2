"""A warehouse where some raw streams were never landed (a stream added to a connector, a source not
extracted yet) still builds: their staging views read as empty with every column, and the rules run
on what is there."""

from __future__ import annotations

import duckdb
import pytest
from conftest import run_dbt

pytestmark = pytest.mark.integration


def test_staging_of_a_stream_never_landed_is_empty_and_the_build_passes(copy_landed, tmp_path):
    landed = copy_landed(tmp_path)
    con = duckdb.connect(str(landed.warehouse))
    try:
        con.execute("drop schema raw_zendesk cascade")
        con.execute("drop table if exists raw_stripe.usage")
    finally:
        con.close()

    run = run_dbt(
        landed.warehouse, tmp_path, "build", "--select", "staging +mismatches +usage",
        "--indirect-selection", "cautious", dbt_vars={"as_of": landed.as_of_var},
    )  # fmt: skip

    assert run.returncode == 0 and not run.failures, (run.failures, run.stdout[-3000:])
    con = duckdb.connect(str(landed.warehouse), read_only=True)
    try:
        empty = {
            view: con.execute(f"select count(*) from staging.{view}").fetchone()[0]
            for view in ("stg_zendesk__organizations", "stg_zendesk__tickets", "stg_stripe__usage")
        }
        columns = {r[0] for r in con.execute("describe staging.stg_zendesk__organizations").fetchall()}
        by_system = dict(
            con.execute("select anchor_system, count(*) from reconciliation.mismatches group by 1").fetchall()
        )
    finally:
        con.close()
    assert empty == dict.fromkeys(empty, 0)
    assert {"organization_id", "support_tier", "_loaded_at", "_changed_at"} <= columns
    # billing and ERP rules still find their mismatches; nothing is anchored on the missing source
    assert by_system.get("stripe", 0) > 100 and "zendesk" not in by_system
