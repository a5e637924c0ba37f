"""The wait a 429 asks for: said by the node, read by its clients.

A node says it twice (:func:`retry_headers`): ``Retry-After`` in whole seconds, as HTTP
defines the header, and ``Retry-After-Ms`` to the millisecond (a header some API
clients already honour). A backlog that drains in 0.3 s, told only as "1", kept refused
clients away while the network ran out of work (docs/performance.md, "Retry-After in
milliseconds"). Clients read ``Retry-After-Ms`` first (:func:`retry_after_s`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Protocol

# Refusals "not now": the same transaction may be taken once the wait has passed.
NOT_NOW = frozenset({"overloaded", "mempool_full", "rate_limited", "org_quota", "sender_backlog"})


def error_code(answer: Mapping[str, object]) -> str | None:
    """The ``error.code`` of an answer, or of one item's result in a batch, if it has one
    (a refusal "not now" is one whose code is in :data:`NOT_NOW`)."""
    error = answer.get("error")
    code = error.get("code") if isinstance(error, dict) else None
    return code if isinstance(code, str) else None


class Headers(Protocol):
    """An answer's headers, found by name without regard to case (aiohttp's, urllib's and
    http.client's all are)."""

    def get(self, name: str, /) -> str | None: ...


def retry_after_header(wait_s: float) -> str:
    """Whole seconds for ``Retry-After`` (at least 1: the header has no fractions)."""
    return str(max(1, math.ceil(wait_s)))


def retry_headers(wait_s: float) -> dict[str, str]:
    """The headers of a 429 that asks for ``wait_s`` seconds."""
    return {
        "Retry-After": retry_after_header(wait_s),
        "Retry-After-Ms": str(max(1, math.ceil(wait_s * 1000))),
    }


def retry_after_s(headers: Headers | None, *, default: float, lo: float, hi: float) -> float:
    """The wait a 429 asks for, in seconds, kept within ``[lo, hi]``: ``Retry-After-Ms``
    where the node gives it, else ``Retry-After`` (whole seconds), else ``default`` (also
    for a value that is not a number: an HTTP date is not waited for)."""
    for name, scale in (("Retry-After-Ms", 0.001), ("Retry-After", 1.0)):
        value = headers.get(name) if headers is not None else None
        if not value:
            continue
        try:
            seconds = float(value) * scale
        except ValueError:
            continue
        if seconds == seconds:  # not NaN
            return max(lo, min(hi, seconds))
    return default
