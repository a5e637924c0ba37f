"""Validators this node has not heard from lately, and how long to wait for their proposals.

A stopped validator (a crash, maintenance, an agency's outage: one of the f faults the
network tolerates) is still the proposer of every n-th height, and each of those heights
waited the whole round-0 propose timeout (2 s as founded) for a proposal that could not
come, then decided in round 1. With one of four validators down that was 2.5-2.7 s of
every four heights, most of the network's time: measured (`bench catchup`, 2026-12-07),
the three others committed 157-461 tx/s where four commit about 900, and admission,
which keeps what it takes within its latency budget, turned most clients away.

Each validator votes at every height, so a validator whose votes have stopped reaching
this node for :data:`QUIET_HEIGHTS` heights is *silent*, and this node waits only
:data:`SILENT_PROPOSE_MS` for its round-0 proposal. The first vote or proposal heard
from it again ends that. Only round 0, and never this node's own: every later round
waits the full, growing timeout, as the protocol's liveness after GST needs.

Safety does not depend on timeouts (Tendermint's locks and quorums do), and this changes
no message and nothing on the chain: each node decides for itself, from what it hears.
A validator that is silent towards this node only (a broken link) loses at most its
round 0 here, where the other validators' prevotes can still carry its block; a
byzantine validator that votes and never proposes still costs its heights the full
timeout, as before.

Bounded: one height per validator of the current set (votes naming anything else are
not kept).
"""

from __future__ import annotations

import logging
from collections.abc import Container

log = logging.getLogger("cityledger.consensus")

QUIET_HEIGHTS = 3  # heights without a vote or proposal from a validator: silent
SILENT_PROPOSE_MS = 250  # the round-0 propose timeout of a silent validator's heights


class SilenceWatch:
    """The last height at which each validator was heard (a vote or a proposal)."""

    def __init__(self) -> None:
        self._heard: dict[bytes, int] = {}
        self._first: int | None = None  # the first height this node watched
        self._shortened: set[bytes] = set()  # silent validators whose wait was cut (logged)

    def heard(self, validator: bytes, height: int, current: int, members: Container[bytes]) -> None:
        """A vote or proposal of ``validator`` for ``height`` reached this node, at
        ``current``; kept if ``validator`` is one of ``members`` and the message is not
        from a height long past (an old vote relayed says nothing about now)."""
        if height < current - 1 or validator not in members:
            return
        if height > self._heard.get(validator, -1):
            self._heard[validator] = height
        if validator in self._shortened:
            self._shortened.discard(validator)
            log.info(
                "validator %s… is heard again: its proposals are awaited the full timeout",
                validator.hex()[:16],
            )

    def silent(self, validator: bytes, height: int) -> bool:
        """Nothing from ``validator`` for more than :data:`QUIET_HEIGHTS` heights before
        ``height`` (counted from the first height this node watched)."""
        if self._first is None:
            self._first = height
        return height - self._heard.get(validator, self._first) > QUIET_HEIGHTS

    def propose_ms(self, proposer: bytes, height: int, round_: int, full_ms: int) -> int:
        """How long to wait for ``proposer``'s proposal of (``height``, ``round_``)."""
        if round_ != 0 or not self.silent(proposer, height):
            return full_ms
        if proposer not in self._shortened:
            self._shortened.add(proposer)
            log.info(
                "validator %s… has sent no vote for %d heights: its round-0 proposals are "
                "awaited %d ms, not %d",
                proposer.hex()[:16],
                QUIET_HEIGHTS,
                SILENT_PROPOSE_MS,
                full_ms,
            )
        return min(full_ms, SILENT_PROPOSE_MS)

    def tracked(self) -> int:
        """How many validators this watch holds a height for."""
        return len(self._heard)

    def forget_all_but(self, members: Container[bytes]) -> None:
        """Keep only ``members`` (called as each height starts: the set may change)."""
        self._heard = {k: h for k, h in self._heard.items() if k in members}
        self._shortened = {k for k in self._shortened if k in members}
