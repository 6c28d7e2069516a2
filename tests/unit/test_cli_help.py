"""Every `revsync` command and group has help text, and `--help` works for each of them.

The tree is walked from the Click command Typer builds, so commands added later (including the
`revsync sandbox ...` group mounted from sandbox/cli.py) are covered without editing this file.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from revsync.cli import app

ROOT = typer.main.get_command(app)


def _walk(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Yield (path, command) for the command and everything below it.

    Groups are recognised by their `commands` mapping rather than by class: recent Typer builds
    its commands on a vendored copy of Click, so `isinstance(x, click.Group)` is always False.
    """
    yield path, command
    for name, sub in (getattr(command, "commands", None) or {}).items():
        yield from _walk(sub, (*path, name))


COMMANDS = list(_walk(ROOT))
IDS = [" ".join(("revsync", *path)) for path, _ in COMMANDS]


def test_walk_reaches_the_subcommands() -> None:
    """Regression guard: a walk that stops at the root would make the tests below vacuous."""
    assert {("version",), ("demo",)} <= {path for path, _ in COMMANDS}


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=IDS)
def test_command_has_help_text(path: tuple[str, ...], command: Any) -> None:
    assert (command.help or "").strip(), f"`revsync {' '.join(path)}` has no help text"


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=IDS)
def test_help_exits_zero(path: tuple[str, ...], command: Any) -> None:
    result = CliRunner().invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def test_sandbox_group_is_mounted_when_sandbox_cli_exists() -> None:
    """Guards the lazy mount in revsync.cli: it may skip only a missing sandbox/cli.py."""
    if importlib.util.find_spec("sandbox.cli") is None:
        pytest.skip("sandbox/cli.py does not exist yet")
    assert "sandbox" in ROOT.commands
