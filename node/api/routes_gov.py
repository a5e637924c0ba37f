"""Governance proposals, proven: readable by every registered member (signed requests).

Each answer carries the stored records with their state proofs under one
certified header, and the status *as of that height* (a pending proposal past
its ``expires_height`` reads ``expired``; nothing stores that, see
:mod:`contracts.governance`), which a client recomputes from the proven record.
"""

from __future__ import annotations

from aiohttp import web

from contracts.governance_queries import get_proposal, newest_first, proposal_at
from contracts.governance_records import PROPOSAL_ID_PATTERN, REGISTRY_KEY, list_key, proposal_key
from ledger.encoding import Value
from node.api.access import deny, reader_of
from node.api.errors import APIError
from node.api.params import path_id, query_limit, query_uint
from node.api.proven import ProvenState
from node.api.render import render

routes = web.RouteTableDef()


async def _require_member(request: web.Request) -> None:
    reader, signed = await reader_of(request)
    if reader.org is None:
        raise deny("governance records", signed)


@routes.get("/v1/gov/proposals")
async def proposals(request: web.Request) -> web.StreamResponse:
    """Proposals newest first, ``limit`` at a time, below position ``before`` (paging)."""
    await _require_member(request)
    before = query_uint(request, "before")
    limit = query_limit(request)
    state = ProvenState.of_request(request)
    height = state.certified.header.height
    items: list[Value] = []
    positions = newest_first(state, before, limit)
    for n in positions:
        pid = proposal_at(state, n)
        record = get_proposal(state, pid)
        assert record is not None, f"proposal {pid} is listed but missing"
        items.append(
            {
                "n": n,
                "id": pid,
                "status": record.status_at(height),
                "entry": state.item(list_key(n)),
                "proposal": state.item(proposal_key(pid)),
            }
        )
    next_before = positions[-1] if positions and positions[-1] > 0 else None
    return render(
        request,
        state.answer(registry=state.item(REGISTRY_KEY), proposals=items, next_before=next_before),
    )


@routes.get("/v1/gov/proposals/{id}")
async def proposal(request: web.Request) -> web.StreamResponse:
    """One proposal with its proof and its status as of the answered height."""
    await _require_member(request)
    pid = path_id(request, "id", PROPOSAL_ID_PATTERN.match, "a proposal id (gov-<32 hex>)")
    state = ProvenState.of_request(request)
    record = get_proposal(state, pid)
    if record is None:
        raise APIError(404, "not_found", f"proposal {pid!r} does not exist")
    status = record.status_at(state.certified.header.height)
    return render(request, state.answer(id=pid, status=status, proposal=state.item(record.key)))
