"""Behaviour of the top-level `revsync` commands."""

from __future__ import annotations

from typer.testing import CliRunner

from revsync import __version__
from revsync.cli import app


def test_version_prints_package_version() -> None:
    result = CliRunner().invoke(app, ["version"])
    assert result.exit_code == 0
    assert f"revsync {__version__}" in result.output


def test_demo_says_it_is_not_implemented_and_fails() -> None:
    """The demo must not pretend to work before the pipeline exists."""
    result = CliRunner().invoke(app, ["demo", "--seed", "7", "--scale", "2", "--keep"])
    assert result.exit_code == 1
    assert "NOT IMPLEMENTED YET" in result.output
    assert "seed=7" in result.output
