"""The registry: every transaction kind and its handler."""

from __future__ import annotations

from contracts import energy, governance, identity, permits, shipments
from contracts.context import Handler

HANDLERS: dict[str, Handler] = {
    h.kind: h
    for module in (identity, shipments, permits, energy, governance)
    for h in module.HANDLERS
}


def tx_kinds() -> list[str]:
    """Every transaction kind the contracts accept, sorted."""
    return sorted(HANDLERS)
