"""`revsync docs` on a copy of the built small world: dbt's docs site is written where --out says, and
every model and every column the warehouse's relations actually have (dbt's catalog, read from the
database, not the YAML) carries a non-empty description in the manifest."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]
REVSYNC = str(Path(sys.executable).with_name("revsync"))


def test_docs_describe_every_model_and_column(copy_built, tmp_path):
    built = copy_built(tmp_path / "warehouse")
    out = tmp_path / "site"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REVSYNC_", "DBT_"))}
    env |= {"REVSYNC_HOME": str(tmp_path / ".revsync"), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    done = subprocess.run(
        [REVSYNC, "docs", "--warehouse", str(built.warehouse), "--out", str(out)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, (done.stdout[-4000:], done.stderr[-4000:])
    assert f"dbt docs: {out / 'index.html'}" in done.stdout
    index = out / "index.html"
    assert index.is_file() and index.stat().st_size > 0
    assert not (tmp_path / "build").exists()  # nothing written to the default location

    manifest = json.loads((out / "manifest.json").read_text())
    catalog = json.loads((out / "catalog.json").read_text())
    models = {uid: node for uid, node in manifest["nodes"].items() if node["resource_type"] == "model"}
    assert len(models) >= 30, sorted(models)
    page = index.read_text()  # dbt's static page: manifest and catalog inlined, so it opens from disk
    assert manifest["metadata"]["invocation_id"] in page and catalog["metadata"]["invocation_id"] in page

    undescribed_models = sorted(node["name"] for node in models.values() if not node["description"].strip())
    assert not undescribed_models, f"models without a description: {undescribed_models}"
    not_in_catalog = sorted(node["name"] for uid, node in models.items() if uid not in catalog["nodes"])
    assert not not_in_catalog, f"models the warehouse does not have (not in catalog.json): {not_in_catalog}"

    offenders = []
    columns = 0
    for uid, node in sorted(models.items()):
        declared = {name.lower(): column for name, column in node["columns"].items()}
        for name in catalog["nodes"][uid]["columns"]:
            columns += 1
            column = declared.get(name.lower())
            if column is None:
                offenders.append(f"{node['name']}.{name} (not declared)")
            elif not column["description"].strip():
                offenders.append(f"{node['name']}.{name} (empty description)")
    assert columns > 500, columns
    assert not offenders, f"{len(offenders)} of {columns} columns lack a description:\n" + "\n".join(
        offenders
    )
