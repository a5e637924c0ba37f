"""The simulated world's clock, event queue and unreliable network.

* :class:`Scheduler` — a mock clock that jumps straight to the next scheduled
  event (integer milliseconds), with a sequence number so ties are broken by
  scheduling order: a run is a pure function of its seed.
* :class:`Network` — per-message delay, drop, duplication (and so reordering),
  partitions that all heal at the global stabilisation time (GST), and static
  links (a twin only ever talks to its half of the network). Before GST delays
  are up to ``max_delay`` and messages may be dropped; after GST nothing is
  dropped and every delay is at most ``post_gst_max_delay``.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


class Scheduler:
    def __init__(self) -> None:
        self.now = 0
        self._queue: list[tuple[int, int, Callable[..., None], tuple[Any, ...]]] = []
        self._seq = 0
        self.events = 0

    def at(self, time: int, fn: Callable[..., None], *args: Any) -> None:
        self._seq += 1
        heapq.heappush(self._queue, (max(time, self.now), self._seq, fn, args))

    def after(self, delay: int, fn: Callable[..., None], *args: Any) -> None:
        self.at(self.now + delay, fn, *args)

    def run(self, until: int, stop: Callable[[], bool], max_events: int) -> None:
        """Run events in time order until ``stop()``, time ``until`` or ``max_events``."""
        queue = self._queue
        while queue and self.events < max_events:
            if queue[0][0] > until:
                self.now = until
                return
            time, _, fn, args = heapq.heappop(queue)
            self.now = time
            self.events += 1
            fn(*args)
            if stop():
                return


@dataclass(frozen=True)
class Partition:
    """Between ``start`` and ``end`` only nodes in the same group can talk."""

    start: int
    end: int
    groups: tuple[frozenset[int], ...]

    def separates(self, a: int, b: int, now: int) -> bool:
        if not self.start <= now < self.end:
            return False
        return not any(a in g and b in g for g in self.groups)


@dataclass
class NetConfig:
    gst: int
    min_delay: int = 1
    max_delay: int = 100
    post_gst_max_delay: int = 50
    drop: float = 0.0
    duplicate: float = 0.0
    partitions: list[Partition] = field(default_factory=list)

    def describe(self) -> str:
        parts = "; ".join(
            f"[{p.start}..{p.end}) {'|'.join(','.join(map(str, sorted(g))) for g in p.groups)}"
            for p in self.partitions
        )
        return (
            f"gst={self.gst}ms delay={self.min_delay}..{self.max_delay}ms "
            f"(after gst ..{self.post_gst_max_delay}ms) drop={self.drop} dup={self.duplicate}"
            + (f" partitions: {parts}" if parts else "")
        )


class Network:
    def __init__(self, sched: Scheduler, rng: random.Random, config: NetConfig) -> None:
        self.sched = sched
        self.rng = rng
        self.config = config
        self.links: dict[int, frozenset[int]] = {}  # node -> the only nodes it may talk to
        self.sent = 0
        self.dropped = 0

    def linked(self, a: int, b: int) -> bool:
        la = self.links.get(a)
        if la is not None and b not in la:
            return False
        lb = self.links.get(b)
        return lb is None or a in lb

    def reachable(self, a: int, b: int) -> bool:
        if not self.linked(a, b):
            return False
        now = self.sched.now
        return not any(p.separates(a, b, now) for p in self.config.partitions)

    def delay(self) -> int:
        c = self.config
        high = c.max_delay if self.sched.now < c.gst else c.post_gst_max_delay
        return self.rng.randint(c.min_delay, max(c.min_delay, high))

    def transmit(self, a: int, b: int) -> int | None:
        """Delay of one transmission from a to b, or None when it is lost."""
        self.sent += 1
        if not self.reachable(a, b) or (
            self.sched.now < self.config.gst and self.rng.random() < self.config.drop
        ):
            self.dropped += 1
            return None
        return self.delay()

    def send(self, a: int, b: int, fn: Callable[..., None], *args: Any) -> None:
        """Deliver ``fn(*args)`` at b after a delay, maybe twice, maybe never."""
        delay = self.transmit(a, b)
        if delay is None:
            return
        self.sched.after(delay, fn, *args)
        if self.rng.random() < self.config.duplicate:
            self.sched.after(self.delay(), fn, *args)
