"""Operations endpoints: ``/healthz`` for load balancers and ``/metrics`` for Prometheus."""

from __future__ import annotations

import contextlib

from aiohttp import web

from ledger.errors import LedgerError
from node.api.context import APIState, api_state
from node.api.metrics import CONTENT_TYPE
from node.api.metrics_sample import sample
from node.api.ratelimit import SUBMIT_LIMITS, RateLimiter
from node.api.render import render, render_error
from node.bounded import BYTES, ENTRIES, BoundedPart
from node.malloc_stats import malloc_bytes

routes = web.RouteTableDef()


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.StreamResponse:
    """200 when the store answers and the node has a committed head; 503 otherwise."""
    chain = api_state(request).node.chain
    try:
        head = chain.head()
        readable = head.height == 0 or chain.block_bytes(head.height) is not None
    except LedgerError as exc:
        return render_error(request, 503, "unavailable", f"store not readable: {exc}")
    if not readable:
        return render_error(request, 503, "unavailable", f"head block {head.height} is missing")
    if head.height == 0:
        return render_error(request, 503, "unavailable", "no block committed yet")
    return render(request, {"status": "ok", "height": head.height, "block_hash": head.block_hash})


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.StreamResponse:
    state = api_state(request)
    pool = state.node.mempool
    state.metrics.set_mempool(len(pool), expired=pool.expired, evicted=pool.evicted)
    state.metrics.ws_subscribers.set(len(state.sockets))
    state.metrics.set_bounded(_api_parts(state, request.app[SUBMIT_LIMITS].per_tx))
    state.metrics.set_malloc(malloc_bytes())
    with contextlib.suppress(LedgerError):  # else keep the last height the runtime reported
        state.metrics.height.set(state.node.chain.head().height)
        sample(state.metrics, state.node, state.now_ms())
        state.metrics.set_bounded(state.node.bounded_parts())
    response = web.Response(body=state.metrics.render())
    response.headers["Content-Type"] = CONTENT_TYPE
    return response


def _api_parts(state: APIState, per_tx: RateLimiter) -> list[BoundedPart]:
    """The API's own bounded structures: rendered answers and rate-limit buckets."""
    answers = state.public_answers
    return [
        BoundedPart("rendered_answers", BYTES, answers.size, answers.max_bytes),
        BoundedPart("rate_limit_clients", ENTRIES, len(state.limiter), state.limiter.max_clients),
        BoundedPart("tx_rate_limit_clients", ENTRIES, len(per_tx), per_tx.max_clients),
    ]
