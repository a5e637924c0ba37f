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
budget just when a burst arrives; so the node always admits at least ``floor_txs``, and
the budget grows with every commit as the burst is taken. The floor is small
(:data:`MIN_CAPACITY_TXS`): a floor of one full block (2,000) let a network committing
550 tx/s hold 3.6 s of transactions whatever the budget said.

**One budget for the network, not one per node.** Every node's pool holds what all
nodes admitted (gossip), and every node commits the same blocks, so the budget bounds
the *shared* pool. A node checking only ``ready`` against it admits its own clients'
batches before its peers' batches reach it — while its loop runs a block, for
seconds — and four nodes filled one pool to 2-3 times the budget (measured: 3,932-5,756
ready against 2,000). So a node also keeps its own clients' pending transactions within
its *share* of the budget: the share of the transactions that arrived in the window
which arrived from its own clients, at least ``1 / entry_points`` (the validators: a
node whose clients start arriving is not shut out), and all of it before anything
arrived. Clients all at one node: its share is 1, nothing is throttled. Clients spread
over four: each holds about a quarter, and their sum stays near one budget.

Clock-free: callers pass ``now`` (seconds of a monotonic clock).
"""

from __future__ import annotations

import math
from collections import deque

DEFAULT_WINDOW_S = 10.0
MAX_RETRY_AFTER_S = 30
ARRIVAL_BUCKET_S = 0.1  # arrivals closer than this are counted as one entry
MIN_CAPACITY_TXS = 500  # the floor: 2 s at 250 tx/s, below what four nodes on two cores commit
UNBOUNDED = 1 << 62  # room when the budget is off


class LatencyBudget:
    """How many ready transactions may wait, from the recent commit rate."""

    def __init__(
        self,
        budget_s: float,
        floor_txs: int,
        window_s: float = DEFAULT_WINDOW_S,
        *,
        entry_points: int = 1,
    ) -> None:
        """``budget_s`` 0 turns the budget off (only the mempool's size limits apply);
        ``entry_points``: how many nodes may take clients' transactions (the smallest
        share is one of them)."""
        self.budget_s = budget_s
        self.floor_txs = floor_txs
        self.window_s = window_s
        self.min_share = 1.0 / max(1, entry_points)
        self._commits: deque[tuple[float, int]] = deque()  # (time, txs), oldest first
        self._in_window = 0
        self._arrivals: deque[tuple[float, int, int]] = deque()  # (time, local, from peers)
        self._local_arrived = 0  # in the window
        self._peer_arrived = 0

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

    def arrived(self, local: int, from_peers: int, now: float) -> None:
        """``local`` transactions from this node's clients and ``from_peers`` gossiped
        ones were admitted at ``now``."""
        if local == 0 and from_peers == 0:
            return
        arrivals = self._arrivals
        if arrivals and now - arrivals[-1][0] < ARRIVAL_BUCKET_S:  # bounded: one per bucket
            at, was_local, was_from_peers = arrivals.pop()
            arrivals.append((at, was_local + local, was_from_peers + from_peers))
        else:
            arrivals.append((now, local, from_peers))
        self._local_arrived += local
        self._peer_arrived += from_peers
        self._forget(now)

    def share(self, now: float) -> float:
        """This node's share of the budget: of the transactions admitted in the window,
        the part its own clients sent, at least ``min_share``; 1 before any arrived."""
        self._forget(now)
        total = self._local_arrived + self._peer_arrived
        if total == 0:
            return 1.0
        return max(self.min_share, self._local_arrived / total)

    def client_room(self, ready: int, local_pending: int, now: float) -> int:
        """How many more transactions this node's clients may add: room in the shared
        budget, and in this node's share of it with ``local_pending`` of its clients'
        transactions still pending."""
        room = self.room(ready, now)
        if not self.enabled:
            return room
        own = math.ceil(self.capacity(now) * self.share(now)) - local_pending
        return max(0, min(room, own))

    def retry_after_s(self, ready: int, now: float, local_pending: int = 0) -> int:
        """Seconds until the backlog over the budget has drained — and the backlog of
        this node's clients over its share, which drains at its share of the rate — 1
        to 30."""
        rate = self.rate(now)
        if rate <= 0:
            return 1
        capacity, share = self.capacity(now), self.share(now)
        drain_s = max(
            (ready - capacity + 1) / rate,
            (local_pending - capacity * share + 1) / (rate * share),
        )
        return max(1, min(MAX_RETRY_AFTER_S, math.ceil(drain_s)))

    def _forget(self, now: float) -> None:
        cutoff = now - self.window_s
        commits = self._commits
        while commits and commits[0][0] < cutoff:
            self._in_window -= commits.popleft()[1]
        arrivals = self._arrivals
        while arrivals and arrivals[0][0] < cutoff:
            _, local, from_peers = arrivals.popleft()
            self._local_arrived -= local
            self._peer_arrived -= from_peers
