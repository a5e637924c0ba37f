"""Strict parsing of path and query parameters: anything off is a 400, never a crash.

``bytes.fromhex`` and ``int`` are too lenient for an API (whitespace, ``+``,
``_`` separators, unbounded digits), so every parameter is matched against a
pattern first.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from aiohttp import web

from node.api.errors import APIError

MAX_INT = 2**63 - 1
MAX_LIMIT = 1000  # items one page of a list or search may ask for
DEFAULT_LIMIT = 100
_HEX = re.compile(r"^(?:[0-9a-fA-F]{2})*$")
_UINT = re.compile(r"^[0-9]{1,19}$")


def malformed(message: str) -> APIError:
    return APIError(400, "malformed", message)


def parse_hex(text: str, what: str, *, size: int | None = None, max_size: int = 1024) -> bytes:
    """Hex (either case) of exactly ``size`` bytes, or of at most ``max_size`` bytes."""
    if len(text) > 2 * max_size or not _HEX.match(text):
        raise malformed(f"{what} must be hex of at most {max_size} bytes")
    raw = bytes.fromhex(text)
    if size is not None and len(raw) != size:
        raise malformed(f"{what} must be {size} bytes of hex, got {len(raw)}")
    return raw


def parse_uint(text: str, what: str, *, lo: int = 0, hi: int = MAX_INT) -> int:
    """A decimal integer in ``[lo, hi]`` with no sign, spaces or separators."""
    if not _UINT.match(text):
        raise malformed(f"{what} must be a decimal integer, got {text[:40]!r}")
    value = int(text)
    if not lo <= value <= hi:
        raise malformed(f"{what} must be between {lo} and {hi}")
    return value


def query_uint(
    request: web.Request, name: str, *, lo: int = 0, hi: int = MAX_INT, required: bool = False
) -> int | None:
    """Query parameter ``name`` as an integer, or None when absent and optional."""
    values = request.query.getall(name, [])
    if len(values) > 1:
        raise malformed(f"query parameter {name!r} is given more than once")
    if not values:
        if required:
            raise malformed(f"query parameter {name!r} is required")
        return None
    return parse_uint(values[0], name, lo=lo, hi=hi)


def query_limit(request: web.Request) -> int:
    """The ``limit`` query parameter of a paged answer: 1..MAX_LIMIT, DEFAULT_LIMIT if absent."""
    return query_uint(request, "limit", lo=1, hi=MAX_LIMIT) or DEFAULT_LIMIT


def query_text(
    request: web.Request, name: str, *, max_len: int = 256, pattern: re.Pattern[str] | None = None
) -> str | None:
    """Query parameter ``name`` as text (checked against ``pattern``), or None."""
    values = request.query.getall(name, [])
    if len(values) > 1:
        raise malformed(f"query parameter {name!r} is given more than once")
    if not values:
        return None
    value = values[0]
    if not value or len(value) > max_len or any(ord(c) < 0x20 for c in value):
        raise malformed(f"query parameter {name!r} must be 1..{max_len} printable characters")
    if pattern is not None and not pattern.match(value):
        raise malformed(f"query parameter {name!r} is not valid: {value[:64]!r}")
    return value


def path_id(request: web.Request, name: str, is_id: Callable[[str], object], what: str) -> str:
    """Path component ``name``, refused unless ``is_id`` accepts it (``what`` names it)."""
    text = request.match_info[name]
    if not is_id(text):
        raise malformed(f"{text[:80]!r} is not {what}")
    return text


def path_height(request: web.Request, name: str = "height") -> int | None:
    """A height path component; ``latest`` gives None."""
    text = request.match_info[name]
    if text == "latest":
        return None
    return parse_uint(text, name, lo=0)
