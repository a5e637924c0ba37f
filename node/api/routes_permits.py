"""Permits: public records, their history, "valid at time T?", and searches."""

from __future__ import annotations

from aiohttp import web

from contracts import codes, queries
from contracts import state_keys as sk
from contracts.permit_records import Permit, PermitEvent
from contracts.permits import BLDS_STATUS, effective_status
from ledger.encoding import Value
from ledger.genesis import ORG_ID_PATTERN
from node.api.context import api_state
from node.api.errors import APIError
from node.api.params import MAX_INT, malformed, path_id, query_limit, query_text, query_uint
from node.api.proven import ProvenState, certified_at
from node.api.render import render

routes = web.RouteTableDef()


@routes.get("/v1/permits/{id}")
async def permit(request: web.Request) -> web.StreamResponse:
    """The record and its history; the status as it reads at the answered block's time."""
    permit_id = path_id(request, "id", codes.is_record_id, "a permit id")
    state = ProvenState.of_request(request)
    record = _require(state, permit_id)
    as_of = state.certified.header.time_ms
    status = effective_status(record, as_of)
    return render(
        request,
        state.answer(
            id=permit_id,
            as_of_ms=as_of,
            effective_status=status,
            blds_status=BLDS_STATUS[status],
            permit=state.item(sk.permit_key(permit_id)),
            history=_history(state, record),
        ),
    )


@routes.get("/v1/permits/{id}/validity")
async def validity(request: web.Request) -> web.StreamResponse:
    """Is the permit valid at ``at`` (ms; default: the answered block's time)? Without
    ``?height=``, judged on the permit *as it stood at that time*: the answer is given at
    the height of the last history entry written by ``at`` (the latest height when
    nothing was written since; not valid when none was: it did not exist yet). With
    ``?height=``, judged on the permit at that height. The answer carries the record
    and its whole history at the answered height."""
    permit_id = path_id(request, "id", codes.is_record_id, "a permit id")
    state = ProvenState.of_request(request)
    record = _require(state, permit_id)
    at = query_uint(request, "at", hi=MAX_INT)
    at_ms = state.certified.header.time_ms if at is None else at
    written = [e for e in queries.get_permit_history(state, permit_id) if e.time_ms <= at_ms]
    as_it_stood = at is not None and "height" not in request.query  # else: the height asked
    if as_it_stood:
        state, record = _as_it_stood(request, state, record, written)
    valid, reason = queries.permit_valid_at(state, permit_id, at_ms)
    if as_it_stood and not written:
        valid, reason = False, "the permit did not exist yet at that time"
    return render(
        request,
        state.answer(
            id=permit_id,
            at_ms=at_ms,
            valid=valid,
            reason=reason,
            permit=state.item(sk.permit_key(permit_id)),
            history=_history(state, record),
        ),
    )


@routes.get("/v1/permits")
async def search(request: web.Request) -> web.StreamResponse:
    """Permits by holder organisation or by address, one page proven complete
    (:meth:`ProvenState.page`; permits are public, so no slot is redacted)."""
    holder = query_text(request, "holder", max_len=64, pattern=ORG_ID_PATTERN)
    address = query_text(request, "address", max_len=200)
    start = query_uint(request, "after", hi=MAX_INT) or 0
    limit = query_limit(request)
    if (holder is None) == (address is None):
        raise malformed("give exactly one of holder, address")
    state = ProvenState.of_request(request)
    bucket = queries.permit_bucket(holder=holder, address=address)
    return render(request, state.answer(**state.page(bucket, start, limit, lambda _key: True)))


def _history(state: ProvenState, record: Permit) -> list[Value]:
    """Every history entry of ``record``, each with its proof (``history_len`` of them)."""
    return [state.item(sk.permit_history_key(record.id, i)) for i in range(record.history_len)]


def _as_it_stood(
    request: web.Request, state: ProvenState, record: Permit, written: list[PermitEvent]
) -> tuple[ProvenState, Permit]:
    """The state and permit at the height of the last of the ``written`` history entries
    (unchanged when they are all of them, or none: it did not exist yet)."""
    if not written or len(written) == record.history_len:
        return state, record
    node = api_state(request).node
    then = ProvenState(node, certified_at(node, written[-1].height))
    return then, _require(then, record.id)


def _require(state: ProvenState, permit_id: str) -> Permit:
    record = queries.get_permit(state, permit_id)
    if record is None:
        raise APIError(
            404,
            "not_found",
            f"permit {permit_id!r} does not exist (GET /v1/state/<key> proves its absence)",
        )
    return record
