"""Small shared types of the consensus core: steps and resource limits."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from ledger.errors import ValidationError
from ledger.votes import Proposal, Vote

ConsensusMessage = Proposal | Vote


class Step(IntEnum):
    """The paper's step_p, plus COMMIT: decided at this height, waiting for the layer,
    and WAIT: round 0 of a height not started yet, because there is nothing to commit
    (``TimeoutConfig.empty_block_interval_ms``; docs/consensus.md, "An idle network").

    Ordered so that ``step >= Step.PREVOTE`` reads like the paper's ``step_p ≥ prevote``.
    """

    WAIT = 0
    PROPOSE = 1
    PREVOTE = 2
    PRECOMMIT = 3
    COMMIT = 4


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds that keep a byzantine peer from growing our memory without limit.

    * ``future_heights``: messages for heights h+1 .. h+future_heights are buffered
      (a peer that decided before us is already voting at h+1); higher ones are
      rejected with ``HeightOutOfWindow`` and only hint that we are behind.
    * ``future_rounds``: messages for rounds up to round_p + future_rounds are stored;
      for rounds beyond that only each validator's highest round is remembered,
      which is all the f+1 round skip (lines 55-56) needs.
    * ``max_buffered``: total next-height messages held.
    * ``max_buffered_per_sender``: next-height messages held per validator and height.
      Only messages whose signature checked out are buffered, so this is what keeps one
      byzantine validator (signing as many messages as it likes) from taking the room of
      the others: with the default 64 and up to ``max_buffered // 64`` validators, the
      total bound is never reached. An honest validator sends at most a proposal and two
      votes per round.
    * ``max_proposals_per_round``: distinct proposals kept per round (an equivocating
      proposer can sign many; the first is the one lines 22/28 act on).
    """

    future_heights: int = 1
    future_rounds: int = 16
    max_buffered: int = 10_000
    max_buffered_per_sender: int = 64
    max_proposals_per_round: int = 4

    def __post_init__(self) -> None:
        if self.future_heights < 0 or self.future_rounds < 1:
            raise ValidationError("future_heights must be >= 0 and future_rounds >= 1")
        if self.max_buffered < 0 or self.max_buffered_per_sender < 0:
            raise ValidationError("max_buffered and max_buffered_per_sender must be >= 0")
        if self.max_proposals_per_round < 1:
            raise ValidationError("max_proposals_per_round must be >= 1")
