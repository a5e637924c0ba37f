"""The rules of Algorithm 1 ("The latest gossip on BFT consensus", Buchman, Kwon,
Milosevic, arXiv:1807.04938): the state of lines 1-9 and every "upon" rule and
function, each citing its line numbers.

How the "upon" rules are evaluated: a vote can only enable a rule at the moment a
2f+1 (or f+1) threshold crosses, so a vote that crosses nothing costs a few
dictionary operations; any crossing, proposal, validation answer or timeout re-runs
the rule list (:meth:`RoundMachine._run`) until no rule fires. Rules the paper marks
"for the first time" (34, 36, 47) fire once per round; 49 fires once per height.

Deliberate, documented deviations (docs/consensus.md has the reasoning):

* The timeout for the propose step (line 21) is scheduled by the proposer too:
  it may be waiting for the layer's getValue() answer, and the timeout then moves
  it on exactly as it moves the others (lines 57-60); when it does propose, the
  timeout is harmless because it checks step_p = propose.
* Lines 52-54 (next height) run when the layer answers ``BlockCommitted``, so the
  next proposal is built on the committed block; until then step is ``COMMIT``.
* valid(v) is asked of the layer (``RequestValidation``) and may be answered later;
  a rule that needs valid(v) waits for the answer (the propose timeout still runs).
* An idle height waits before StartRound(0) (step ``WAIT``, only when
  ``TimeoutConfig.empty_block_interval_ms`` > 0) until the layer has something to
  commit (``TxsAvailable``), the heartbeat fires, round 0's proposal arrives, or
  validators with f+1 power have sent round-0 messages (at least one correct process
  started: join it, so that a validator with transactions is not left alone behind a
  proposer without them). Rounds above 0 never wait, and the f+1 skip (lines 55-56)
  takes a waiting process to them. Waiting only delays the start of round 0, as a slow
  process would be delayed: no vote is cast or rule changed by it, so safety does not
  depend on it; rule 49 (decide) and 47 still fire while waiting.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import TypeVar

from ledger.ids import NIL_ROUND
from ledger.validators import ValidatorSet
from ledger.votes import NIL, CommitCertificate, Proposal, Vote, VoteType
from node.consensus.effects import (
    Broadcast,
    Commit,
    Effect,
    RequestValidation,
    RequestValue,
    ScheduleTimeout,
    SignRefused,
)
from node.consensus.errors import DoubleSignRefused
from node.consensus.signer import Signer
from node.consensus.tally import CROSSED_VALUE, RoundState
from node.consensus.timeouts import TimeoutConfig
from node.consensus.types import Step

PREVOTE = VoteType.PREVOTE
PRECOMMIT = VoteType.PRECOMMIT
M = TypeVar("M", Proposal, Vote)


class RoundMachine:
    """h_p, round_p, step_p, the locks and the message log of one height, and the rules."""

    decision: bytes | None
    locked_value: bytes | None
    valid_value: bytes | None

    def __init__(
        self,
        *,
        validators: ValidatorSet,
        height: int,
        signer: Signer | None,
        timeouts: TimeoutConfig,
    ) -> None:
        self.timeouts = timeouts
        self.counters: Counter[str] = Counter()
        self._signer = signer
        self._me = signer.public_key if signer is not None else None
        self._set_validators(validators)
        # Lines 1-9 (decision_p[] is the layer's chain; we keep the current one).
        self.round = 0
        self.step = Step.PROPOSE
        self._reset_height(height)
        self._out: list[Effect] = []

    # --- the rules ------------------------------------------------------------------------

    def _run(self) -> None:
        """Fire enabled "upon" rules until none is."""
        while self.step != Step.COMMIT and self._fire_one():
            pass

    def _fire_one(self) -> bool:
        """Fire the first enabled rule; True if the state changed so others may be enabled."""
        if self._commit_candidates and self._rule_49():
            return False
        if self._skip_round > self.round:
            self._start_round(self._skip_round)  # lines 55-56
            return True
        rs = self._rounds[self.round]
        step = self.step
        quorum = self._quorum
        if step == Step.WAIT and (rs.proposal is not None or self._skip_round == 0):
            self._end_wait("others")  # round 0's proposer started, or f+1 power did
            return True
        if step == Step.PROPOSE:
            p = rs.proposal
            if p is not None and (self._rule_22(p) if p.valid_round < 0 else self._rule_28(p)):
                return True
        elif step == Step.PREVOTE and not rs.fired_34 and rs.prevotes.total >= quorum:
            # Lines 34-35: 2f+1 ⟨PREVOTE, h_p, round_p, ∗⟩ while step = prevote, first time.
            rs.fired_34 = True
            self._schedule(Step.PREVOTE)
        if (
            step >= Step.PREVOTE
            and not rs.fired_36
            and rs.prevotes.quorum_values
            and self._rule_36(rs)
        ):
            return True
        if step == Step.PREVOTE and rs.prevotes.power.get(NIL, 0) >= quorum:
            # Lines 44-46: 2f+1 ⟨PREVOTE, h_p, round_p, nil⟩ while step = prevote.
            self._precommit(NIL)
            return True
        if not rs.fired_47 and rs.precommits.total >= quorum:
            # Lines 47-48: 2f+1 ⟨PRECOMMIT, h_p, round_p, ∗⟩ for the first time.
            rs.fired_47 = True
            self._schedule(Step.PRECOMMIT)
        if rs.precommits.power.get(NIL, 0) >= quorum:
            # Not in the paper (docs/consensus.md, "Deviations"): 2f+1 precommitted nil, so
            # no value can be decided in round_p; round_p + 1 starts now, not after
            # timeoutPrecommit (the timer's firing is then stale).
            self._start_round(self.round + 1)
            return True
        return False

    def _rule_22(self, p: Proposal) -> bool:
        """Lines 22-27: ⟨PROPOSAL, h_p, round_p, v, −1⟩ while step = propose."""
        valid = self._validity_of(p)
        if valid is None:
            return False  # wait for the layer's valid(v)
        v = p.block_hash
        acceptable = valid and (self.locked_round == NIL_ROUND or self.locked_value == v)
        self._prevote(v if acceptable else NIL)  # lines 23-27
        return True

    def _rule_28(self, p: Proposal) -> bool:
        """Lines 28-33: ⟨PROPOSAL, h_p, round_p, v, vr⟩ AND 2f+1 ⟨PREVOTE, h_p, vr, id(v)⟩
        while step = propose ∧ (vr ≥ 0 ∧ vr < round_p)."""
        vr = p.valid_round
        v = p.block_hash
        past = self._rounds.get(vr)
        if past is None or not past.prevotes.has_quorum(v):
            return False
        valid = self._validity_of(p)
        if valid is None:
            return False
        acceptable = valid and (self.locked_round <= vr or self.locked_value == v)
        self._prevote(v if acceptable else NIL)  # lines 29-33
        return True

    def _rule_36(self, rs: RoundState) -> bool:
        """Lines 36-43: ⟨PROPOSAL, h_p, round_p, v, ∗⟩ AND 2f+1 ⟨PREVOTE, h_p, round_p, id(v)⟩
        while valid(v) ∧ step ≥ prevote, for the first time."""
        for v in rs.prevotes.quorum_values:
            p = rs.proposals.get(v)
            if p is None or not self._validity_of(p):
                continue
            rs.fired_36 = True
            if self.step == Step.PREVOTE:
                self.locked_value = v  # line 38
                self.locked_round = self.round  # line 39
                self._precommit(v, rs.prevotes.for_value(v))  # lines 40-41
            self.valid_value = v  # line 42
            self.valid_round = self.round  # line 43
            return True
        return False

    def _rule_49(self) -> bool:
        """Lines 49-51: ⟨PROPOSAL, h_p, r, v, ∗⟩ AND 2f+1 ⟨PRECOMMIT, h_p, r, id(v)⟩ while
        decision_p[h_p] = nil, if valid(v). (Lines 52-54 wait for ``BlockCommitted``.)"""
        for r, v in self._commit_candidates:
            rs = self._rounds[r]
            p = rs.proposals.get(v)
            if p is None or not self._validity_of(p):
                continue
            self.decision = v  # line 51
            self.step = Step.COMMIT
            certificate = CommitCertificate.from_votes(rs.precommits.for_value(v))
            self.counters["commits"] += 1
            self._out.append(Commit(self.height, r, v, certificate))
            return True
        return False

    def _start_round(self, round_: int) -> None:
        """Lines 11-21: StartRound(round)."""
        self.round = round_  # line 12
        self.step = Step.PROPOSE  # line 13
        if round_ not in self._rounds:
            self._new_round_state(round_)
        if self._is_proposer(round_):  # line 14
            # validRound < round always holds in the paper; after a restart in the round we
            # locked in, it does not, and that proposal was signed before the lock anyway.
            if self.valid_value is not None and self.valid_round < round_:
                self._propose(self.valid_value, self.valid_round)  # lines 15-16, 19
            else:
                self._out.append(RequestValue(self.height, round_))  # line 18: getValue()
        self._schedule(Step.PROPOSE)  # line 21 (the proposer too: see the module docstring)

    def _begin_height(self) -> None:
        """StartRound(0), unless this height waits for something to commit first (step
        WAIT, round 0, with the heartbeat scheduled): see the module docstring. Height 1
        never waits: a new chain's first block is made at once (as CometBFT's is), so a
        network shows it is up, and its first certificate exists, from the start."""
        if self.timeouts.empty_block_interval_ms <= 0 or self.height == 1:
            self._start_round(0)
            return
        self.round = 0
        self.step = Step.WAIT
        if 0 not in self._rounds:
            self._new_round_state(0)
        self.counters["idle_waits"] += 1
        self._schedule(Step.WAIT)

    def _end_wait(self, why: str) -> None:
        """Something to commit (``why`` "txs"), or the heartbeat: the waiting height
        starts round 0."""
        if self.step == Step.WAIT:
            self.counters[f"idle_started_by_{why}"] += 1
            self._start_round(0)

    def _on_timeout_propose(self) -> None:
        """Lines 57-60: OnTimeoutPropose — if step = propose, prevote nil."""
        if self.step == Step.PROPOSE:
            self._prevote(NIL)

    def _on_timeout_prevote(self) -> None:
        """Lines 61-64: OnTimeoutPrevote — if step = prevote, precommit nil."""
        if self.step == Step.PREVOTE:
            self._precommit(NIL)

    def _on_timeout_precommit(self) -> None:
        """Lines 65-67: OnTimeoutPrecommit — StartRound(round_p + 1) (unless decided)."""
        if self.step != Step.COMMIT:
            self._start_round(self.round + 1)

    # --- helpers --------------------------------------------------------------------------

    def _validity_of(self, p: Proposal) -> bool | None:
        """valid(v) as far as the layer has told us; asks it (once) if it has not."""
        v = p.block_hash
        valid = self._validity.get(v)
        if valid is None and v not in self._requested:
            self._requested.add(v)
            self._out.append(RequestValidation(self.height, p.round, v))
        return valid

    def _prevote(self, value: bytes) -> None:
        """broadcast ⟨PREVOTE, h_p, round_p, value⟩; step_p ← prevote."""
        self._cast(PREVOTE, value)
        self.step = Step.PREVOTE

    def _precommit(self, value: bytes, polka: Sequence[Vote] = ()) -> None:
        """broadcast ⟨PRECOMMIT, h_p, round_p, value⟩; step_p ← precommit."""
        self._cast(PRECOMMIT, value, polka)
        self.step = Step.PRECOMMIT

    def _cast(self, vote_type: VoteType, value: bytes, polka: Sequence[Vote] = ()) -> None:
        """broadcast ⟨vote_type, h_p, round_p, value⟩ — if our signer agrees to sign it.
        A precommit for a block hands the signer its polka to keep with the lock."""
        vote = self._broadcast_signed(
            lambda signer: signer.sign_vote(vote_type, self.height, self.round, value, polka)
        )
        if vote is None:
            return
        rs = self._rounds[self.round]
        tally = rs.prevotes if vote_type == PREVOTE else rs.precommits
        if vote.validator in tally.votes:
            return  # our own vote from before a restart, already back through gossip
        if tally.add(vote, self._my_power) & CROSSED_VALUE and vote_type == PRECOMMIT:
            self._commit_candidates.append((self.round, value))

    def _propose(self, value: bytes, valid_round: int) -> None:
        """broadcast ⟨PROPOSAL, h_p, round_p, value, valid_round⟩ (line 19)."""
        p = self._broadcast_signed(
            lambda signer: signer.sign_proposal(self.height, self.round, value, valid_round)
        )
        if p is None:
            return
        rs = self._rounds[self.round]
        if value not in rs.proposals:
            rs.proposals[value] = p
            if rs.proposal is None:
                rs.proposal = p

    def _broadcast_signed(self, sign: Callable[[Signer], M]) -> M | None:
        """Broadcast what ``sign`` has our signer sign. None when we do not sign (observer,
        no voting power) or the signer refused (it already signed something else there)."""
        if self._signer is None or not self._my_power:
            return None
        try:
            message = sign(self._signer)
        except DoubleSignRefused as err:
            self.counters[err.code] += 1
            self._out.append(SignRefused(err))
            return None
        self._out.append(Broadcast(message))
        return message

    def _schedule(self, step: Step) -> None:
        self._out.append(
            ScheduleTimeout(self.height, self.round, step, self.timeouts.duration(step, self.round))
        )

    def _is_proposer(self, round_: int) -> bool:
        return self._me is not None and self._validators.proposer(self.height, round_) == self._me

    def _new_round_state(self, round_: int) -> RoundState:
        rs = self._rounds[round_] = RoundState(round_, self._quorum)
        return rs

    def _reset_height(self, height: int) -> None:
        """h_p ← ``height`` with no decision, no lock, no valid value and an empty message
        log (lines 1-9 at the start, lines 52-54 on entering the next height)."""
        self.height = height
        self.decision = None
        self.locked_value = None
        self.locked_round = NIL_ROUND
        self.valid_value = None
        self.valid_round = NIL_ROUND
        self._rounds: dict[int, RoundState] = {}
        self._validity: dict[bytes, bool] = {}
        self._requested: set[bytes] = set()
        self._commit_candidates: list[tuple[int, bytes]] = []
        self._far: dict[bytes, int] = {}
        self._skip_round = -1

    def _set_validators(self, validators: ValidatorSet) -> None:
        self._validators = validators
        self._power = {v.public_key: v.power for v in validators.validators}
        self._quorum = validators.quorum_power
        self._skip_power = validators.skip_power
        self._my_power = self._power.get(self._me, 0) if self._me is not None else 0
