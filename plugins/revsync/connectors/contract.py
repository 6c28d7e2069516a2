"""Per-record checks of the fields revsync relies on (keys, amounts, timestamps), before landing.

A value in another JSON type that still means the same thing (`"1700000000"` for an integer, `"12.50"`
for a number) passes: the record lands as received and the type change is reported as schema drift.
A value that cannot mean a number or a time sends the record to quarantine with the reason.
"""

from __future__ import annotations

import math
import re
from typing import Any

from revsync.connectors.base import Stream, dig

_INTEGER = re.compile(r"^-?\d+$")


def problem(stream: Stream, record: dict, cursor: int | None) -> str | None:
    """Why `record` cannot land, or None. `cursor` is the record's parsed change time."""
    key = record.get(stream.primary_key)
    if key is None or key == "" or isinstance(key, dict | list):
        return f"missing primary key {stream.primary_key!r}"
    for path, kind in stream.contract.items():
        value = dig(record, path)
        if value is None:
            continue
        if not _fits(stream, kind, value):
            return f"field {path!r}: expected {kind}, got {type(value).__name__} {_short(value)}"
    if stream.cursor_field and cursor is None:
        return f"cursor field {stream.cursor_field!r} missing or not a timestamp"
    return None


def _fits(stream: Stream, kind: str, value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if kind == "integer":
        return isinstance(value, int) or (isinstance(value, str) and bool(_INTEGER.match(value)))
    if kind == "number":
        if isinstance(value, int | float):
            return math.isfinite(value)
        try:
            return isinstance(value, str) and math.isfinite(float(value))
        except ValueError:
            return False
    if kind == "timestamp":
        try:
            stream.cursor_parser(value)
        except (TypeError, ValueError, OverflowError):
            return False
        return True
    raise ValueError(f"unknown contract kind {kind!r} for stream {stream.name!r}")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
