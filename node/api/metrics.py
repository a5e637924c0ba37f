"""Prometheus metrics of one node, in a registry of its own.

A registry per app (not prometheus_client's global one) keeps several nodes
in one process (tests, simulations) from mixing their numbers. The node
runtime feeds it through the hooks below; the API itself records request
latencies and samples the mempool size at scrape time.

Hooks the runtime calls:

* :meth:`Metrics.observe_commit` after each committed block;
* :meth:`Metrics.observe_phases` after a height this validator measured (round 0);
* :meth:`Metrics.set_peers` when a peer link opens or closes;
* :meth:`Metrics.set_sync` while catching up (0.0 .. 1.0, 1.0 when in sync);
* :meth:`Metrics.set_mempool` (optional: ``/metrics`` also samples it itself).

What ``/metrics`` samples from the node's records at scrape time (block age, links to
each validator, missed votes) is :mod:`node.api.metrics_sample`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)

from node.bounded import BoundedPart

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_BLOCK_TIME_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0)
_ROUND_BUCKETS = (1, 2, 3, 4, 6, 8, 12, 16)
_PHASE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 5.0)
CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    """The node's metrics and the hooks that update them."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.height = Gauge("cityledger_height", "Height of the latest committed block", registry=r)
        self.rounds = Histogram(
            "cityledger_rounds_per_height",
            "Consensus rounds needed to commit a height (1 = first round)",
            buckets=_ROUND_BUCKETS,
            registry=r,
        )
        self.last_rounds = Gauge(
            "cityledger_last_height_rounds", "Rounds the latest committed height took", registry=r
        )
        self.block_time = Histogram(
            "cityledger_block_time_seconds",
            "Time between consecutive committed blocks",
            buckets=_BLOCK_TIME_BUCKETS,
            registry=r,
        )
        self.height_phase = Histogram(
            "cityledger_height_phase_seconds",
            "Where a height decided in round 0 spent its time, as this validator saw it: "
            "propose (previous commit to the proposal in hand; of it, at the proposer: wait, "
            "to its build's start, and build), validate (to its prevote), prevotes (to its "
            "precommit), precommits (to the decision) (node/height_phases.py)",
            ["phase"],
            buckets=_PHASE_BUCKETS,
            registry=r,
        )
        self.txs_committed = Counter(
            "cityledger_txs_committed", "Transactions committed in blocks", registry=r
        )
        self.mempool_size = Gauge(
            "cityledger_mempool_size", "Transactions waiting in the mempool", registry=r
        )
        self.peers = Gauge("cityledger_peers", "Connected validator peer links", registry=r)
        self.sync_progress = Gauge(
            "cityledger_sync_progress", "Block sync progress, 0..1 (1 = caught up)", registry=r
        )
        self.requests = Histogram(
            "cityledger_http_request_duration_seconds",
            "HTTP API request latency by route",
            ["method", "route", "status"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.rate_limited = Counter(
            "cityledger_http_rate_limited", "HTTP requests refused by the rate limiter", registry=r
        )
        self.mempool_dropped = Gauge(
            "cityledger_mempool_dropped",
            "Pending transactions dropped since the node started: expired (older than "
            "[mempool] pending_ttl_s) or evicted (gapped, to make room for a ready one)",
            ["reason"],
            registry=r,
        )
        self.ws_subscribers = Gauge(
            "cityledger_ws_subscribers", "Open /v1/events WebSocket subscriptions", registry=r
        )
        self._add_health(r)
        self._add_admission(r)
        self._add_memory(r)
        self.sync_progress.set(1.0)

    def _add_admission(self, r: CollectorRegistry) -> None:
        """The latency budget (node/latency_budget.py): its size and what it refused."""
        self.overloaded = Counter(
            "cityledger_admission_overloaded",
            "Client transactions refused 429 overloaded: over the latency budget (a body "
            "refused before it was read counted at the pending transactions' mean size)",
            registry=r,
        )
        self.admission_waited = Counter(
            "cityledger_admission_waited",
            "Submissions that found no room in the latency budget and asked to wait for a "
            "commit (node/waiting_room.py), by outcome: let_in, timed_out (then 429), "
            "no_place (the waiting room or the client's places in it full: 429 at once)",
            ["outcome"],
            registry=r,
        )
        self.admission_capacity = Gauge(
            "cityledger_admission_capacity",
            "Ready transactions the network's pool may hold, learned from how long they "
            "waited against [mempool] latency_budget_ms",
            registry=r,
        )
        self.admission_share = Gauge(
            "cityledger_admission_share",
            "This node's clients' share of the budget: of the transactions committed in the "
            "last 10 s, the part they sent (at least 1 / validators)",
            registry=r,
        )

    def _add_memory(self, r: CollectorRegistry) -> None:
        """The bounded structures in memory (node/memory.py), sampled at scrape."""
        self.bounded_size = Gauge(
            "cityledger_bounded_size",
            "What one bounded structure in memory holds now (sampled at scrape)",
            ["part", "unit"],
            registry=r,
        )
        self.bounded_limit = Gauge(
            "cityledger_bounded_limit",
            "The most that structure may hold (docs/operations.md, Memory)",
            ["part", "unit"],
            registry=r,
        )
        self.malloc = Gauge(
            "cityledger_malloc_bytes",
            "The C allocator's bytes (glibc mallinfo2, sampled at scrape): in_use, free "
            "(freed but kept), mapped (large blocks mapped on their own)",
            ["kind"],
            registry=r,
        )
        self.heap_trim_seconds = Counter(
            "cityledger_heap_trim_seconds",
            "Time spent handing the C heap's freed pages back to the system (glibc "
            "malloc_trim, every [storage] heap_trim_s)",
            registry=r,
        )

    def set_bounded(self, parts: Iterable[BoundedPart]) -> None:
        for p in parts:
            self.bounded_size.labels(p.part, p.unit).set(p.size)
            self.bounded_limit.labels(p.part, p.unit).set(p.limit)

    def set_malloc(self, sizes: Mapping[str, int]) -> None:
        for kind, size in sizes.items():
            self.malloc.labels(kind).set(size)

    def heap_trimmed(self, seconds: float) -> None:
        self.heap_trim_seconds.inc(seconds)

    def _add_health(self, r: CollectorRegistry) -> None:
        """What /metrics samples at scrape (node/api/metrics_sample.py) and the process."""
        self.last_block_age = Gauge(
            "cityledger_last_block_age_seconds",
            "Seconds since the latest committed block's time (sampled at scrape)",
            registry=r,
        )
        self.peer_connected = Gauge(
            "cityledger_peer_connected",
            "1 while this node has a link to that validator, else 0 (sampled at scrape)",
            ["validator"],
            registry=r,
        )
        self.missed_votes = Counter(
            "cityledger_validator_missed_votes",
            "Committed heights whose stored certificate lacks that validator's signature",
            ["validator"],
            registry=r,
        )
        self.missed_counted_to = 0  # the last height counted into missed_votes
        # process_cpu_seconds_total, process_resident_memory_bytes, open fds, start time
        ProcessCollector(registry=r)

    # --- hooks for the node runtime -----------------------------------------------------

    def observe_commit(self, height: int, txs: int, block_time_s: float, rounds: int) -> None:
        """A block was committed: ``rounds`` is 1 when it was decided in round 0."""
        self.height.set(height)
        self.txs_committed.inc(max(0, txs))
        if block_time_s >= 0:
            self.block_time.observe(block_time_s)
        self.rounds.observe(max(1, rounds))
        self.last_rounds.set(max(1, rounds))

    def observe_phases(self, phases: Mapping[str, float]) -> None:
        """The phases of a height just committed (node/height_phases.py)."""
        for phase, seconds in phases.items():
            self.height_phase.labels(phase).observe(seconds)

    def set_peers(self, n: int) -> None:
        self.peers.set(n)

    def set_sync(self, progress: float) -> None:
        """Catch-up progress from 0.0 to 1.0."""
        self.sync_progress.set(min(1.0, max(0.0, progress)))

    def set_mempool(
        self, n: int, *, expired: int | None = None, evicted: int | None = None
    ) -> None:
        self.mempool_size.set(n)
        if expired is not None:
            self.mempool_dropped.labels("expired").set(expired)
        if evicted is not None:
            self.mempool_dropped.labels("evicted").set(evicted)

    # --- used by the API ----------------------------------------------------------------

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).observe(seconds)

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)
