"""Warehouse access: raw landing, load metadata and cursor state (DuckDB or PostgreSQL; planned)."""
