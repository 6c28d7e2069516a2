"""Behaviour of the top-level `revsync` commands."""

from __future__ import annotations

import socket

from typer.testing import CliRunner

from revsync import __version__
from revsync.cli import app


def test_version_prints_package_version() -> None:
    result = CliRunner().invoke(app, ["version"])
    assert result.exit_code == 0
    assert f"revsync {__version__}" in result.output


def test_the_demo_refuses_a_taken_port_before_starting_anything(tmp_path) -> None:
    """Every service of the demo listens on 127.0.0.1; a port in use stops it at once, saying which
    and how to choose another, before any world is generated or process started."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        home = tmp_path / "home"
        result = CliRunner().invoke(app, ["demo", "--home", str(home), "--airflow-port", str(port)])
    assert result.exit_code == 1
    assert f"port {port} (Airflow api-server) on 127.0.0.1 is already in use" in result.output
    assert "--airflow-port" in result.output
    assert not home.exists()


def test_the_demo_names_an_unknown_scale(tmp_path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = CliRunner().invoke(
        app,
        [
            "demo",
            "--home",
            str(tmp_path),
            "--scale",
            "huge",
            "--airflow-port",
            str(port),
            "--sandbox-port-base",
            "0",
        ],
    )
    assert result.exit_code == 1
    assert "unknown scale 'huge'" in result.output
