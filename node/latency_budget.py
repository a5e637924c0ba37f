"""Admission by latency: take only what the network commits within a time budget.

A mempool that admits everything it has room for turns overload into waiting: offered
2,500 tx/s and committing 982, a node held tens of seconds of transactions and every one
of them waited behind the queue (p99 42 s). Here a node holds at most ``capacity``
*ready* transactions (those a proposal could take now; one waiting behind its sender's
nonce gap is not counted) and refuses what does not fit at once with 429 ``overloaded``
and a ``Retry-After`` of the seconds the backlog needs to drain at the measured commit
rate, before anything is decoded: a client learns in a millisecond what it would
otherwise learn after tens of seconds.

**The capacity is learned from the waits it causes** (increase slowly, decrease by a
fraction, as TCP learns a window): at each commit the node looks at how long the block's
transactions waited in its pool — those its own clients sent, whose wait is the one they
see from the accepting answer, when the block holds at least :data:`LOCAL_SAMPLE_MIN` of
them; else all of them — and takes the 99th percentile of those waits and of the blocks'
committed within one budget before it (:data:`JUDGE_WINDOW`), the promise itself (the
90th kept the p99 at 2-3 times the budget: 6.2 s accepted p99 at 1,100 offered, measured
2026-12-04). Over :data:`TARGET` of ``budget_s``, the capacity shrinks by a fifth; under
:data:`HEADROOM` of it, while the capacity turned clients away, it grows by a tenth. It
aims well below the budget because the client's p99 over a run is higher than a block's:
with the band at three quarters to the whole budget, the clients' accepted p99 was over
2 s in six of eight runs, 2.5-5.1 s; at 0.6-0.8 of it, in ten of sixteen; at 0.5-0.65,
in three of sixteen, at the same rate (measured 2026-12-04, docs/performance.md "A
tighter latency band", "The band lowered again"). Since refused clients are told their
wait to the millisecond they come back sooner and keep the pool fuller: at 0.5-0.65 the
accepted p99 was over 2 s in every run at 1,100 offered (2.02-2.33 s); at 0.4-0.55 it is
1.79-2.03 s, with 0-4 % less committed (measured 2026-12-05, "Retry-After in
milliseconds").

**Judged over a budget of blocks, not one.** The clients' p99 is over all their
transactions, a block's over its own. With validators executing the proposal ahead
(``[consensus] speculate``) most heights are shorter and some as long as before (a body
that waited for its transactions, one its proposal overtook); judged a block at a time,
the capacity grew on each short block between the long ones, and at 3,500 offered the
accepted p99 went over 2 s in 3 runs of 4 (2.2-5.5 s). Judging the waits of the blocks
of the last budget together, a long block holds the growth until it is a budget old:
p99 1.43-1.83 s in 8 runs of 8, at the rate the per-block judge had without executing
ahead (measured 2026-12-07, docs/performance.md "Judged over a budget of blocks").
At most :data:`MAX_JUDGED_WAITS` waits are kept (the newest block's always).

**Not judged by a proposer's fault.** A round whose proposal never came (a stopped
validator's turn, or one that votes and withholds its proposals: node/silence.py) holds
every pending transaction for its timeouts, however few the pool holds; no capacity
can shorten it. Judged with it, one validator of four withholding its proposals made
every fourth height 2.4 s long, each of them shrank the capacity by a fifth, and the
network settled at the floor: 58.5 and 58.9 tx/s of 900 offered, 19,400 valid
transactions refused for good (measured 2026-12-07, docs/performance.md "A validator
that withholds its proposals"). So the time a wait spent in such rounds
(:meth:`committed`'s ``stalls``, from node/round_watch.py) is taken out of it before it
is judged; a round whose proposal came late still counts (a busy proposer is load).
The intervals of the last :data:`STALL_MEMORY_S` are kept (at most
:data:`MAX_STALLS`).

A change waits for the one before it to show in the waits: a fall for ``budget_s`` after
the last change, a rise for half of it; growing at every commit, a node raised its
capacity from 885 to 1,726 before the first longer wait came back (measured). It stays
within ``floor_txs`` and :data:`MAX_CAPACITY_TXS` and starts at ``start_txs``.

**Slow start** (as TCP's, RFC 5681 §3.1): while the judged waits have stayed under
:data:`SLOW_START_UNTIL` of the budget (half the headroom: a doubling of the pool at
most doubles its waits, so one cannot jump past :data:`HEADROOM`), each rise doubles the
capacity instead of adding a tenth; once a wait reaches it, never again. Growing by a
tenth a second, one validator offered 4,000 tx/s committed 1,100-1,600 tx/s through the
first twenty seconds of a run and was still climbing when it ended; with slow start it
committed 3,587-3,669 tx/s against 2,173-2,246, and four validators offered 3,500 tx/s
7 % more with their accepted p99 still under the budget (measured 2026-12-05,
docs/performance.md "Slow start").

Why not "``budget_s`` × the measured commit rate": the rate is what the blocks carry, and
the blocks carry what the pool holds. A budget of 2 s × the rate, with a floor of 500,
shrank the pool, so the blocks, so the rate, so the pool: four validators on two cores
went from 580 to 177 tx/s, each block paying a fixed ~0.6 s of consensus for 138
transactions (measured, 2026-12-03). A floor of one full block (2,000) had kept
throughput but let the same network hold 3.6 s of transactions and more. The waits
measure the promise itself, whatever limits the rate.

**One budget for the network, not one per node.** Every node's pool holds what all
nodes admitted (gossip), and every node commits the same blocks, so the capacity bounds
the *shared* pool. A node checking only ``ready`` against it admits its own clients'
batches before its peers' batches reach it — while its loop runs a block, for
seconds — and four nodes filled one pool to 2-3 times the budget (measured: 3,932-5,756
ready against 2,000). So a node also keeps its own clients' pending transactions within
its *share* of the capacity: of the transactions committed in the window, the part
its own clients sent, at least ``1 / entry_points`` (the validators: a node whose
clients start arriving is not shut out), and all of it before anything was committed.
Counted from the blocks, which every node sees whole, not from what gossip brought: under
load a transaction often reaches a node first in a block, its gossip then finds it
committed, and counted from arrivals each of four nodes saw its own share at 0.54-0.80
at once (pools of 1,696-3,055 against capacities of 424-514, measured). Clients all at one
node: its share is 1, nothing is throttled. Clients spread
over four: each holds about a quarter, and their sum stays near one capacity.

Clock-free: callers pass ``now`` (seconds of a monotonic clock).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence

DEFAULT_WINDOW_S = 10.0
MAX_RETRY_AFTER_S = 30
MIN_RETRY_AFTER_S = 0.1  # a client told to come back sooner would only be refused again
ARRIVAL_BUCKET_S = 0.1  # counts closer than this are kept as one entry
FLOOR_TXS = 50  # the capacity never goes lower: however slow the commits, no standstill
START_TXS = 500  # the capacity before any wait was measured
MAX_CAPACITY_TXS = 1 << 20  # the mempool's own limits are far lower
INCREASE = 1.1  # while clients were turned away and the waits were short
SLOW_START_INCREASE = 2.0  # the same, until the judged waits first reach SLOW_START_UNTIL
DECREASE = 0.8  # when the waits were over the budget, at most once per budget_s
GROW_EVERY = 0.5  # of budget_s: how often the capacity may grow
TARGET = 0.55  # "long": over this part of the budget — the margin the p99 may overshoot by
HEADROOM = 0.4  # "short": under this part of the budget
SLOW_START_UNTIL = HEADROOM / 2  # a doubling at most doubles the waits: not past HEADROOM
WAIT_QUANTILE = 0.99  # of the judged waits, what is compared
JUDGE_WINDOW = 1.0  # of budget_s: the blocks committed within this of a commit are judged with it
MAX_JUDGED_WAITS = 1 << 14  # the waits kept for judging, at most (oldest blocks dropped)
LOCAL_SAMPLE_MIN = 20  # a block's own-client waits that are enough to judge by
UNBOUNDED = 1 << 62  # room when the budget is off
STALL_MEMORY_S = 60.0  # proposerless rounds are taken out of waits this much younger
MAX_STALLS = 64  # of them kept, at most (the oldest dropped)


class LatencyBudget:
    """How many ready transactions may wait: learned from how long they waited."""

    def __init__(
        self,
        budget_s: float,
        floor_txs: int = FLOOR_TXS,
        window_s: float = DEFAULT_WINDOW_S,
        *,
        start_txs: int = START_TXS,
        entry_points: int = 1,
    ) -> None:
        """``budget_s`` 0 turns the budget off (only the mempool's size limits apply);
        ``entry_points``: how many nodes may take clients' transactions (the smallest
        share is one of them)."""
        self.budget_s = budget_s
        self.floor_txs = floor_txs
        self.window_s = window_s
        self._capacity = float(max(floor_txs, start_txs))
        self._turned_away = False  # clients were refused since the last commit
        self.turned_away_last_height = False  # clients were refused in the last height
        self._slow_start = True  # the judged waits have not reached SLOW_START_UNTIL yet
        self._changed_at = -math.inf  # when the capacity last moved
        self.min_share = 1.0 / max(1, entry_points)
        self._commits: deque[tuple[float, int]] = deque()  # (time, txs), oldest first
        self._in_window = 0
        self._arrivals: deque[tuple[float, int, int]] = deque()  # (time, local, from peers)
        self._local_arrived = 0  # in the window
        self._peer_arrived = 0
        self._next_turn = -math.inf  # when the next refused client's turn comes
        self._judged: deque[tuple[float, Sequence[float]]] = deque()  # (time, block's waits)
        self._judged_count = 0
        self._stalls: deque[tuple[float, float]] = deque(maxlen=MAX_STALLS)  # (from, to)

    @property
    def enabled(self) -> bool:
        return self.budget_s > 0

    def committed(
        self,
        txs: int,
        now: float,
        waits_s: Sequence[float] = (),
        local_waits_s: Sequence[float] = (),
        stalls: Sequence[tuple[float, float]] = (),
    ) -> None:
        """A block of ``txs`` transactions was committed at ``now``; ``waits_s``: how
        long those of them that were in this node's pool waited there; ``local_waits_s``:
        of them, the ones this node's clients sent; ``stalls``: the height's rounds whose
        proposal never came, as (from, to) seconds before ``now``."""
        self._commits.append((now, txs))
        self._in_window += txs
        self._forget(now)
        if stalls:
            self._add_stalls([(now - since_s, now - until_s) for since_s, until_s in stalls])
        while self._stalls and self._stalls[0][1] < now - STALL_MEMORY_S:
            self._stalls.popleft()
        judged = local_waits_s if len(local_waits_s) >= LOCAL_SAMPLE_MIN else waits_s
        if judged and self.enabled:
            judged = self._without_stalls(judged, now)
            self._learn(quantile(self._judge(judged, now), WAIT_QUANTILE), now)
        self.turned_away_last_height = self._turned_away
        self._turned_away = False

    def _add_stalls(self, intervals: Sequence[tuple[float, float]]) -> None:
        """Keep the stalls in time order and disjoint (overlaps merged), so no second of
        a wait is taken out twice."""
        merged: list[tuple[float, float]] = []
        for since, to in sorted([*self._stalls, *intervals]):
            if merged and since <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], to))
            else:
                merged.append((since, to))
        self._stalls = deque(merged[-MAX_STALLS:], maxlen=MAX_STALLS)

    def _without_stalls(self, waits_s: Sequence[float], now: float) -> Sequence[float]:
        """Each wait that ended at ``now`` less the time it spent in proposerless rounds."""
        oldest = now - max(waits_s, default=0.0)
        stalls = [(since, to) for since, to in self._stalls if to > oldest]
        if not stalls:
            return waits_s
        return [
            wait - sum(max(0.0, to - max(since, now - wait)) for since, to in stalls)
            for wait in waits_s
        ]

    def _judge(self, waits_s: Sequence[float], now: float) -> list[float]:
        """The waits to judge at ``now``: this block's and those of the blocks committed
        within :data:`JUDGE_WINDOW` of the budget before it (at most
        :data:`MAX_JUDGED_WAITS`, the newest kept)."""
        kept = self._judged
        kept.append((now, tuple(waits_s)))
        self._judged_count += len(waits_s)
        cutoff = now - self.budget_s * JUDGE_WINDOW
        while len(kept) > 1 and (kept[0][0] < cutoff or self._judged_count > MAX_JUDGED_WAITS):
            self._judged_count -= len(kept.popleft()[1])
        return [wait for _, block in kept for wait in block]

    def turned_away(self) -> None:
        """Clients' transactions were refused for want of capacity."""
        self._turned_away = True

    def _learn(self, waited_s: float, now: float) -> None:
        since_s = now - self._changed_at
        short = waited_s < self.budget_s * HEADROOM
        self._slow_start = self._slow_start and waited_s < self.budget_s * SLOW_START_UNTIL
        if waited_s > self.budget_s * TARGET and since_s >= self.budget_s:
            self._capacity = max(float(self.floor_txs), self._capacity * DECREASE)
        elif self._turned_away and short and since_s >= self.budget_s * GROW_EVERY:
            growth = SLOW_START_INCREASE if self._slow_start else INCREASE
            self._capacity = min(float(MAX_CAPACITY_TXS), self._capacity * growth)
        else:
            return
        self._changed_at = now

    @property
    def slow_start(self) -> bool:
        """Whether the capacity still doubles at each rise (the judged waits have not reached
        :data:`SLOW_START_UNTIL` of the budget yet)."""
        return self._slow_start

    def rate(self, now: float) -> float:
        """Transactions committed per second over the window (0 before any commit)."""
        self._forget(now)
        if not self._commits:
            return 0.0
        span = max(now - self._commits[0][0], 1.0)  # one block alone is no rate yet
        return self._in_window / span

    def capacity(self, now: float) -> int:
        """Ready transactions the network's pool may hold, as learned so far (``now``
        is not used: the same signature as the rest)."""
        return int(self._capacity)

    def room(self, ready: int, now: float) -> int:
        """How many more transactions may be admitted with ``ready`` already waiting
        (unbounded when the budget is off)."""
        if not self.enabled:
            return UNBOUNDED
        return max(0, self.capacity(now) - ready)

    def counted(self, local: int, from_peers: int, now: float) -> None:
        """A block committed at ``now`` carried ``local`` transactions that this node's
        clients sent and ``from_peers`` that others' did."""
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
        """This node's share of the budget: of the transactions committed in the window,
        the part its own clients sent, at least ``min_share``; 1 before any was."""
        self._forget(now)
        total = self._local_arrived + self._peer_arrived
        if total == 0:
            return 1.0
        return max(self.min_share, self._local_arrived / total)

    def own_capacity(self, now: float) -> int:
        """This node's share of the capacity: the most its clients may have waiting."""
        return max(1, math.ceil(self.capacity(now) * self.share(now)))

    def client_room(self, ready: int, local_pending: int, now: float) -> int:
        """How many more transactions this node's clients may add: room in the shared
        budget, and in this node's share of it with ``local_pending`` of its clients'
        transactions still pending."""
        room = self.room(ready, now)
        if not self.enabled:
            return room
        own = self.own_capacity(now) - local_pending
        return max(0, min(room, own))

    def retry_after_s(
        self, ready: int, now: float, local_pending: int = 0, refused: int = 1
    ) -> float:
        """The wait to tell a client whose ``refused`` transactions did not fit: its
        *turn* — after the backlog has drained (:meth:`drain_s`) and after every client
        refused before it has had its own, the turns following each other at the rate
        this node's clients' transactions are taken (its share of the commit rate) —
        at least :data:`MIN_RETRY_AFTER_S`, at most the budget (30 s at most).

        Why turns: told only the drain, every client refused while a block runs heard
        the same wait and came back at once; the pool took what fitted and refused the
        rest again, a few tenths of a second later, again together. Offered 3,500 tx/s,
        four nodes answered 376,000-430,000 refusals over 60,000 transactions, and
        committed 8 % less than with whole-second waits (measured 2026-12-05,
        docs/performance.md "Retry-After in milliseconds"). With turns, a node just over
        saturation answered a half to a fifth as many 429s for the same committed rate
        (measured, "Turns"). Within a round (below) turns keep the order in which clients
        were refused (a turn is never earlier than one told before it), so one sender's
        transactions come back in nonce order. Not past the budget: turns of up to 30 s
        left the network idle while its clients waited them out (288.8 tx/s at 3,500
        offered, measured).

        Turns that would run past the budget begin a new round at the drain instead of
        all being told the budget itself: told 2 s each, the clients one loop turn
        refused came back at one moment, the pool took a block of them and refused the
        rest together again, and between such crowds the network idled (blocks of
        11-72 transactions between ones of over 1,000, four validators offered 3,500
        tx/s). In rounds they come back spread over the budget (measured 2026-12-06,
        docs/performance.md "Turns in rounds"). Only clients refused more than a budget
        of turns apart can be told times out of their order, and one sender's later
        transactions wait for the answer to its earlier one (a client holds them; a
        batch's are held behind its first refusal: node/admission.py)."""
        longest_s = self._longest_wait_s()
        drain_at = now + self.drain_s(ready, now, local_pending)
        turn = max(drain_at, self._next_turn)
        if turn > now + longest_s:
            turn = drain_at  # the turns ran past the budget: a new round of them begins
        rate = self._drain_rate(now) * self.share(now)
        self._next_turn = turn + (refused / rate if rate > 0 else 0.0)
        return max(MIN_RETRY_AFTER_S, min(longest_s, turn - now))  # turn - now: float error

    def drain_s(self, ready: int, now: float, local_pending: int = 0) -> float:
        """Seconds until the backlog over the budget has drained — and the backlog of
        this node's clients over its share, which drains at its share of the rate — at
        least :data:`MIN_RETRY_AFTER_S` and at most the budget (30 s at most). Not whole
        seconds: a backlog a block drains in 0.3 s, told as 1 s, kept its clients away
        while the network ran out of work (the API rounds ``Retry-After`` up and says the
        wait itself in ``Retry-After-Ms``). Not longer: the share
        is counted over the last 10 s, and when the other nodes' clients stop sending it
        lags, so the drain of this node's own backlog was reckoned at a quarter of the
        rate it had — clients told to come back in 8–14 s while the network idled at
        75–140 tx/s (measured, 2,500 offered). Past one budget the node promises nothing
        anyway; a client told to come back sooner costs it one 429, answered before
        anything is decoded. The rate is at least the one the capacity stands for (a
        capacity's worth a budget): the window's rate falls while the network waits for
        clients told to come back later, and from it the next ones were told to wait
        longer still (a run's last 3,000 transactions came in waves 20 s apart, the
        network idle between them, measured)."""
        capacity, share = self.capacity(now), self.share(now)
        rate = self._drain_rate(now)
        if rate <= 0:
            return 1.0
        drain_s = max(
            (ready - capacity + 1) / rate,
            (local_pending - capacity * share + 1) / (rate * share),
        )
        return max(MIN_RETRY_AFTER_S, min(self._longest_wait_s(), drain_s))

    def _drain_rate(self, now: float) -> float:
        """Transactions taken per second: the window's rate, at least the capacity's
        worth a budget (0 when the budget is off and nothing was committed)."""
        return max(self.rate(now), self.capacity(now) / self.budget_s if self.enabled else 0.0)

    def _longest_wait_s(self) -> float:
        return min(MAX_RETRY_AFTER_S, self.budget_s) if self.enabled else 1.0

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


def quantile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile of ``values`` (nearest rank; not empty)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
