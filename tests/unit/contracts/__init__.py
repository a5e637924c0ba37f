"""Contract tests: identity, shipments, permits, energy, queries, demo."""
