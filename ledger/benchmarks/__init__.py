"""Micro-benchmarks of the ledger's pure data structures (run by hand, never by the node)."""
