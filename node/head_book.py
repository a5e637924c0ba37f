"""The head statements a node holds (ledger/head.py): in memory only, bounded, never
written to the chain — freshness while idle costs no growth.

Only the latest statement of each validator is kept, and only for blocks this node
has committed among the last ``HEIGHTS`` heights: ``HEIGHTS`` × the validators, a few
hundred bytes each. A statement is taken after the cheap checks (height in that
window, a validator of that height, the block hash this node committed there, a time
no further ahead of this node's clock than ``MAX_AHEAD_MS``, newer than the one held)
and at least ``MIN_STEP_MS`` newer than the one held) and only then its signature, so a
byzantine validator signing ever later times costs at most a signature check per
``MIN_STEP_MS`` of time it claims (and its clock may claim no more than
``MAX_AHEAD_MS`` ahead). A statement refused for its signature, or by a key that is
not a validator there, blames its peer; one merely out of the window (a peer a block
ahead or behind) does not.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum

from ledger.errors import SignatureError
from ledger.head import HeadStatement
from node.chain import ChainStore

HEIGHTS = 4  # the head and the three blocks below it
MAX_AHEAD_MS = 30_000  # a validator's clock this far ahead of ours is still believed
MIN_STEP_MS = 500  # a validator's next statement for a height must be this much newer


class Taken(Enum):
    NEW = "new"  # kept (relay it)
    IGNORED = "ignored"  # outside the window, known or older: no fault of the sender
    FORGED = "forged"  # a bad signature, or a non-validator's key: blame the sender


class HeadBook:
    """The latest head statement per validator for the last ``HEIGHTS`` heights."""

    def __init__(self, chain: ChainStore, clock: Callable[[], float]) -> None:
        self.chain = chain
        self.clock = clock
        self._by_height: dict[int, dict[bytes, HeadStatement]] = {}

    def add(self, s: HeadStatement) -> Taken:
        """Keep ``s`` if it is new and checks out (see the module docstring)."""
        head = self.chain.head().height
        if not head - HEIGHTS < s.height <= head:
            return Taken.IGNORED
        if s.validator not in self.chain.validators_at(s.height):
            return Taken.FORGED
        known = self._by_height.get(s.height, {}).get(s.validator)
        if known is not None and s.time_ms < known.time_ms + MIN_STEP_MS:
            return Taken.IGNORED
        if s.time_ms > self.clock() * 1000 + MAX_AHEAD_MS or s.block_hash != self._hash(s.height):
            return Taken.IGNORED  # a clock far ahead, or a block we did not commit there
        try:
            s.verify_signature(self.chain.genesis.chain_id)
        except SignatureError:
            return Taken.FORGED
        self._by_height.setdefault(s.height, {})[s.validator] = s
        for old in [h for h in self._by_height if h <= head - HEIGHTS]:
            del self._by_height[old]
        return Taken.NEW

    def statements(self, height: int) -> list[HeadStatement]:
        """The statements held for block ``height`` (the latest of each validator)."""
        return list(self._by_height.get(height, {}).values())

    def _hash(self, height: int) -> bytes | None:
        head = self.chain.head()
        if height == head.height:
            return head.block_hash
        header = self.chain.header(height)
        return None if header is None else header.hash
