"""Per-client token buckets, so one client cannot starve the others or the node.

Each client address gets a bucket of ``burst`` tokens refilled at ``rate`` per
second; a request takes one token or is answered 429 with ``Retry-After``. The
table of buckets is bounded: the least recently seen clients are forgotten
first (a forgotten client simply starts again with a full bucket), so a flood
of distinct addresses costs bounded memory.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


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
        """Take ``cost`` tokens for ``client``: 0.0 if allowed, else seconds to wait."""
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


def retry_after_header(wait_s: float) -> str:
    """Whole seconds for ``Retry-After`` (at least 1)."""
    return str(max(1, math.ceil(wait_s)))
