"""Admission by latency: take only what the node can commit within a time budget.

A mempool that admits everything it has room for turns overload into waiting: offered
2,500 tx/s and committing 982, a node held tens of seconds of transactions and every one
of them waited behind the queue (p99 42 s). Here the node measures the rate at which it
commits transactions and holds at most ``budget_s`` of that rate in *ready* transactions
(those a proposal could take now; a transaction waiting behind its sender's nonce gap is
not counted). What does not fit is refused at once with 429 ``overloaded`` and a
``Retry-After`` of the seconds the backlog needs to drain, before anything is decoded, so
a client learns in a millisecond what it would otherwise learn after tens of seconds.

The rate is what the node *committed* over the last ``window_s``, which under overload is
what it can commit. Under light load it is what was offered, which would shrink the
budget just when a burst arrives; so the node always admits at least ``floor_txs`` (one
block's worth), and the budget grows with every commit as the burst is taken.

Clock-free: callers pass ``now`` (seconds of a monotonic clock).
"""

from __future__ import annotations

import math
from collections import deque

DEFAULT_WINDOW_S = 10.0
MAX_RETRY_AFTER_S = 30
UNBOUNDED = 1 << 62  # room when the budget is off


class LatencyBudget:
    """How many ready transactions may wait, from the recent commit rate."""

    def __init__(self, budget_s: float, floor_txs: int, window_s: float = DEFAULT_WINDOW_S) -> None:
        """``budget_s`` 0 turns the budget off (only the mempool's size limits apply)."""
        self.budget_s = budget_s
        self.floor_txs = floor_txs
        self.window_s = window_s
        self._commits: deque[tuple[float, int]] = deque()  # (time, txs), oldest first
        self._in_window = 0

    @property
    def enabled(self) -> bool:
        return self.budget_s > 0

    def committed(self, txs: int, now: float) -> None:
        """A block of ``txs`` transactions was committed at ``now``."""
        self._commits.append((now, txs))
        self._in_window += txs
        self._forget(now)

    def rate(self, now: float) -> float:
        """Transactions committed per second over the window (0 before any commit)."""
        self._forget(now)
        if not self._commits:
            return 0.0
        span = max(now - self._commits[0][0], 1.0)  # one block alone is no rate yet
        return self._in_window / span

    def capacity(self, now: float) -> int:
        """Ready transactions the node may hold: ``budget_s`` of its commit rate, at
        least ``floor_txs``."""
        return max(self.floor_txs, int(self.rate(now) * self.budget_s))

    def room(self, ready: int, now: float) -> int:
        """How many more transactions may be admitted with ``ready`` already waiting
        (unbounded when the budget is off)."""
        if not self.enabled:
            return UNBOUNDED
        return max(0, self.capacity(now) - ready)

    def retry_after_s(self, ready: int, now: float) -> int:
        """Seconds until the backlog over the budget has drained, 1 to 30."""
        rate = self.rate(now)
        excess = ready - self.capacity(now) + 1
        if rate <= 0:
            return 1
        return max(1, min(MAX_RETRY_AFTER_S, math.ceil(excess / rate)))

    def _forget(self, now: float) -> None:
        cutoff = now - self.window_s
        commits = self._commits
        while commits and commits[0][0] < cutoff:
            self._in_window -= commits.popleft()[1]
