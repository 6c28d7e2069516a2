"""Business metrics, computed from the warehouse (never from logs): what the report and `revsync status`
show about the sync's health.

- change-to-push latency: a source record's change (`source_changed_at`) to the target's
  acknowledgement of the write it caused, p50/p95, per target; entitlement updates (Zendesk) and
  invoices reaching the ERP separately;
- push latency: a write's enqueueing to its acknowledgement (revsync's own delay);
- open mismatches by type and by age; money at risk by currency;
- manual-intervention share: open mismatches needing a human (exceptions) out of those the sync
  fixed or holds;
- pushes, dead letters and gate verdicts over time.
Every query tolerates a warehouse where a stage has not run yet (its part is simply empty).
"""

from __future__ import annotations

from typing import Any

import duckdb

LATENCY = """
select target, record_type,
       quantile_cont(epoch(acknowledged_at) - epoch({start}), 0.5) as p50,
       quantile_cont(epoch(acknowledged_at) - epoch({start}), 0.95) as p95,
       count(*) as writes
from revsync_state.outbox where state = 'acknowledged' and {start} is not null
group by grouping sets ((target), (target, record_type)) order by 1, 2 nulls first
"""


def _has(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    return bool(
        con.execute(
            "select count(*) from duckdb_tables() where schema_name = ? and table_name = ?", [schema, table]
        ).fetchall()[0][0]
    )


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> list[dict[str, Any]]:
    cursor = con.execute(sql, params or [])
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def collect(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """Every metric the report shows, from an open (read-only) connection on the warehouse."""
    out: dict[str, Any] = {
        "mismatches_by_type": [],
        "mismatch_age": [],
        "money_at_risk": [],
        "exceptions": [],
        "latency": [],
        "push_latency": [],
        "pushes_over_time": [],
        "gate_history": [],
        "sla": {},
    }
    if _has(con, "reconciliation", "mismatches"):
        out["mismatches_by_type"] = _rows(
            con,
            "select mismatch_type, count(*) as open from reconciliation.mismatches "
            "group by 1 order by 2 desc",
        )
    if _has(con, "sync", "exceptions"):
        out["mismatch_age"] = _rows(
            con,
            "select case when age_days < 1 then '< 1 day' when age_days < 7 then '1-7 days' "
            "when age_days < 30 then '7-30 days' else '30+ days' end as age, count(*) as open, "
            "min(age_days) as sort_key from sync.exceptions group by 1 order by sort_key",
        )
        out["money_at_risk"] = _rows(
            con,
            "select upper(amount_at_risk_currency) as currency, sum(amount_at_risk) as amount, "
            "count(*) as items "
            "from sync.exceptions where amount_at_risk is not null group by 1 order by 2 desc",
        )
        out["exceptions"] = _rows(
            con,
            "select exception_type, severity, customer_name, customer_domain, blocked_by, amount_at_risk, "
            "amount_at_risk_currency, age_days, suggested_action, stripe_customer_id, hubspot_company_id, "
            "netsuite_customer_ids, zendesk_organization_id, stripe_record_id, netsuite_record_id, "
            "hubspot_record_id from sync.exceptions "
            "order by case severity when 'high' then 0 when 'medium' then 1 else 2 end, age_days desc "
            "limit 500",
        )
    if _has(con, "revsync_state", "outbox"):
        out["latency"] = _rows(con, LATENCY.format(start="source_changed_at"))
        out["push_latency"] = _rows(con, LATENCY.format(start="enqueued_at"))
        out["latency_histogram"] = _rows(
            con,
            "select case when s < 60 then '< 1 min' when s < 3600 then '1-60 min' "
            "when s < 86400 then '1-24 h' "
            "else '> 1 day' end as bucket, count(*) as writes, min(s) as sort_key from ("
            "select epoch(acknowledged_at) - epoch(source_changed_at) as s from revsync_state.outbox "
            "where state = 'acknowledged' and source_changed_at is not null) group by 1 order by sort_key",
        )
    if _has(con, "revsync_state", "audit_log"):
        out["pushes_over_time"] = _rows(
            con,
            "select strftime(date_trunc('minute', logged_at), '%Y-%m-%d %H:%M') as minute, "
            "count(*) filter (where outcome = 'acknowledged') as acknowledged, "
            "count(*) filter (where outcome = 'dead_lettered') as dead_lettered "
            "from revsync_state.audit_log group by 1 order by 1",
        )
    if _has(con, "revsync_state", "quality_results"):
        out["gate_history"] = _rows(
            con,
            "select run_id, stage, strftime(min(validated_at), '%Y-%m-%d %H:%M:%S') as at, "
            "count(*) as checks, "
            "count(*) filter (where not success and policy = 'block') as blocking, "
            "count(*) filter (where not success and policy = 'quarantine') as quarantining "
            "from revsync_state.quality_results group by 1, 2 order by 3",
        )
    out["sla"] = _sla(out)
    return out


def _sla(out: dict[str, Any]) -> dict[str, Any]:
    def latency(target: str, record_type: str | None = None) -> dict[str, Any] | None:
        for row in out["latency"]:
            if row["target"] == target and row["record_type"] == record_type:
                return {"p50_s": row["p50"], "p95_s": row["p95"], "writes": row["writes"]}
        return None

    change_to_push = [r for r in out["latency"] if r["record_type"] is None]
    fixed = sum(r["writes"] for r in change_to_push)
    manual = sum(r["open"] for r in out["mismatch_age"])
    return {
        "change_to_push": {r["target"]: {"p50_s": r["p50"], "p95_s": r["p95"]} for r in change_to_push},
        "entitlement_update": latency("zendesk"),
        "invoice_to_erp": latency("netsuite", "invoice"),
        "open_mismatch_age_days_max": max((r.get("age_days") or 0 for r in out["exceptions"]), default=None),
        "manual_intervention_share": round(manual / (manual + fixed), 4) if manual + fixed else None,
    }
