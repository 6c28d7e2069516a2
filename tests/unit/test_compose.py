"""docker-compose.yml, checked without Docker (no engine runs here): it parses; every Airflow service runs
a command the installed Airflow's own CLI parser accepts; every AIRFLOW__* setting names a real
option; the executor, broker and DAG folder agree with the project's layout; the image is built from
the Airflow and Python the project pins; every published port binds 127.0.0.1."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
AIRFLOW_SERVICES = {
    "airflow-apiserver": "api-server",
    "airflow-scheduler": "scheduler",
    "airflow-dag-processor": "dag-processor",
    "airflow-triggerer": "triggerer",
    "airflow-worker": "celery worker",
}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _airflow_config_options() -> set[tuple[str, str]]:
    from airflow.configuration import retrieve_configuration_description

    described = retrieve_configuration_description(include_providers=True)
    return {(section, option) for section, spec in described.items() for option in spec.get("options", {})}


def test_the_stack_has_every_service_the_deployment_needs(compose):
    services = compose["services"]
    assert set(AIRFLOW_SERVICES) | {
        "postgres",
        "redis",
        "airflow-init",
        "sandbox",
        "warehouse-postgres",
    } <= set(services)
    assert services["warehouse-postgres"]["profiles"] == ["postgres-warehouse"]
    for name, command in AIRFLOW_SERVICES.items():
        assert services[name]["command"] == command, name


def test_airflow_commands_and_settings_are_the_installed_airflows(compose):
    from airflow.cli.cli_parser import get_parser

    parser = get_parser()
    for name in AIRFLOW_SERVICES:
        parsed = parser.parse_args(shlex.split(compose["services"][name]["command"]))
        assert callable(parsed.func), name
    script = compose["services"]["airflow-init"]["command"][1]
    airflow_lines = [line.strip() for line in script.splitlines() if line.strip().startswith("airflow ")]
    assert airflow_lines == [
        "airflow db migrate",
        "airflow connections import --overwrite /opt/revsync/.revsync/connections.json",
    ]
    for line in airflow_lines:
        assert callable(parser.parse_args(shlex.split(line)[1:]).func)

    options = _airflow_config_options()
    env = compose["x-airflow-common"]["environment"]
    settings = [k for k in env if k.startswith("AIRFLOW__")]
    for key in settings:
        _, section, option = key.split("__", 2)
        assert (section.lower(), option.lower()) in options, f"{key} is not an Airflow option"
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://redis:")
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith(
        "postgresql+psycopg2://airflow:airflow@postgres/"
    )
    module, _, cls = env["AIRFLOW__CORE__AUTH_MANAGER"].rpartition(".")
    assert hasattr(__import__(module, fromlist=[cls]), cls)


def test_the_dag_folder_and_project_are_mounted_where_airflow_looks(compose):
    common = compose["x-airflow-common"]
    dags_folder = common["environment"]["AIRFLOW__CORE__DAGS_FOLDER"]
    mounts = dict(volume.split(":", 1) for volume in common["volumes"])
    assert mounts["./dags"] == dags_folder
    assert {p.name for p in (ROOT / "dags").glob("*.py")} >= {"revsync_extract.py", "revsync_push.py"}
    assert mounts["./dbt_project"] == "/opt/revsync/dbt_project"
    assert common["environment"]["REVSYNC_HOME"].startswith(mounts["revsync"])
    for name in (*AIRFLOW_SERVICES, "airflow-init", "sandbox"):
        assert compose["services"][name]["image"] == common["image"], name


def test_the_sandbox_and_connections_commands_exist_and_agree(compose):
    from sandbox.server.runner import DEFAULT_PORTS

    sandbox = compose["services"]["sandbox"]
    script = sandbox["command"][1]
    assert "--port-base 12111" in script and min(DEFAULT_PORTS.values()) == 12111
    assert sandbox["ports"] == [
        f"127.0.0.1:12111-{12110 + len(DEFAULT_PORTS)}:12111-{12110 + len(DEFAULT_PORTS)}"
    ]
    init = compose["services"]["airflow-init"]["command"][1]
    assert "revsync connections /opt/revsync/.revsync/world --host sandbox --format airflow-json" in init
    revsync = Path(sys.executable).with_name("revsync")
    shown = subprocess.run([revsync, "connections", "--help"], capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0 and "--host" in shown.stdout and "airflow-json" in shown.stdout


def test_every_published_port_binds_loopback_only(compose):
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"


def test_the_image_is_the_pinned_airflow_on_python_3_11():
    base = re.search(r"^FROM (\S+)", (ROOT / "Dockerfile").read_text(), re.M).group(1)
    assert base == f"apache/airflow:{metadata.version('apache-airflow')}-python3.11"
    pinned = (ROOT / "requirements.txt").read_text()
    assert f"apache-airflow=={metadata.version('apache-airflow')}" in pinned
    assert "apache-airflow-providers-celery==" in pinned
