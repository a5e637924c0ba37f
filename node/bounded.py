"""One bounded structure in memory as ``/metrics`` reports it (node/memory.py)."""

from __future__ import annotations

from dataclasses import dataclass

ENTRIES = "entries"
BYTES = "bytes"


@dataclass(frozen=True, slots=True)
class BoundedPart:
    """One bounded structure: how much it holds now and the most it may hold."""

    part: str
    unit: str  # ENTRIES or BYTES
    size: int
    limit: int
