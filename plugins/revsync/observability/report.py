"""The reconciliation report: one static HTML page (`build/report/index.html`) with its charts drawn as
inline SVG (no scripts or styles fetched from anywhere: it opens from disk, offline, in any browser).

Sections: the business SLA metrics; mismatches by type and by age; money at risk by currency; the
change-to-push latency distribution; pushes and dead letters over time; the quality gate's history;
the exceptions queue with business context and each system's native ids, filterable; links to the GX
Data Docs and dbt docs when they were built. Metrics come from revsync.observability.metrics.
"""

from __future__ import annotations

import html
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from revsync.observability.metrics import collect
from revsync.warehouse.connect import warehouse_lock

BAR_COLOR = "#2f6fdf"
ALERT_COLOR = "#d9534f"
STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem;color:#1d2433;max-width:1200px}
h1{margin-bottom:.2rem}h2{margin-top:2.2rem;border-bottom:1px solid #dde3ee;padding-bottom:.3rem}
.muted{color:#66708a}.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(480px,1fr));gap:1.5rem}
.card{border:1px solid #dde3ee;border-radius:8px;padding:1rem}
.kpis{display:flex;flex-wrap:wrap;gap:1rem}.kpi{border:1px solid #dde3ee;border-radius:8px;padding:.7rem 1rem}
.kpi b{display:block;font-size:1.4rem}table{border-collapse:collapse;width:100%;font-size:.85rem}
th,td{border-bottom:1px solid #eef1f6;padding:.3rem .4rem;text-align:left;vertical-align:top}
code{font-size:.8rem;background:#f3f5f9;padding:0 .2rem;border-radius:3px}
"""
FILTER_SCRIPT = """
document.getElementById('filter').addEventListener('input', function (event) {
  var needle = event.target.value.toLowerCase();
  document.querySelectorAll('#exceptions tbody tr').forEach(function (row) {
    row.style.display = row.textContent.toLowerCase().indexOf(needle) === -1 ? 'none' : '';
  });
});
"""


def _esc(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def bar_chart(
    chart_id: str, title: str, rows: list[tuple[str, float]], unit: str = "", color: str = BAR_COLOR
) -> str:
    """A horizontal bar chart as inline SVG (one bar per label, the value at its end)."""
    if not rows:
        return f'<div class="card"><h3>{_esc(title)}</h3><p class="muted">nothing yet</p></div>'
    width, label_w, bar_h, gap = 620, 270, 18, 6
    top = max(v for _, v in rows) or 1
    height = len(rows) * (bar_h + gap) + gap
    bars = []
    for i, (label, value) in enumerate(rows):
        y = gap + i * (bar_h + gap)
        w = max(1.0, (width - label_w - 90) * float(value) / float(top))
        shown = (
            f"{value:,.2f}" if isinstance(value, float) and not float(value).is_integer() else f"{value:,.0f}"
        )
        bars.append(
            f'<text x="{label_w - 6}" y="{y + 13}" text-anchor="end" font-size="12">{_esc(label)}</text>'
            f'<rect class="bar" x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{color}">'
            f"<title>{_esc(label)}: {shown}{_esc(unit)}</title></rect>"
            f'<text x="{label_w + w + 4:.1f}" y="{y + 13}" font-size="12">{shown}{_esc(unit)}</text>'
        )
    return (
        f'<div class="card"><h3>{_esc(title)}</h3><svg id="{chart_id}" class="chart" role="img" '
        f'aria-label="{_esc(title)}" width="100%" viewBox="0 0 {width} {height}">'
        + "".join(bars)
        + "</svg></div>"
    )


def human_duration(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    seconds = float(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.1f} s"


def _kpis(sla: dict[str, Any]) -> str:
    items = []
    for target, values in sla.get("change_to_push", {}).items():
        items.append(
            (
                f"change → {target} ack, p50 / p95",
                f"{human_duration(values['p50_s'])} / {human_duration(values['p95_s'])}",
            )
        )
    for key, label in (
        ("entitlement_update", "entitlement update, p95"),
        ("invoice_to_erp", "invoice → ERP, p95"),
    ):
        value = sla.get(key)
        items.append((label, human_duration(value["p95_s"]) if value else "n/a"))
    age = sla.get("open_mismatch_age_days_max")
    items.append(("oldest open exception", f"{age:.1f} days" if age is not None else "n/a"))
    share = sla.get("manual_intervention_share")
    items.append(("manual-intervention share", f"{share:.1%}" if share is not None else "n/a"))
    return (
        '<div class="kpis">'
        + "".join(f'<div class="kpi">{_esc(k)}<b>{_esc(v)}</b></div>' for k, v in items)
        + "</div>"
    )


EXCEPTION_COLUMNS = (
    ("exception_type", "type"),
    ("severity", "severity"),
    ("customer_name", "customer"),
    ("blocked_by", "blocked by"),
    ("amount_at_risk", "at risk"),
    ("age_days", "age (days)"),
    ("suggested_action", "what to do"),
)
NATIVE_IDS = (
    ("stripe", "stripe_customer_id", "stripe_record_id"),
    ("hubspot", "hubspot_company_id", "hubspot_record_id"),
    ("netsuite", "netsuite_customer_ids", "netsuite_record_id"),
    ("zendesk", "zendesk_organization_id", None),
)


def _exceptions_table(rows: list[dict[str, Any]]) -> str:
    head = "".join(f"<th>{_esc(label)}</th>" for _, label in EXCEPTION_COLUMNS) + "<th>native ids</th>"
    body = []
    for row in rows:
        cells = []
        for column, _ in EXCEPTION_COLUMNS:
            value = row.get(column)
            if column == "amount_at_risk" and value is not None:
                value = f"{float(value):,.2f} {str(row.get('amount_at_risk_currency') or '').upper()}"
            elif column == "age_days" and value is not None:
                value = f"{float(value):.1f}"
            cells.append(f"<td>{_esc(value)}</td>")
        ids = []
        for system, customer_col, record_col in NATIVE_IDS:
            customer = row.get(customer_col)
            record = row.get(record_col) if record_col else None
            if isinstance(customer, list):
                customer = ", ".join(str(c) for c in customer)
            parts = [p for p in (customer, record) if p]
            if parts:
                ids.append(f"{system}: " + " / ".join(f"<code>{_esc(p)}</code>" for p in parts))
        cells.append("<td>" + "<br>".join(ids) + "</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (
        '<input id="filter" type="search" placeholder="filter: customer, type, id ..." size="40">'
        f'<table id="exceptions"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'
    )


def _links(out_dir: Path, quality_docs: Path, dbt_docs: Path) -> str:
    links = []
    for stage in ("staging", "canonical", "sync"):
        page = quality_docs / stage / "index.html"
        if page.exists():
            links.append((f"GX Data Docs: {stage} gate", os.path.relpath(page, out_dir)))
    if (dbt_docs / "index.html").exists():
        links.append(("dbt docs: every model and column", os.path.relpath(dbt_docs / "index.html", out_dir)))
    if not links:
        return '<p class="muted">No Data Docs or dbt docs built yet.</p>'
    return (
        "<ul>"
        + "".join(f'<li><a href="{_esc(href)}">{_esc(text)}</a></li>' for text, href in links)
        + "</ul>"
    )


def render(
    metrics: dict[str, Any], generated_at: datetime, out_dir: Path, quality_docs: Path, dbt_docs: Path
) -> str:
    gate = [
        (f"{r['at']} {r['stage']}", float(r["blocking"] + r["quarantining"]))
        for r in metrics["gate_history"][-20:]
    ]
    gate_passes = sum(1 for r in metrics["gate_history"] if not r["blocking"])
    pushes = metrics["pushes_over_time"][-30:]
    sla_json = html.escape(json.dumps(metrics["sla"], default=str), quote=False)
    charts = [
        bar_chart(
            "mismatches-by-type",
            "Open mismatches by type",
            [(r["mismatch_type"], r["open"]) for r in metrics["mismatches_by_type"]],
        ),
        bar_chart(
            "mismatches-by-age",
            "Open exceptions by age",
            [(r["age"], r["open"]) for r in metrics["mismatch_age"]],
        ),
        bar_chart(
            "money-at-risk",
            "Money at risk by currency",
            [(r["currency"], float(r["amount"])) for r in metrics["money_at_risk"]],
        ),
        bar_chart(
            "sync-latency",
            "Change-to-push latency (acknowledged writes)",
            [(r["bucket"], r["writes"]) for r in metrics.get("latency_histogram", [])],
        ),
        bar_chart(
            "pushes-over-time",
            "Writes acknowledged per minute",
            [(r["minute"], r["acknowledged"]) for r in pushes],
        ),
        bar_chart(
            "dead-letters-over-time",
            "Dead letters per minute",
            [(r["minute"], r["dead_lettered"]) for r in pushes if r["dead_lettered"]],
            color=ALERT_COLOR,
        ),
        bar_chart(
            "gate-history",
            f"Quality gate: failing checks per run ({gate_passes} runs without a block)",
            gate,
            color=ALERT_COLOR,
        ),
    ]
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>revsync reconciliation report</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{STYLE}</style></head>
<body>
<h1>Reconciliation report</h1>
<p class="muted">Generated {generated_at:%Y-%m-%d %H:%M:%S} UTC from the warehouse.</p>
<h2>Service levels</h2>
{_kpis(metrics["sla"])}
<h2>Mismatches, money and sync</h2>
<div class="grid">{"".join(charts)}</div>
<h2>Exceptions queue ({len(metrics["exceptions"])})</h2>
<p class="muted">Mismatches revsync must not fix on its own, with what blocks the fix and each
system's ids.</p>
{_exceptions_table(metrics["exceptions"])}
<h2>Data quality and models</h2>
{_links(out_dir, quality_docs, dbt_docs)}
<script id="metrics" type="application/json">{sla_json}</script>
<script>{FILTER_SCRIPT}</script>
</body></html>
"""


def build_report(
    warehouse: Path | str,
    out_dir: Path = Path("build/report"),
    quality_docs: Path = Path("build/quality"),
    dbt_docs: Path = Path("build/dbt-docs"),
) -> Path:
    """Write `out_dir/index.html` (and `metrics.json`) from the warehouse; the page's path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with warehouse_lock(warehouse):
        con = duckdb.connect(str(warehouse), read_only=True)
        try:
            metrics = collect(con)
        finally:
            con.close()
    now = datetime.now(UTC)
    page = out_dir / "index.html"
    page.write_text(render(metrics, now, out_dir.absolute(), quality_docs.absolute(), dbt_docs.absolute()))
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2, default=str))
    return page
