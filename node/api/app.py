"""The node's HTTP API as one aiohttp application (docs/api.md).

``make_app(node, config)`` wires the routes to a :class:`~node.handle.NodeHandle`
and adds three middlewares: the outer one turns every outcome into the one
error shape with the right status (and times the request for ``/metrics``),
the next refuses a body announced over ``max_body_bytes`` on its header (413),
the inner one rate-limits each client address. Bodies without a length are
capped by aiohttp's ``client_max_size`` as they are read (413 too). aiohttp's
log of malformed requests is quietened to one DEBUG line (:mod:`node.api.parser_log`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from aiohttp import WSCloseCode, web
from aiohttp.typedefs import Handler

from ledger.errors import LedgerError, StorageError
from node.api import (
    routes_chain,
    routes_energy,
    routes_events,
    routes_explorer,
    routes_gov,
    routes_ops,
    routes_orgs,
    routes_permits,
    routes_proofs,
    routes_shipments,
    routes_txs,
)
from node.api.body_limit import body_limit_middleware, too_large
from node.api.context import API_STATE, APIState
from node.api.errors import APIError
from node.api.metrics import Metrics
from node.api.parser_log import quiet_parser_errors
from node.api.ratelimit import SUBMIT_LIMITS, RateLimiter, SubmitLimits, charge
from node.api.render import render_error
from node.config import APIConfig
from node.handle import NodeHandle
from node.service import NotFound
from node.waiting_room import WaitingRoom

log = logging.getLogger("cityledger.api")

_HTTP_CODES = {
    400: "malformed",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}


def make_app(
    node: NodeHandle,
    config: APIConfig,
    *,
    clock: Callable[[], int] | None = None,
    monotonic: Callable[[], float] = time.monotonic,
    metrics: Metrics | None = None,
    on_store_failure: Callable[[str], None] | None = None,
    waiting_room: WaitingRoom | None = None,
) -> web.Application:
    """The API application; ``clock`` gives wall-clock milliseconds (default: system time);
    ``on_store_failure`` is told when a read of the node's own store fails."""
    state = APIState(
        node=node,
        config=config,
        clock=clock if clock is not None else _system_ms,
        metrics=metrics if metrics is not None else Metrics(),
        limiter=RateLimiter(config.rate_limit_per_s, config.rate_limit_burst, now=monotonic),
        on_store_failure=on_store_failure,
        waiting_room=waiting_room,
    )
    app = web.Application(
        client_max_size=config.max_body_bytes,
        middlewares=[error_middleware, body_limit_middleware, rate_limit_middleware],
    )
    quiet_parser_errors()
    app[API_STATE] = state
    app[SUBMIT_LIMITS] = SubmitLimits(  # POST /v1/txs: per transaction and per byte too
        RateLimiter(config.tx_rate_limit_per_s, config.tx_rate_limit_burst, now=monotonic),
        RateLimiter(config.byte_rate_limit_per_s, config.byte_rate_limit_burst, now=monotonic),
    )
    for module in (
        routes_txs,
        routes_chain,
        routes_proofs,
        routes_shipments,
        routes_permits,
        routes_energy,
        routes_orgs,
        routes_gov,
        routes_events,
        routes_ops,
        routes_explorer,
    ):
        app.add_routes(module.routes)
    app.on_shutdown.append(_close_sockets)
    return app


def metrics_of(app: web.Application) -> Metrics:
    """The app's metrics: the node runtime calls its hooks (``observe_commit`` ...)."""
    return app[API_STATE].metrics


def _system_ms() -> int:
    return time.time_ns() // 1_000_000


async def _close_sockets(app: web.Application) -> None:
    """On shutdown (before aiohttp waits for handlers to finish), end every subscription."""
    for ws in list(app[API_STATE].sockets):
        await ws.close(code=WSCloseCode.GOING_AWAY, message=b"node shutting down")


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every answer in the one shape; a 500 only for our own bugs (and logged)."""
    started = time.perf_counter()
    try:
        response = await handler(request)
    except APIError as exc:
        response = render_error(request, exc.status, exc.code, exc.message, headers=exc.headers)
    except NotFound as exc:
        response = render_error(request, 404, "not_found", exc.message)
    except web.HTTPException as exc:
        response = _from_http_exception(request, exc)
    except StorageError as exc:
        response = _store_failure(request, exc)
    except LedgerError as exc:
        status = getattr(exc, "http_status", None)
        if isinstance(status, int) and 400 <= status < 500:
            response = render_error(request, status, exc.code, exc.message)
        else:
            response = _internal(request, exc)
    except Exception as exc:
        response = _internal(request, exc)
    _observe(request, response.status, time.perf_counter() - started)
    return response


@web.middleware
async def rate_limit_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A token per request under ``/v1`` for each client address (a submission is also
    charged per transaction and per byte: ``routes_txs``)."""
    if request.path.startswith("/v1/"):
        state = request.app[API_STATE]
        client = state.client(request)
        charge(state.limiter, client, 1, "requests", state.metrics.rate_limited.inc)
    return await handler(request)


def _from_http_exception(request: web.Request, exc: web.HTTPException) -> web.StreamResponse:
    status = exc.status
    if status < 400:
        return exc  # a redirect or the like: pass it on as it is
    if status == 413:
        return too_large(request, request.app[API_STATE].config.max_body_bytes)
    code = _HTTP_CODES.get(status, "http_error" if status < 500 else "internal")
    headers = {k: v for k, v in exc.headers.items() if k.lower() == "allow"}
    return render_error(request, status, code, exc.reason, headers=headers)


def _store_failure(request: web.Request, exc: StorageError) -> web.Response:
    """This node's own store failed (e.g. a damaged table): never an answer built
    from it, one ERROR line for the operator, and 503 so that clients ask another node."""
    log.error("cannot answer %s %s: %s", request.method, request.path, exc)
    stop = request.app[API_STATE].on_store_failure
    if stop is not None:
        stop(f"reading the store to answer {request.method} {request.path}: {exc}")
    return render_error(request, 503, exc.code, "this node cannot read its store; ask another node")


def _internal(request: web.Request, exc: BaseException) -> web.Response:
    log.error("API bug answering %s %s", request.method, request.path, exc_info=exc)
    return render_error(request, 500, "internal", "internal error; the node logged it")


def _observe(request: web.Request, status: int, seconds: float) -> None:
    route = request.match_info.route.resource
    name = route.canonical if route is not None else "unmatched"
    request.app[API_STATE].metrics.observe_request(request.method, name, status, seconds)
