"""Deterministic simulated network for the consensus core (seeded; see docs/consensus.md)."""
