"""Per-client token buckets, so one client cannot starve the others or the node.

Each client address gets a bucket of ``burst`` tokens refilled at ``rate`` per
second; a request takes one token or is answered 429 with ``Retry-After``. The
table of buckets is bounded: the least recently seen clients are forgotten
first (a forgotten client simply starts again with a full bucket), so a flood
of distinct addresses costs bounded memory.

A submission (``POST /v1/txs``) is charged by what it asks of the node besides
the request token: one token per byte of its body in one bucket and one per
transaction in another (:class:`SubmitLimits`), so a batch of 10,000 costs what
10,000 single submissions cost. A cost above a bucket's burst takes a full
bucket (it could never be paid otherwise).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from node.api.errors import APIError
from node.api.waits import retry_headers


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """Token buckets keyed by client; ``now`` is a monotonic clock in seconds."""

    def __init__(
        self,
        rate_per_s: float,
        burst: int,
        *,
        now: Callable[[], float] = time.monotonic,
        max_clients: int = 100_000,
    ) -> None:
        if rate_per_s <= 0 or burst < 1:
            raise ValueError("rate limit needs a positive rate and a burst of at least 1")
        self.rate = float(rate_per_s)
        self.burst = float(burst)
        self.now = now
        self.max_clients = max_clients
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self.limited = 0

    def take(self, client: str, cost: float = 1.0) -> float:
        """Take ``cost`` tokens for ``client``: 0.0 if allowed, else seconds to wait.

        A refusal takes nothing. ``cost`` is capped at the burst.
        """
        cost = min(float(cost), self.burst)
        now = self.now()
        bucket = self._buckets.get(client)
        if bucket is None:
            bucket = _Bucket(self.burst, now)
            self._buckets[client] = bucket
            if len(self._buckets) > self.max_clients:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(client)
            elapsed = max(0.0, now - bucket.updated)
            bucket.tokens = min(self.burst, bucket.tokens + elapsed * self.rate)
            bucket.updated = now
        if bucket.tokens >= cost:
            bucket.tokens -= cost
            return 0.0
        self.limited += 1
        return (cost - bucket.tokens) / self.rate

    def __len__(self) -> int:
        return len(self._buckets)


@dataclass(frozen=True, slots=True)
class SubmitLimits:
    """The per-byte and per-transaction buckets of ``POST /v1/txs``."""

    per_tx: RateLimiter
    per_byte: RateLimiter


SUBMIT_LIMITS = web.AppKey("cityledger_submit_limits", SubmitLimits)


def charge(
    bucket: RateLimiter, client: str, cost: float, what: str, on_refused: Callable[[], None]
) -> None:
    """Take ``cost`` from ``client``'s bucket or raise 429 ``rate_limited`` naming ``what``
    was too much (``on_refused`` counts the refusal)."""
    wait = bucket.take(client, cost)
    if wait > 0:
        on_refused()
        raise APIError(
            429,
            "rate_limited",
            f"too many {what} from this address; retry in {wait:.2f} s",
            headers=retry_headers(wait),
        )
