"""dbt identity resolution and reconciliation over the small world (seed 7) landed from a private
sandbox: identity agrees with the generator's answer key, and `revsync sandbox score` finds
precision = recall = 1.00 for every implemented mismatch rule."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime
from pathlib import Path

import duckdb
import pytest
from conftest import assert_identity_matches_the_answer_key

from revsync.score import score
from sandbox.world.plan import MISMATCH_TYPES

pytestmark = pytest.mark.integration

REVSYNC = str(Path(sys.executable).with_name("revsync"))

# Every rule dbt_project/models/marts/reconciliation/mismatches.sql implements, and those it does not
# yet: the gap stays visible here instead of being skipped.
IMPLEMENTED = tuple(MISMATCH_TYPES)
NOT_IMPLEMENTED: tuple[str, ...] = ()


@pytest.fixture(scope="module")
def built(small_built) -> tuple[Path, Path, datetime]:
    """The small world landed and the whole dbt project built at a fixed as-of: every node passed."""
    return small_built.warehouse, small_built.world, small_built.as_of


def test_every_mismatch_type_is_implemented_or_listed_as_not_yet():
    assert set(IMPLEMENTED) | set(NOT_IMPLEMENTED) == set(MISMATCH_TYPES)
    assert not set(IMPLEMENTED) & set(NOT_IMPLEMENTED)


def test_identity_resolution_agrees_with_the_answer_key_for_every_linkable_record(built):
    warehouse, world, _ = built
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        methods = assert_identity_matches_the_answer_key(con, "intermediate.int_customer_identity", world)
    finally:
        con.close()
    print(f"link methods: {methods}")


@pytest.fixture(scope="module")
def scored(built):
    warehouse, world, as_of = built
    return score(world / "ground_truth.jsonl", warehouse)


def test_the_score_evaluates_at_the_builds_as_of(built, scored):
    assert scored.as_of == built[2]
    assert scored.table == '"reconciliation"."mismatch_history"'
    assert sum(s.expected for s in scored.types.values()) > 500


@pytest.mark.parametrize("mismatch_type", IMPLEMENTED)
def test_rule_finds_exactly_the_ground_truth(scored, mismatch_type):
    result = scored.types[mismatch_type]
    assert result.expected > 0, "the small world injects every type"
    assert (result.precision, result.recall) == (1.0, 1.0), {
        "missed": result.missed[:10],
        "unexpected": result.unexpected[:10],
    }


def test_score_cli_prints_every_type_and_passes_strict(built):
    warehouse, world, _ = built
    done = subprocess.run(
        [
            REVSYNC,
            "sandbox",
            "score",
            "--truth",
            str(world / "ground_truth.jsonl"),
            "--warehouse",
            str(warehouse),
            "--strict",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    for kind in IMPLEMENTED:
        assert f"{kind} " in done.stdout
    print(done.stdout)


def test_score_cli_strict_fails_when_a_type_is_off(built):
    warehouse, world, _ = built
    # scored long before the world's injections became detectable, every found mismatch is unexpected
    done = subprocess.run(
        [REVSYNC, "sandbox", "score", "--truth", str(world / "ground_truth.jsonl")]
        + ["--warehouse", str(warehouse), "--as-of", "2000-01-01T00:00:00Z", "--strict"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "0.00" in done.stdout
