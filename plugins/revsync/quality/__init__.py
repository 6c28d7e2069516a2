"""Great Expectations gate: suites, checkpoints and quarantine of failing rows (planned)."""
