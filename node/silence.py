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
round 0 here, where the other validators' prevotes can still carry its block.

A byzantine validator can also vote at every height and never propose (withholding its
proposals is within what f faults may do): each of its heights then waited the whole
timeout too. So a validator whose round-0 proposal has not reached this node by the
time its height was decided, :data:`MISSED_TURNS` turns in a row, is *withholding*, and
its round-0 proposals are awaited :data:`SILENT_PROPOSE_MS` as well, until one of them
arrives (even late: an honest proposer given the short wait may be slower than it). A
validator that sends a late proposal only to be waited for again costs at most
:data:`MISSED_TURNS` full timeouts and one short wait in every
:data:`MISSED_TURNS` + 1 of its turns, instead of every one.

Bounded: one height and one count per validator of the current set (votes naming
anything else are not kept).
"""

from __future__ import annotations

import logging
from collections.abc import Container
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ledger.validators import ValidatorSet
    from node.consensus.tally import RoundState

log = logging.getLogger("cityledger.consensus")

QUIET_HEIGHTS = 3  # heights without a vote or proposal from a validator: silent
SILENT_PROPOSE_MS = 250  # the round-0 propose timeout of a silent validator's heights, at
# most: a quarter of the full one when that is shorter (1 s or less: the simulator's)
MISSED_TURNS = 2  # round-0 turns in a row without its proposal: withholding


class CoreView(Protocol):
    """What the watch reads of a consensus core (node/consensus/core.py)."""

    @property
    def validators(self) -> ValidatorSet: ...

    @property
    def public_key(self) -> bytes | None: ...

    def round_state(self, round_: int) -> RoundState | None: ...


class SilenceWatch:
    """The last height at which each validator was heard (a vote or a proposal), and how
    many of its round-0 turns in a row brought no proposal here."""

    def __init__(self) -> None:
        self._heard: dict[bytes, int] = {}
        self._first: int | None = None  # the first height this node watched
        self._shortened: set[bytes] = set()  # silent validators whose wait was cut (logged)
        self._missed: dict[bytes, int] = {}  # round-0 turns in a row without its proposal
        self._withholding: set[bytes] = set()  # withholding ones whose wait was cut (logged)

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
            self._missed.pop(validator, None)  # the turns it missed were its silence
            self._withholding.discard(validator)
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

    def withholding(self, validator: bytes) -> bool:
        """``validator``'s last :data:`MISSED_TURNS` round-0 turns brought no proposal here."""
        return self._missed.get(validator, 0) >= MISSED_TURNS

    def cut_short(self, validator: bytes, height: int) -> bool:
        """Whether ``validator``'s round-0 proposal of ``height`` is awaited only briefly."""
        return self.silent(validator, height) or self.withholding(validator)

    def turn_over(self, proposer: bytes, proposed: bool) -> None:
        """A height whose round-0 proposer was ``proposer`` (not this node) was decided
        here; ``proposed``: that proposal reached this node, in time or late."""
        if not proposed:
            self._missed[proposer] = self._missed.get(proposer, 0) + 1
            return
        self._missed.pop(proposer, None)
        if proposer in self._withholding:
            self._withholding.discard(proposer)
            log.info(
                "validator %s… proposed again: its proposals are awaited the full timeout",
                proposer.hex()[:16],
            )

    def wait_ms(self, core: CoreView, height: int, round_: int, full_ms: int) -> int:
        """How long ``core``'s node waits for the proposal of (``height``, ``round_``):
        :meth:`propose_ms` for another validator's, ``full_ms`` for its own."""
        proposer = core.validators.proposer(height, round_)
        if proposer == core.public_key:
            return full_ms
        return self.propose_ms(proposer, height, round_, full_ms)

    def decided(self, core: CoreView, height: int, decided: int) -> set[int]:
        """``height`` is being committed by ``core``'s node, decided in round ``decided``:
        the rounds up to it whose proposal the core holds (in time or late, the node's
        own included). Round 0's says whether its proposer proposed (:meth:`turn_over`;
        the node's own turns are not counted)."""
        held = {r for r in range(decided + 1) if (s := core.round_state(r)) and s.proposal}
        proposer = core.validators.proposer(height, 0)
        if proposer != core.public_key:
            self.turn_over(proposer, 0 in held)
        return held

    def propose_ms(self, proposer: bytes, height: int, round_: int, full_ms: int) -> int:
        """How long to wait for ``proposer``'s proposal of (``height``, ``round_``)."""
        if round_ != 0:
            return full_ms
        short_ms = min(full_ms // 4, SILENT_PROPOSE_MS)
        if self.silent(proposer, height):
            if proposer not in self._shortened:
                self._shortened.add(proposer)
                why = f"has sent no vote for {QUIET_HEIGHTS} heights"
                self._said(proposer, why, short_ms, full_ms)
        elif self.withholding(proposer):
            if proposer not in self._withholding:
                self._withholding.add(proposer)
                why = f"has not proposed at its last {MISSED_TURNS} turns"
                self._said(proposer, why, short_ms, full_ms)
        else:
            return full_ms
        return short_ms

    @staticmethod
    def _said(proposer: bytes, why: str, short_ms: int, full_ms: int) -> None:
        log.info(
            "validator %s… %s: its round-0 proposals are awaited %d ms, not %d",
            proposer.hex()[:16],
            why,
            short_ms,
            full_ms,
        )

    def tracked(self) -> int:
        """How many validators this watch holds a height or a count for."""
        return len(self._heard.keys() | self._missed.keys())

    def forget_all_but(self, members: Container[bytes]) -> None:
        """Keep only ``members`` (called as each height starts: the set may change)."""
        self._heard = {k: h for k, h in self._heard.items() if k in members}
        self._shortened = {k for k in self._shortened if k in members}
        self._missed = {k: n for k, n in self._missed.items() if k in members}
        self._withholding = {k for k in self._withholding if k in members}
