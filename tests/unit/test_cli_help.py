"""Every `revsync` command and group has help text, and `--help` works for each of them.

The tree is walked from the Click command Typer builds, so commands added later (including the
`revsync sandbox ...` group mounted from sandbox/cli.py) are covered without editing this file.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator

import click
import pytest
import typer
from typer.testing import CliRunner

from revsync.cli import app

ROOT = typer.main.get_command(app)


def _walk(
    command: click.Command, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    yield path, command
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            yield from _walk(sub, (*path, name))


COMMANDS = list(_walk(ROOT))
IDS = [" ".join(("revsync", *path)) for path, _ in COMMANDS]


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=IDS)
def test_command_has_help_text(path: tuple[str, ...], command: click.Command) -> None:
    assert (command.help or "").strip(), f"`revsync {' '.join(path)}` has no help text"


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=IDS)
def test_help_exits_zero(path: tuple[str, ...], command: click.Command) -> None:
    result = CliRunner().invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def test_sandbox_group_is_mounted_when_sandbox_cli_exists() -> None:
    """Guards the lazy mount in revsync.cli: it may skip only a missing sandbox/cli.py."""
    if importlib.util.find_spec("sandbox.cli") is None:
        pytest.skip("sandbox/cli.py does not exist yet")
    assert "sandbox" in ROOT.commands
