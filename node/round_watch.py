"""Why a height needed a second round: the times a validator can see, logged.

A height decided in round 1 instead of 0 costs the network the whole of round 0's
timeouts (2-3 s with the defaults) and is most of the accepted p99 above saturation
(docs/performance.md, "Rounds lost to a late proposal"). Nothing in the logs said why:
whether the proposal came late to this node, or never, or its timer fired late because
the node's loop was busy. This keeps, for the current height, when the node entered each
round and when its proposal arrived, and writes one INFO line when a round's proposal
timeout passes without one, or one comes after it.

Clock-free: callers pass ``now`` (seconds of a monotonic clock). Bounded: the entries of
one height, a few rounds, cleared at every commit.
"""

from __future__ import annotations

import logging
from collections.abc import Container

log = logging.getLogger("cityledger.consensus")

MAX_ROUNDS_KEPT = 16  # of one height: past this, later rounds are not timed


class RoundWatch:
    """Entry and proposal times of the current height's rounds."""

    def __init__(self) -> None:
        self._height = 0
        self._entered: dict[int, float] = {}  # round -> when this node entered it
        self._proposed: dict[int, float] = {}  # round -> when its proposal arrived
        self._nil: set[int] = set()  # rounds this node gave up waiting for a proposal
        self._expected: set[int] = set()  # ... of them, from a proposer known to be silent

    def entered(self, height: int, round_: int, now: float) -> None:
        """This node started waiting for ``round_``'s proposal."""
        self._at(height)
        if len(self._entered) < MAX_ROUNDS_KEPT:
            self._entered.setdefault(round_, now)

    def proposal_arrived(
        self,
        height: int,
        round_: int,
        proposer: bytes,
        window_s: float,
        now: float,
        *,
        block_age_s: float,
    ) -> None:
        """A proposal for ``round_`` reached this node; logged when it came after the
        node had stopped waiting for it. ``block_age_s``: how long before its arrival its
        block's time was stamped (the proposer's clock when it began to build; its
        start, build and transfer on one side, the clocks' offset on the other)."""
        if height != self._height or round_ in self._proposed:
            return
        entered = self._entered.get(round_)
        if entered is None:
            return
        self._proposed[round_] = now
        if round_ in self._nil:
            log.info(
                "height %d round %d: the proposal from %s… came %.2f s into the round, "
                "after the %.2f s this node waited for it; its block was stamped %.2f s "
                "before it arrived",
                height,
                round_,
                proposer.hex()[:16],
                now - entered,
                window_s,
                block_age_s,
            )

    def timed_out(
        self,
        height: int,
        round_: int,
        proposer: bytes,
        timer_late_s: float,
        now: float,
        *,
        expected: bool = False,
    ) -> None:
        """The proposal timeout of ``round_`` passed with no proposal: prevote nil.
        ``expected``: the proposer is known to be silent (node/silence.py, which said so
        once): this line and the height's decision in round 1 go to DEBUG, not to every
        n-th height's INFO for as long as a validator is down."""
        entered = self._entered.get(round_) if height == self._height else None
        if entered is None:
            return
        self._nil.add(round_)
        if expected:
            self._expected.add(round_)
        log.log(
            logging.DEBUG if expected else logging.INFO,
            "height %d round %d: no proposal from %s… %.2f s into the round "
            "(the timer fired %.2f s late); prevoting nil",
            height,
            round_,
            proposer.hex()[:16],
            now - entered,
            timer_late_s,
        )

    def own_proposal_ready(
        self,
        height: int,
        round_: int,
        txs: int,
        *,
        ready_s: float,
        built_s: float,
        tx_cost_s: float,
        window_s: float,
    ) -> None:
        """This node's proposal is ready ``ready_s`` into the round; said when that is
        after the validators' timeout_propose (``window_s``): the round will most likely
        fail, and the line says whether the build (``built_s``) was the cause."""
        if ready_s > window_s:
            log.warning(
                "height %d round %d: our proposal of %d transactions was ready %.2f s into "
                "the round (built in %.2f s, estimated %.2f ms a transaction); the "
                "validators wait %.2f s for it",
                height,
                round_,
                txs,
                ready_s,
                built_s,
                tx_cost_s * 1000,
                window_s,
            )

    def committed(
        self, height: int, round_: int, now: float, proposed: Container[int] = ()
    ) -> list[tuple[float, float]]:
        """``height`` was decided in ``round_``; a decision after round 0 is logged with
        how long the height's first round had been running. Returns the rounds before it
        whose proposal never reached this node (not in ``proposed``: the rounds whose
        proposal the core holds, this node's own included), each as (from, to) seconds
        before ``now``: the time the height stood still for its proposers, not for any
        pool (node/latency_budget.py does not judge admission by it)."""
        stalls = self._proposerless(height, round_, now, proposed)
        if round_ > 0 and height == self._height and 0 in self._entered:
            expected = set(range(round_)) <= self._expected  # every failed round foretold
            log.log(
                logging.DEBUG if expected else logging.INFO,
                "height %d decided in round %d, %.2f s after this node entered round 0",
                height,
                round_,
                now - self._entered[0],
            )
        self._at(height + 1)
        return stalls

    def _proposerless(
        self, height: int, decided: int, now: float, proposed: Container[int]
    ) -> list[tuple[float, float]]:
        if height != self._height:
            return []
        entered, stalls = self._entered, []
        for r in range(decided):
            if r in entered and r not in proposed:
                stalls.append((now - entered[r], now - entered.get(r + 1, now)))
        return stalls

    def _at(self, height: int) -> None:
        if height != self._height:
            self._height = height
            self._entered.clear()
            self._proposed.clear()
            self._nil.clear()
            self._expected.clear()
