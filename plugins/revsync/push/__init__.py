"""Push to target systems: the outbox and its state machine (`outbox`); the push DAGs, target writes,
dead letters and replay are being built (issue 6)."""
