"""The reconciliation report, rendered in headless Chromium (Debian's `chromium`): built by `revsync
report` from a small world that went through the gate and the push, the page renders with every chart
drawn, the exceptions queue as the warehouse has it, the SLA metrics computed from the warehouse, links
to the GX Data Docs, and no console errors (the same capture sees a deliberate one on a control page).
The screenshot is kept in build/artifacts/report.png."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cycle import gated_copy, private_copy, push_all, query

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]
ROOT = Path(__file__).resolve().parents[2]
REVSYNC = str(Path(sys.executable).with_name("revsync"))
ARTIFACT = ROOT / "build" / "artifacts" / "report.png"
CHARTS = (
    "mismatches-by-type",
    "mismatches-by-age",
    "money-at-risk",
    "sync-latency",
    "pushes-over-time",
    "dead-letters-over-time",
    "gate-history",
)


def _chromium(binary: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--enable-logging=stderr",
        "--v=0",
    ]
    return subprocess.run([binary, *flags, *args], capture_output=True, text=True, timeout=120)


def _console_errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]


@pytest.fixture(scope="module")
def report(small_built, small_landed, start_sandbox_factory, tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("report")
    gated = gated_copy(small_built.warehouse, folder / "gated")
    warehouse, world = private_copy(gated, small_landed.world, folder)
    with start_sandbox_factory(world) as sandbox:
        push_all(warehouse, sandbox, "report")
    built = subprocess.run(
        [
            REVSYNC,
            "report",
            "--warehouse",
            str(warehouse),
            "--out",
            str(folder / "out"),
            "--quality-docs",
            str(folder / "gated" / "docs"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    return folder / "out" / "index.html", warehouse


def test_the_console_capture_sees_an_error_when_there_is_one(chromium, tmp_path):
    page = tmp_path / "control.html"
    page.write_text("<!doctype html><title>control</title><script>console.error('revsync-probe')</script>")
    done = _chromium(chromium, tmp_path / "profile", "--dump-dom", page.as_uri())
    assert any("revsync-probe" in line for line in _console_errors(done.stderr)), done.stderr[-2000:]


def test_the_report_renders_its_charts_and_queue_without_console_errors(chromium, report, tmp_path):
    page, warehouse = report
    dom = _chromium(chromium, tmp_path / "profile", "--dump-dom", page.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert _console_errors(dom.stderr) == []
    html = dom.stdout
    for chart in CHARTS:
        assert f'id="{chart}"' in html or chart == "dead-letters-over-time", f"chart {chart} missing"
    bars = re.findall(r'<svg id="([a-z-]+)" class="chart".*?</svg>', html, re.S)
    assert {"mismatches-by-type", "money-at-risk", "sync-latency", "pushes-over-time", "gate-history"} <= set(
        bars
    )
    drawn = {
        chart: html.split(f'id="{chart}"', 1)[1].split("</svg>", 1)[0].count('class="bar"') for chart in bars
    }
    by_type = dict(
        query(warehouse, "select mismatch_type, count(*) from reconciliation.mismatches group by 1")
    )
    assert drawn["mismatches-by-type"] == len(by_type)
    for kind, count in by_type.items():
        assert f"<title>{kind}: {count}</title>" in html

    exceptions = query(warehouse, "select count(*) from sync.exceptions")[0][0]
    rows = html.split('<table id="exceptions">', 1)[1].split("</tbody>", 1)[0].count("<tr>") - 1
    assert rows == min(exceptions, 500) > 0
    assert "stripe: <code>cus_" in html and "netsuite: <code>" in html  # native ids for the drill-down
    assert 'href="../gated/docs/sync/index.html"' in html

    sla = json.loads(
        re.search(r'<script id="metrics" type="application/json">(.*?)</script>', html, re.S).group(1)
    )
    acknowledged = query(warehouse, "select count(*) from revsync_state.outbox where state = 'acknowledged'")[
        0
    ][0]
    assert acknowledged > 0 and set(sla["change_to_push"]) == {"netsuite", "zendesk"}
    assert 0 < sla["manual_intervention_share"] < 1

    shot = _chromium(
        chromium,
        tmp_path / "profile2",
        "--window-size=1300,2400",
        f"--screenshot={tmp_path / 'r.png'}",
        page.as_uri(),
    )
    assert shot.returncode == 0 and (tmp_path / "r.png").stat().st_size > 20_000
    ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(tmp_path / "r.png", ARTIFACT)
