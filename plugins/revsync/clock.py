"""The warehouse's clock convention: timestamps are naive UTC."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> datetime:
    """Now as naive UTC, the form every revsync_state timestamp column stores."""
    return datetime.now(UTC).replace(tzinfo=None)
