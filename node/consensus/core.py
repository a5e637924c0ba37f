"""The Tendermint consensus core as a sans-IO state machine: the public class.

:class:`ConsensusCore` owns one validator's view of one height at a time. It is fed
events (``node.consensus.events``) and returns effects (``node.consensus.effects``);
it never reads a clock, draws a random number, touches a socket or a disk (the
signer's durable state is the signer's business). Values are 32-byte block hashes;
the execution layer owns blocks and answers getValue() and valid(v) with events.

This module does the *admission* of messages — chain, height window, validator
set, proposer, signature (through a cacheable :class:`Verifier`), duplicates and
equivocation — and the next-height buffer, which takes only messages whose signature
checked out, at most ``max_buffered_per_sender`` per validator and height (so forged
votes cannot take the room of the real proposal);
``node.consensus.rules`` holds the paper's rules. Memory stays bounded (``Limits``):
messages for rounds beyond round_p + future_rounds are not stored, only each sender's
highest such round is,
and the round skip (lines 55-56) also fires when validators with f+1 power have
sent messages at rounds ≥ R > round_p — it then starts R, the highest such round.
A restarted core resumes at the round its signer last signed in, re-locks on the
value its signer last precommitted at this height (the lock is durable), and takes
back into its log everything its signer signed at this height, for gossip.
"""

from __future__ import annotations

from ledger.ids import NIL_ROUND
from ledger.validators import ValidatorSet
from ledger.votes import Proposal, Vote, VoteType
from node.consensus.effects import Effect, EvidenceFound, Rejected, SyncNeeded
from node.consensus.errors import (
    BufferFull,
    HeightOutOfWindow,
    MessageRejected,
    NotProposer,
    StaleMessage,
    UnknownValidator,
    WrongChain,
)
from node.consensus.events import (
    BlockCommitted,
    Event,
    MessageReceived,
    TimeoutFired,
    TxsAvailable,
    ValidationResult,
    ValueReady,
)
from node.consensus.evidence import (
    ConflictingProposalEvidence,
    DuplicateVoteEvidence,
    Evidence,
    EvidencePool,
)
from node.consensus.rules import RoundMachine
from node.consensus.signer import Signer
from node.consensus.tally import CROSSED_VALUE, RoundState, VoteTally
from node.consensus.timeouts import TimeoutConfig
from node.consensus.types import ConsensusMessage, Limits, Step
from node.consensus.verifier import Verifier

PREVOTE = VoteType.PREVOTE


class _Call:
    """``with core._call as out``: one call into the core. Refuses a re-entrant call or
    one before ``start()``; the call's effects collect in ``out``; the core is free
    again however the call ends."""

    __slots__ = ("_core",)

    def __init__(self, core: ConsensusCore) -> None:
        self._core = core

    def __enter__(self) -> list[Effect]:
        core = self._core
        if core._busy:
            raise RuntimeError("the core was called re-entrantly or before start()")
        core._busy = True
        out: list[Effect] = []
        core._out = out
        return out

    def __exit__(self, *exc: object) -> None:
        self._core._busy = False


class ConsensusCore(RoundMachine):
    """One validator's (or observer's, without a signer) Tendermint state machine.

    Call :meth:`start` once, then feed events with :meth:`handle` or the ``on_*``
    methods, one call at a time; each returns the effects to carry out, in order.
    """

    def __init__(
        self,
        *,
        chain_id: str,
        validators: ValidatorSet,
        height: int = 1,
        signer: Signer | None = None,
        verifier: Verifier | None = None,
        timeouts: TimeoutConfig | None = None,
        limits: Limits | None = None,
        evidence: EvidencePool | None = None,
        upcoming: ValidatorSet | None = None,
    ) -> None:
        if signer is not None and signer.chain_id != chain_id:
            raise ValueError("the signer is for another chain")
        if verifier is not None and verifier.chain_id != chain_id:
            raise ValueError("the verifier is for another chain")
        if height < 1:
            raise ValueError("heights start at 1")
        self.chain_id = chain_id
        self.verifier = verifier if verifier is not None else Verifier(chain_id)
        self._owns_verifier = verifier is None  # a shared one serves cores at other heights
        self.limits = limits or Limits()
        self.evidence = evidence if evidence is not None else EvidencePool()
        super().__init__(
            validators=validators,
            height=height,
            signer=signer,
            timeouts=timeouts or TimeoutConfig(),
        )
        # the set of the next height, as far as known: its members' messages may be buffered
        self._upcoming = upcoming if upcoming is not None else validators
        self._buffer: dict[int, list[ConsensusMessage]] = {}  # verified next-height messages
        self._buffered: set[ConsensusMessage] = set()
        self._buffered_from: dict[tuple[int, bytes], int] = {}  # (height, sender) -> count
        self._behind_hint = height
        self._started = False
        self._busy = True  # until start(): calls before it are a caller bug
        self._call = _Call(self)

    # --- public API -----------------------------------------------------------------------

    def start(self) -> list[Effect]:
        """Line 10: upon start do StartRound(0) — after a restart, the signer's round."""
        if self._started:
            raise RuntimeError("start() is called once")
        self._started = True
        out: list[Effect] = []
        self._out = out
        lock = self._signer.lock(self.height) if self._signer is not None else None
        if lock is not None:  # a restart: the lock is durable (see node.consensus.signer)
            self.locked_round = self.valid_round = lock.round
            self.locked_value = self.valid_value = lock.block_hash
        resume = self._signer.last_round(self.height) if self._signer is not None else None
        if resume is None:
            self._begin_height()  # nothing signed at this height: it may wait (idle)
        else:
            self._start_round(resume)
        # Give gossip what we signed before the restart (it may never have left) and the
        # polka behind our lock (others may need it to accept the locked value again).
        restored: list[ConsensusMessage] = []
        if self._signer is not None:
            restored.extend(self._signer.signed_messages(self.height))
        restored.extend(lock.polka if lock is not None else ())
        for message in restored:
            self._admit(message, False)
        self._run()
        self._busy = False
        return out

    def handle(self, event: Event) -> list[Effect]:
        """Dispatch any event to its ``on_*`` method."""
        if isinstance(event, MessageReceived):
            return self.on_message(event.message, chain_id=event.chain_id, verified=event.verified)
        if isinstance(event, TimeoutFired):
            return self.on_timeout(event.height, event.round, event.step)
        if isinstance(event, ValueReady):
            return self.on_value_ready(event.height, event.round, event.block_hash)
        if isinstance(event, ValidationResult):
            return self.on_validation_result(event.height, event.block_hash, event.valid)
        if isinstance(event, BlockCommitted):
            return self.on_block_committed(event.height, event.next_validators, event.upcoming)
        if isinstance(event, TxsAvailable):
            return self.on_txs_available(event.height)
        raise TypeError(f"not a consensus event: {event!r}")

    def on_message(
        self, message: ConsensusMessage, *, chain_id: str | None = None, verified: bool = False
    ) -> list[Effect]:
        """A proposal or vote arrived; bad ones are counted and reported, never raised."""
        with self._call as out:
            if chain_id is not None and chain_id != self.chain_id:
                wrong = WrongChain(f"message for chain {chain_id!r}, this is {self.chain_id!r}")
                self._reject(message, wrong)
            else:
                self._admit(message, verified)
        return out

    def on_vote(self, vote: Vote, *, verified: bool = False) -> list[Effect]:
        """The hot path: one prevote or precommit."""
        with self._call as out:
            try:
                self._receive_vote(vote, verified)
            except MessageRejected as err:
                self._reject(vote, err)
        return out

    def on_proposal(self, proposal: Proposal, *, verified: bool = False) -> list[Effect]:
        return self.on_message(proposal, verified=verified)

    def on_timeout(self, height: int, round_: int, step: Step) -> list[Effect]:
        with self._call as out:
            if height != self.height or round_ != self.round:
                self.counters["stale_timeout"] += 1
            elif step == Step.WAIT:
                self._end_wait("heartbeat")
            elif step == Step.PROPOSE:
                self._on_timeout_propose()
            elif step == Step.PREVOTE:
                self._on_timeout_prevote()
            elif step == Step.PRECOMMIT:
                self._on_timeout_precommit()
            self._run()
        return out

    def on_txs_available(self, height: int) -> list[Effect]:
        """The layer has something to commit: a height waiting for it starts round 0."""
        with self._call as out:
            if height == self.height and self.step == Step.WAIT:
                self._end_wait("txs")
                self._run()
        return out

    @property
    def waiting(self) -> bool:
        """Whether this height waits for something to commit before its round 0."""
        return self.step == Step.WAIT

    def on_value_ready(self, height: int, round_: int, block_hash: bytes) -> list[Effect]:
        """The answer to ``RequestValue``: propose it (line 19) if still useful."""
        with self._call as out:
            rs = self._rounds.get(self.round)
            if (
                (height, round_) != (self.height, self.round)
                or self.step != Step.PROPOSE
                or not self._is_proposer(round_)
                or self.valid_value is not None
                or rs is None
                or rs.proposal is not None
            ):
                self.counters["late_value"] += 1
            else:
                self._validity[block_hash] = True  # our own block
                self._propose(block_hash, NIL_ROUND)
                self._run()
        return out

    def on_validation_result(self, height: int, block_hash: bytes, valid: bool) -> list[Effect]:
        """The answer to ``RequestValidation``: the paper's valid(v)."""
        with self._call as out:
            if height != self.height or block_hash in self._validity:
                self.counters["late_validation"] += 1
            else:
                self._validity[block_hash] = bool(valid)
                self._run()
        return out

    def on_block_committed(
        self,
        height: int,
        next_validators: ValidatorSet | None = None,
        upcoming: ValidatorSet | None = None,
    ) -> list[Effect]:
        """The layer committed ``height`` (our decision or a synced block): lines 52-54.
        From height + 1 on, only ``next_validators`` vote (a removed validator's messages
        are refused as from a non-validator, an added one's counted)."""
        with self._call as out:
            if height < self.height:
                self.counters["stale_commit"] += 1
            else:
                if next_validators is not None:
                    self._set_validators(next_validators)
                self._upcoming = self._validators if upcoming is None else upcoming
                self._enter_height(height + 1)
                self._run()
        return out

    # --- accessors ------------------------------------------------------------------------

    @property
    def validators(self) -> ValidatorSet:
        return self._validators

    @property
    def public_key(self) -> bytes | None:
        return self._me

    def known_messages(self) -> list[ConsensusMessage]:
        """Every proposal and vote held for the current height (for gossip)."""
        out: list[ConsensusMessage] = []
        for rs in self._rounds.values():
            out.extend(rs.messages())
        return out

    def holds(self, message: ConsensusMessage) -> bool:
        """Whether ``message`` is now part of this height's state, so that a copy of it
        can be dropped unseen. False for a vote or proposal of this height the core set
        aside (an equivocator's vote for a value whose proposal has not arrived yet, one
        over the per-round bounds), and for a next-height message not in the buffer (no
        room for it, or a bad signature): the copy peers re-send must be looked at again."""
        if message.height < self.height:
            return True  # stale: a copy changes nothing
        if message.height > self.height:
            # Beyond the buffered window only a hint that we are behind: a copy adds nothing.
            return (
                message in self._buffered
                or message.height > self.height + self.limits.future_heights
            )
        rs = self._rounds.get(message.round)
        if rs is None:
            return False
        if isinstance(message, Proposal):
            return rs.proposals.get(message.block_hash) == message
        tally = rs.prevotes if message.type == PREVOTE else rs.precommits
        return tally.votes.get(message.validator) == message or (
            tally.conflicting.get((message.validator, message.block_hash)) == message
        )

    def buffered(self, message: ConsensusMessage) -> bool:
        """Whether ``message`` waits in the next-height buffer."""
        return message in self._buffered

    def round_state(self, round_: int) -> RoundState | None:
        return self._rounds.get(round_)

    def describe(self) -> str:
        locked = self.locked_value.hex()[:8] if self.locked_value else "-"
        valid = self.valid_value.hex()[:8] if self.valid_value else "-"
        return (
            f"h={self.height} r={self.round} {self.step.name.lower()} "
            f"locked={locked}@{self.locked_round} valid={valid}@{self.valid_round}"
        )

    # --- receiving ------------------------------------------------------------------------

    def _receive_vote(self, vote: Vote, verified: bool) -> None:
        if vote.height != self.height:
            self._other_height(vote, vote.validator, verified)
            return
        power = self._power_of(vote.validator, "vote")
        if not verified:
            self.verifier.verify(vote)
        r = vote.round
        if r > self.round + self.limits.future_rounds:
            self._far_round(vote.validator, r)
            return
        rs = self._rounds.get(r) or self._new_round_state(r)
        tally = rs.prevotes if vote.type == PREVOTE else rs.precommits
        known = tally.votes.get(vote.validator)
        if known is None:
            crossed = tally.add(vote, power)
        elif known.block_hash == vote.block_hash or (
            (vote.validator, vote.block_hash) in tally.conflicting
        ):
            self.counters["duplicate"] += 1
            return
        else:
            self._equivocation(DuplicateVoteEvidence.of(known, vote))
            if not self._keep_conflicting(rs, tally, vote):
                return
            crossed = tally.add_conflicting(vote, power)
        if crossed & CROSSED_VALUE and tally is rs.precommits:
            self._commit_candidates.append((r, vote.block_hash))
        if self._counts_ahead(r) and self._note_sender(rs, vote.validator, power):
            crossed = 1
        if crossed:
            self._run()

    def _receive_proposal(self, p: Proposal, verified: bool) -> None:
        if p.height != self.height:
            self._other_height(p, p.proposer, verified)
            return
        power = self._power_of(p.proposer, "proposal")
        if p.proposer != self._validators.proposer(p.height, p.round):
            raise NotProposer(f"{p.proposer.hex()[:16]}… is not proposer of round {p.round}")
        if not verified:
            self.verifier.verify(p)
        self.counters["proposals"] += 1
        r = p.round
        if r > self.round + self.limits.future_rounds:
            self._far_round(p.proposer, r)
            return
        rs = self._rounds.get(r) or self._new_round_state(r)
        known = rs.proposals.get(p.block_hash)
        if known is not None:
            if known.valid_round == p.valid_round:  # the same proposal (signed again)
                self.counters["duplicate"] += 1
            else:
                self._equivocation(ConflictingProposalEvidence.of(known, p))
            return
        if rs.proposal is None:
            rs.proposal = p
        else:
            self._equivocation(ConflictingProposalEvidence.of(rs.proposal, p))
            if len(rs.proposals) >= self.limits.max_proposals_per_round:
                return
        rs.proposals[p.block_hash] = p
        self._validity_of(p)  # ask the layer now; the answer may take a while
        if self._counts_ahead(r):
            self._note_sender(rs, p.proposer, power)
        self._run()

    def _keep_conflicting(self, rs: RoundState, tally: VoteTally, vote: Vote) -> bool:
        """Whether to count an equivocator's further vote (see ``tally``): only for nil or a
        value proposed in that round, and only a few per validator — memory stays bounded,
        and gossip offers a dropped one again once its proposal is here."""
        if vote.block_hash and vote.block_hash not in rs.proposals:
            self.counters["conflicting_dropped"] += 1
            return False
        return tally.conflicting_count(vote.validator) < self.limits.max_proposals_per_round

    def _power_of(self, sender: bytes, what: str) -> int:
        """The voting power of ``sender`` at this height; UnknownValidator if it has none."""
        power = self._power.get(sender)
        if power is None:
            raise UnknownValidator(f"{what} from non-validator {sender.hex()[:16]}…")
        return power

    def _other_height(self, message: ConsensusMessage, sender: bytes, verified: bool) -> None:
        """Older heights are ignored; h+1 .. h+future_heights are buffered once their
        signature checks out, within a quota per sender and height (and a total bound)."""
        height = message.height
        if height < self.height:
            raise StaleMessage(f"message for height {height}; we are at {self.height}")
        if sender not in self._upcoming:  # re-checked against its height's set on replay
            self._power_of(sender, "message")
        if height > self.height + self.limits.future_heights:
            self._hint_behind(message, verified)
            raise HeightOutOfWindow(f"message for height {height}; we are at {self.height}")
        if message in self._buffered:
            self.counters["duplicate"] += 1
            return
        if not verified:
            self.verifier.verify(message)  # a forged message takes no room (and is blamed)
        slot = (height, sender)
        held = self._buffered_from.get(slot, 0)
        if held >= self.limits.max_buffered_per_sender:
            raise BufferFull(
                f"{held} messages of {sender.hex()[:16]}… already buffered for height {height}"
            )
        if len(self._buffered) >= self.limits.max_buffered:
            raise BufferFull(f"{len(self._buffered)} next-height messages already buffered")
        self._buffer.setdefault(height, []).append(message)
        self._buffered.add(message)
        self._buffered_from[slot] = held + 1
        self.counters["buffered"] += 1
        self._hint_behind(message, True)

    def _hint_behind(self, message: ConsensusMessage, verified: bool) -> None:
        if message.height > self._behind_hint and (verified or self.verifier.is_valid(message)):
            self._behind_hint = message.height
            self._out.append(SyncNeeded(message.height))

    def _counts_ahead(self, round_: int) -> bool:
        """Whether a message at ``round_`` counts towards lines 55-56: a round ahead of
        ours, or round 0 itself while we wait before starting it (rules.py)."""
        return round_ > self.round or self.step == Step.WAIT

    def _note_sender(self, rs: RoundState, sender: bytes, power: int) -> bool:
        """Lines 55-56 bookkeeping: power of distinct senders in a round ahead of ours."""
        if sender in rs.senders:
            return False
        rs.senders.add(sender)
        rs.sender_power += power
        if rs.sender_power >= self._skip_power and rs.round > self._skip_round:
            self._skip_round = rs.round
            return True
        return False

    def _far_round(self, sender: bytes, round_: int) -> None:
        """A message beyond the stored round window: remember only the sender's round."""
        self.counters["far_round"] += 1
        if round_ <= self._far.get(sender, -1):
            return
        self._far[sender] = round_
        power = 0
        for r, p in sorted(((r, self._power[v]) for v, r in self._far.items()), reverse=True):
            power += p
            if power >= self._skip_power:
                if r > self._skip_round:
                    self._skip_round = r
                    self._run()
                return

    def _admit(self, message: ConsensusMessage, verified: bool) -> None:
        """Take in a proposal or vote; one the core will not use is counted and reported."""
        try:
            if isinstance(message, Vote):
                self._receive_vote(message, verified)
            else:
                self._receive_proposal(message, verified)
        except MessageRejected as err:
            self._reject(message, err)

    def _reject(self, message: ConsensusMessage, err: MessageRejected) -> None:
        self.counters[err.code] += 1
        self._out.append(Rejected(message, err.as_answer()))

    def _equivocation(self, evidence: Evidence) -> None:
        self.counters["equivocation"] += 1
        if self.evidence.add(evidence):
            self._out.append(EvidenceFound(evidence))

    def _enter_height(self, height: int) -> None:
        """Lines 52-54: h_p ← h_p + 1, reset locks and the message log, StartRound(0);
        then replay what was buffered for the new height."""
        self._reset_height(height)
        if self._owns_verifier:
            self.verifier.forget_below(height)
        self._behind_hint = max(self._behind_hint, height)
        for h in [h for h in self._buffer if h < height]:
            for message in self._buffer.pop(h):
                self._buffered.discard(message)
        for slot in [s for s in self._buffered_from if s[0] <= height]:
            del self._buffered_from[slot]
        self._begin_height()
        for message in self._buffer.pop(height, []):
            self._buffered.discard(message)
            self._admit(message, True)
