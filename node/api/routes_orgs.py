"""Organisations and their member keys (public: who may sign what is no secret), and the
organisation directory a client resolves names from."""

from __future__ import annotations

from aiohttp import web

from contracts import queries
from contracts import search_buckets as sb
from contracts import state_keys as sk
from ledger.genesis import ORG_ID_PATTERN
from node.api.context import api_state
from node.api.errors import APIError
from node.api.params import MAX_INT, path_id, query_limit, query_uint
from node.api.proven import ProvenState
from node.api.render import negotiate, render, render_body, render_bytes

routes = web.RouteTableDef()


@routes.get("/v1/orgs")
async def directory(request: web.Request) -> web.StreamResponse:
    """Every organisation, one page of the proven directory bucket at a time
    (:meth:`ProvenState.page`; organisations are public, so no slot is redacted).

    No name filter here on purpose: a client matches names itself over the whole
    directory, proven complete, so no node decides which organisations a name means
    (docs/formats-state.md §6.5). Every reader gets the same bytes for a page at a
    height, so a page is rendered once and kept (``public_answers``): each name search
    reads the whole directory, and many officers ask at the same latest height."""
    start = query_uint(request, "after", hi=MAX_INT) or 0
    limit = query_limit(request)
    state = ProvenState.of_request(request)
    fmt = negotiate(request.headers.get("Accept"))
    cache = api_state(request).public_answers
    cache_key = ("orgs", state.certified.header.height, start, limit, fmt)
    body = cache.get(cache_key)
    if body is None:
        page = state.page(sb.ORGANISATIONS, start, limit, lambda _key: True)
        body = render_body(state.answer(**page), fmt)
        cache.put(cache_key, body)
    return render_bytes(body, fmt)


@routes.get("/v1/orgs/{id}")
async def organisation(request: web.Request) -> web.StreamResponse:
    """The organisation record and each of its members' records (roles, status), proven."""
    org_id = path_id(request, "id", ORG_ID_PATTERN.match, "an organisation id")
    state = ProvenState.of_request(request)
    record = queries.get_organisation(state, org_id)
    if record is None:
        raise APIError(404, "not_found", f"organisation {org_id!r} does not exist")
    members = [sk.member_key(bytes.fromhex(h)) for h in record.members]
    return render(
        request,
        state.answer(
            id=org_id,
            organisation=state.item(sk.org_key(org_id)),
            members=[state.item(k) for k in members],
        ),
    )
