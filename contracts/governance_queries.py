"""Read-only governance queries over any state reader (the API's proven state among them)."""

from __future__ import annotations

from contracts.context import StateReader
from contracts.governance_records import (
    PROPOSAL_ID_PATTERN,
    REGISTRY_KEY,
    Proposal,
    Registry,
    list_key,
    proposal_key,
)
from contracts.record_cache import typed_record
from ledger.encoding import decode


def get_proposal(state: StateReader, proposal_id: str) -> Proposal | None:
    raw = state.get(proposal_key(proposal_id))
    return None if raw is None else typed_record(Proposal, raw)


def get_registry(state: StateReader) -> Registry:
    raw = state.get(REGISTRY_KEY)
    return Registry(0, ()) if raw is None else typed_record(Registry, raw)


def proposal_at(state: StateReader, n: int) -> str:
    """The id of the ``n``-th proposal (``n`` below the registry's count)."""
    raw = state.get(list_key(n))
    assert raw is not None, f"gov/list/{n} is missing below the count"
    value = decode(raw)
    assert isinstance(value, dict)
    pid = value["id"]
    assert isinstance(pid, str) and PROPOSAL_ID_PATTERN.match(pid)
    return pid


def newest_first(state: StateReader, before: int | None, limit: int) -> list[int]:
    """Positions of up to ``limit`` proposals, newest first, below ``before`` if given."""
    top = get_registry(state).count
    if before is not None:
        top = min(top, before)
    return list(range(top - 1, max(top - limit, 0) - 1, -1))
