"""Idle periods, then bursts: the simulated network's transactions and what must hold.

Half of the seeds (drawn from a generator of their own, so the other half's scenarios
are exactly what they were) run with ``empty_block_interval_ms`` set: each height waits
before its round 0 until a node has something to commit or the heartbeat fires
(node/consensus/rules.py). Transactions arrive in a few bursts, each at one honest
validator, before and after GST; nodes gossip them (and pull missing ones in their
anti-entropy exchange), and a proposer's block carries the ones it holds.

Checked on top of tests/sim/checker.py, for every idle seed:

* **prompt** — a transaction that reaches an honest validator after GST is committed
  (by every honest node) within ``commit_bound_ms``, well under the heartbeat: a
  validator holding it is not left waiting behind a proposer that has none. When the
  height that carries it needs more than round 0, the wait is judged, not consensus's
  rounds (:func:`late_for_rounds`): an honest proposer proposed it within the bound,
  and every honest node that ran that height's round 0 began it within the bound of
  being at that height with the transaction about. Rounds are lost without any wait:
  a byzantine proposer, or a lock whose proof some honest nodes lack — a withholder's
  vote that reached one node travels here only by the pull gossip (a node asks one
  peer at a time), where nodes relay every consensus message they take at once
  (node/gossip.py). Found with seeds 9110329 (nine rounds: a withholder and an
  equivocating proposer among seven, the honest power exactly the quorum) and
  9114107; liveness through such rounds is the checker's (tests/sim/checker.py);
* **no growth for nothing** — after GST the honest chain grows by at most one height
  per heartbeat interval, plus a few per burst whose transactions it commits after GST
  (one that arrived before GST, held back by a partition, counts too): an idle network
  does not commit blocks at round pace.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.sim.world import World

INTERVALS_MS = (1500, 3000, 5000)
HEIGHTS_PER_BURST = 3  # a burst that reaches the proposer late can take a second block
SLACK_HEIGHTS = 2  # the height in progress at GST and the one under way at the end


@dataclass(frozen=True)
class Burst:
    at: int  # ms
    node: int  # an honest validator's node id
    txs: frozenset[int]


@dataclass(frozen=True)
class IdlePlan:
    interval_ms: int
    bursts: tuple[Burst, ...]
    commit_bound_ms: int = 2500

    def describe(self) -> str:
        times = ", ".join(f"{b.at}ms@v{b.node}" for b in self.bursts)
        return f"idle: heartbeat {self.interval_ms}ms, bursts {times}"


def draw_idle(seed: int, gst: int, honest: list[int]) -> IdlePlan | None:
    """The idle plan of ``seed``, or None (about half the seeds run without waiting)."""
    rng = random.Random(f"idle-{seed}")
    if rng.random() < 0.5 or not honest:
        return None
    interval = rng.choice(INTERVALS_MS)
    bursts = []
    next_tx = 0
    for _ in range(rng.randint(1, 4)):
        size = rng.randint(1, 5)
        txs = frozenset(range(next_tx, next_tx + size))
        next_tx += size
        bursts.append(Burst(rng.randint(0, gst + 4 * interval), rng.choice(honest), txs))
    return IdlePlan(interval, tuple(sorted(bursts, key=lambda b: b.at)))


def settled(world: World) -> bool:
    """Every burst has arrived and every honest node has committed all of it."""
    plan = world.config.idle
    if plan is None:
        return True
    if world.sched.now < plan.bursts[-1].at:
        return False
    every = frozenset().union(*(b.txs for b in plan.bursts))
    return all(every <= world.nodes[i].done_txs for i in world.honest_ids)


def check_idle(world: World) -> list[str]:
    """The prompt-commit and no-growth rules above, as readable sentences."""
    plan = world.config.idle
    if plan is None:
        return []
    violations = []
    gst = world.config.net.gst
    bound = plan.commit_bound_ms
    last = 0
    for burst in plan.bursts:
        if burst.at < gst:
            continue
        for tx in sorted(burst.txs):
            committed = world.tx_committed_everywhere(tx)
            if committed is None:
                when = "never"
            elif committed - burst.at > bound and not late_for_rounds(world, tx, burst.at, bound):
                when = f"after {committed - burst.at}ms"
            else:
                when = ""
            if when:
                violations.append(
                    f"prompt: tx {tx} reached v{burst.node} at {burst.at}ms, committed by "
                    f"every honest node {when} (bound {bound}ms)"
                )
            last = max(last, committed or 0)
    after = [b for b in plan.bursts if b.at >= gst or _first_committed_after(world, b, gst)]
    elapsed = world.sched.now - gst
    allowed = elapsed // plan.interval_ms + HEIGHTS_PER_BURST * len(after) + SLACK_HEIGHTS
    grown = heights_decided_after(world, gst)
    if grown > allowed:
        violations.append(
            f"growth: the honest nodes decided {grown} new heights in the {elapsed}ms after "
            f"GST, more than {allowed} (heartbeat {plan.interval_ms}ms, {len(after)} bursts)"
        )
    return violations


def late_for_rounds(world: World, tx: int, arrived: int, bound_ms: int) -> bool:
    """Whether ``tx``, committed everywhere but later than ``bound_ms`` after it
    ``arrived``, was late for consensus's rounds and not for a wait: its height was
    decided after round 0, an honest proposer proposed it within the bound, and every
    honest node that ran that height's round 0 began it within the bound of being at
    that height with ``tx`` arrived."""
    height = world.tx_height.get(tx)
    if height is None:
        return False
    if world.decided_round.get(height, 0) == 0:
        return False
    proposed = world.tx_proposed_at.get(tx)
    if proposed is None or proposed - arrived > bound_ms:
        return False
    for i in world.honest_ids:
        began = world.round0_at.get((i, height))
        there = world.entered_at.get((i, height))
        if began is not None and there is not None and began - max(there, arrived) > bound_ms:
            return False
    return True


def _first_committed_after(world: World, burst: Burst, since: int) -> bool:
    """Some transaction of ``burst`` was first committed (by any honest node) at or after
    ``since``: the height that carried it grew the chain then."""
    for tx in burst.txs:
        times = [world.tx_commit_at.get(i, {}).get(tx) for i in world.honest_ids]
        first = min((t for t in times if t is not None), default=None)
        if first is not None and first >= since:
            return True
    return False


def heights_decided_after(world: World, since: int) -> int:
    """Heights first committed by an honest node at or after ``since`` (a node that was
    cut off and syncs older heights after GST adds none: the chain did not grow then)."""
    first: dict[int, int] = {}  # height -> earliest commit time by an honest node
    for i in world.honest_ids:
        for height, at in enumerate(world.recorder.commit_times.get(i, []), start=1):
            first[height] = min(at, first.get(height, at))
    return sum(1 for at in first.values() if at >= since)
