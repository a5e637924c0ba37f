"""The consensus tests' harness: one core (v0 unless told) plus signed messages from the
other validators, the effect filters the tests read, and the vote types and two block
hashes (``A``, ``B``) every consensus test votes with."""

from __future__ import annotations

import hashlib
from typing import TypeVar

from ledger.votes import Proposal, Vote, VoteType
from node.consensus import (
    Broadcast,
    ConsensusCore,
    Signer,
    Step,
    TimeoutConfig,
)
from node.consensus.effects import Effect
from tests.sim.fixtures import CHAIN_ID, KEYS, index_of, validator_set

PREVOTE, PRECOMMIT = VoteType.PREVOTE, VoteType.PRECOMMIT
A = hashlib.sha256(b"A").digest()  # sorts before B: evidence keeps its pair in hash order
B = hashlib.sha256(b"B").digest()
TIMEOUTS = TimeoutConfig(1000, 100, 500, 50, 500, 50)
E = TypeVar("E")


def of(effects: list[Effect], kind: type[E]) -> list[E]:
    return [e for e in effects if isinstance(e, kind)]


def sent(effects: list[Effect]) -> list[Proposal | Vote]:
    return [e.message for e in of(effects, Broadcast)]


class Harness:
    """One core plus signed messages from the other validators.

    By default validators v0..v3 have power 1 (f = 1, 2f+1 = 3); the proposer of height 1
    is v1 in round 0, v2 in round 1, v3 in round 2, v0 in round 3; the core is v0's.
    """

    def __init__(
        self, n: int = 4, me: int = 0, powers: list[int] | None = None, **kwargs: object
    ) -> None:
        self.validators = validator_set(n, powers)
        self.signer = kwargs.pop("signer", None) or Signer(KEYS[me], CHAIN_ID)
        timeouts = kwargs.pop("timeouts", TIMEOUTS)
        self.core = ConsensusCore(
            chain_id=CHAIN_ID,
            validators=self.validators,
            signer=self.signer,  # type: ignore[arg-type]
            timeouts=timeouts,  # type: ignore[arg-type]
            **kwargs,  # type: ignore[arg-type]
        )
        self.start_effects = self.core.start()

    def vote(self, i: int, kind: VoteType, round_: int, value: bytes, height: int = 1) -> Vote:
        return Vote.create(KEYS[i], CHAIN_ID, kind, height, round_, value)

    def proposal(self, round_: int, value: bytes, vr: int = -1, height: int = 1) -> Proposal:
        i = index_of(self.validators, self.validators.proposer(height, round_))
        return Proposal.create(KEYS[i], CHAIN_ID, height, round_, value, vr)

    def votes(
        self, who: list[int], kind: VoteType, round_: int, value: bytes, height: int = 1
    ) -> list[Effect]:
        out: list[Effect] = []
        for i in who:
            out += self.core.on_vote(self.vote(i, kind, round_, value, height))
        return out

    def propose_valid(self, round_: int, value: bytes, vr: int = -1) -> list[Effect]:
        out = self.core.on_proposal(self.proposal(round_, value, vr))
        if value not in self.core._validity:
            out += self.core.on_validation_result(1, value, True)
        return out

    def lock_on(self, value: bytes, round_: int = 0) -> None:
        """Drive the core to lock on ``value`` in ``round_`` (rule 36)."""
        self.to_round(round_)
        self.propose_valid(round_, value)
        self.votes([1, 2], PREVOTE, round_, value)
        assert self.core.locked_value == value and self.core.locked_round == round_

    def to_round(self, round_: int) -> list[Effect]:
        """Time out through the rounds up to ``round_``; the effects of entering it."""
        out: list[Effect] = []
        while self.core.round < round_:
            r = self.core.round
            self.core.on_timeout(1, r, Step.PROPOSE)
            self.core.on_timeout(1, r, Step.PREVOTE)
            out = self.core.on_timeout(1, r, Step.PRECOMMIT)
        return out
