"""Vendor connectors: declarative stream tables plus generic paging, cursors and retries (planned)."""
