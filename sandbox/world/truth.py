"""Ground truth: the injected discrepancies, exported as JSON lines, and summaries of them."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from sandbox.world.plan import MISMATCH_TYPES


def _iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def export_truth(con: duckdb.DuckDBPyConnection, path: Path) -> int:
    """Write every truth row to `path` (one JSON object a line, in seq order); returns the count.

    Written to a temporary file and renamed, so a reader never sees half a file.
    """
    rows = con.execute(
        "select mismatch_type, anchor_system, anchor_id, customer_ref, origin, event_kind, event_at, "
        "detectable_at, details from truth order by seq"
    ).fetchall()
    partial = path.with_suffix(".jsonl.partial")
    with partial.open("w") as out:
        for kind, system, anchor, ref, origin, event, event_at, detectable_at, details in rows:
            out.write(
                json.dumps(
                    {
                        "mismatch_type": kind,
                        "anchor_system": system,
                        "anchor_id": anchor,
                        "customer_ref": ref,
                        "origin": origin,
                        "event_kind": event,
                        "event_at": _iso(event_at),
                        "detectable_at": _iso(detectable_at),
                        "details": json.loads(details) if details else {},
                    }
                )
                + "\n"
            )
    partial.replace(path)
    return len(rows)


def read_truth(path: Path) -> list[dict]:
    """The ground-truth file's entries; a clear error names a line that is not valid JSON."""
    entries = []
    with Path(path).open() as source:
        for number, line in enumerate(source, 1):
            if not line.strip():
                continue
            try:
                entries.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{number}: not a JSON object ({exc.msg})") from None
    return entries


def counts_by_type(entries: list[dict], *, as_of: datetime | None = None) -> dict[str, int]:
    """Entries per mismatch type (all 14, zeros included), only those detectable by `as_of` if given."""
    cutoff = None if as_of is None else as_of.strftime("%Y-%m-%dT%H:%M:%SZ")
    counted = Counter(e["mismatch_type"] for e in entries if cutoff is None or e["detectable_at"] <= cutoff)
    return {kind: counted.get(kind, 0) for kind in MISMATCH_TYPES}
