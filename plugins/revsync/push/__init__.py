"""Push to target systems: outbox, idempotency keys, dead letters and replay (planned)."""
