"""Rendering of API answers: one canonical value, two wire forms.

Every handler builds its answer once as a canonical value (what
:func:`ledger.encoding.encode` accepts: None, bool, int, str, bytes, lists,
maps with str keys). It goes out as JSON by default, with bytes as lowercase
hex strings, or as the canonical msgpack bytes themselves when the client
asks with ``Accept: application/msgpack``: a client that verifies proofs (the
CLI) then sees exactly the bytes that were hashed and signed, with no
hex/JSON round trip in between. Errors take the same route, so a msgpack
client decodes ``{"error": {"code", "message"}}`` like any other answer.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from enum import Enum

from aiohttp import web

from ledger.encoding import Value, encode, to_json_value

JSON = "application/json"
MSGPACK = "application/msgpack"
_MSGPACK_ALIASES = frozenset({MSGPACK, "application/x-msgpack", "application/vnd.msgpack"})


class Format(Enum):
    JSON = JSON
    MSGPACK = MSGPACK


def negotiate(accept: str | None) -> Format:
    """The wire form the ``Accept`` header prefers; JSON unless msgpack ranks higher.

    Quality values are honoured (``application/msgpack;q=0.5, application/json``
    gives JSON); on a tie the first listed wins; anything unparseable means JSON.
    """
    if not accept:
        return Format.JSON
    best: tuple[float, int, Format] | None = None
    for position, item in enumerate(accept.split(",")[:32]):
        mime, _, params = item.partition(";")
        mime = mime.strip().lower()
        if mime in _MSGPACK_ALIASES:
            fmt = Format.MSGPACK
        elif mime in (JSON, "application/*", "*/*"):
            fmt = Format.JSON
        else:
            continue
        q = _quality(params)
        if q > 0 and (best is None or q > best[0]):
            best = (q, position, fmt)
    return Format.JSON if best is None else best[2]


def _quality(params: str) -> float:
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "q":
            try:
                q = float(value.strip())
            except ValueError:
                return 0.0
            return q if 0.0 <= q <= 1.0 else 0.0
    return 1.0


def render_body(value: Value, fmt: Format) -> bytes:
    """The bytes of ``value`` in ``fmt`` (JSON keys sorted like the canonical form)."""
    if fmt is Format.MSGPACK:
        return encode(value)
    text = json.dumps(to_json_value(value), separators=(",", ":"), sort_keys=True)
    return text.encode()


def render(
    request: web.Request,
    value: Value,
    *,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    """Answer ``value`` in the form the request asked for."""
    fmt = negotiate(request.headers.get("Accept"))
    response = render_bytes(render_body(value, fmt), fmt, status=status)
    response.headers.update(headers or {})
    return response


def render_bytes(body: bytes, fmt: Format, *, status: int = 200) -> web.Response:
    """Answer bytes already rendered in ``fmt`` (e.g. from a cache)."""
    response = web.Response(body=body, status=status, content_type=fmt.value)
    response.headers["Vary"] = "Accept"
    return response


def error_value(code: str, message: str) -> dict[str, Value]:
    return {"error": {"code": code, "message": message}}


def render_error(
    request: web.Request,
    status: int,
    code: str,
    message: str,
    *,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    """The one error shape: ``{"error": {"code": ..., "message": ...}}``."""
    return render(request, error_value(code, message), status=status, headers=headers)
