"""Refuse a request body announced over ``max_body_bytes`` on its header.

aiohttp's ``client_max_size`` only answers 413 once that much of the body has
arrived; a client announcing ``Content-Length: 10**12`` could hold a connection
open meanwhile. This middleware answers 413 before the handler reads anything.
Bodies without a ``Content-Length`` (chunked) are still capped by
``client_max_size`` as they are read.
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler

from node.api.context import API_STATE
from node.api.render import render_error


def too_large(request: web.Request, limit: int) -> web.Response:
    """The one 413 answer; the connection is closed after it (the body is not wanted)."""
    response = render_error(
        request, 413, "too_large", f"request body is over the limit of {limit} bytes"
    )
    response.force_close()
    return response


@web.middleware
async def body_limit_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    limit = request.app[API_STATE].config.max_body_bytes
    announced = request.content_length
    if announced is not None and announced > limit:
        return too_large(request, limit)
    return await handler(request)
