"""The consensus core, one paper rule at a time, driven directly by events.

Validators v0..v3 have power 1 (f = 1, 2f+1 = 3); the proposer of height 1 is v1
in round 0, v2 in round 1, v3 in round 2, v0 in round 3. The core under test is
v0 unless a test says otherwise.
"""

from __future__ import annotations

import pytest

from ledger.crypto import PrivateKey
from ledger.votes import NIL, Proposal, Vote
from node.consensus import (
    Broadcast,
    Commit,
    ConsensusCore,
    Limits,
    Rejected,
    RequestValidation,
    RequestValue,
    ScheduleTimeout,
    Signer,
    Step,
)
from node.consensus.events import (
    BlockCommitted,
    MessageReceived,
    TimeoutFired,
    ValidationResult,
    ValueReady,
)
from tests.sim.fixtures import CHAIN_ID, KEYS, index_of, validator_set
from tests.unit.node.consensus.core_kit import PRECOMMIT, PREVOTE, TIMEOUTS, A, B, Harness, of, sent

# --- the happy path and the commit certificate ---------------------------------------------


def test_start_schedules_propose_timeout_and_non_proposer_waits() -> None:
    h = Harness()
    assert of(h.start_effects, ScheduleTimeout) == [ScheduleTimeout(1, 0, Step.PROPOSE, 1000)]
    assert not of(h.start_effects, RequestValue)
    assert (h.core.height, h.core.round, h.core.step) == (1, 0, Step.PROPOSE)


def test_proposal_prevote_precommit_commit_with_certificate() -> None:
    h = Harness()
    out = h.core.on_proposal(h.proposal(0, A))
    assert of(out, RequestValidation) == [RequestValidation(1, 0, A)]
    assert not sent(out)  # waits for valid(v)
    out = h.core.on_validation_result(1, A, True)
    assert [(m.type, m.block_hash) for m in sent(out)] == [(PREVOTE, A)]  # line 24
    out = h.votes([1, 2], PREVOTE, 0, A)
    assert [(m.type, m.block_hash) for m in sent(out)] == [(PRECOMMIT, A)]  # line 40
    assert (h.core.locked_value, h.core.locked_round) == (A, 0)
    assert (h.core.valid_value, h.core.valid_round) == (A, 0)
    out = h.votes([1, 2], PRECOMMIT, 0, A)
    [commit] = of(out, Commit)
    assert (commit.height, commit.round, commit.block_hash) == (1, 0, A)
    commit.certificate.verify(h.validators, CHAIN_ID, height=1, block_hash=A)
    assert len(commit.certificate.signatures) == 3
    assert h.core.step == Step.COMMIT and h.core.decision == A
    # nothing more happens until the layer says the block is committed (lines 52-54)
    assert h.core.on_vote(h.vote(3, PRECOMMIT, 0, A)) == []
    out = h.core.on_block_committed(1)
    assert (h.core.height, h.core.round, h.core.step) == (2, 0, Step.PROPOSE)
    assert h.core.locked_value is None and h.core.locked_round == -1
    assert h.core.valid_value is None and h.core.valid_round == -1
    assert of(out, ScheduleTimeout) == [ScheduleTimeout(2, 0, Step.PROPOSE, 1000)]


def test_synchronous_and_pre_given_validation_answers() -> None:
    h = Harness()
    h.core.on_validation_result(1, A, True)  # the layer may know before it is asked
    out = h.core.on_proposal(h.proposal(0, A))
    assert not of(out, RequestValidation)
    assert [(m.type, m.block_hash) for m in sent(out)] == [(PREVOTE, A)]


def test_handle_dispatches_every_event_type() -> None:
    h = Harness(me=1)  # v1 proposes round 0
    [request] = of(h.start_effects, RequestValue)
    out = h.core.handle(ValueReady(request.height, request.round, A))
    assert [type(m).__name__ for m in sent(out)] == ["Proposal", "Vote"]
    h.core.handle(MessageReceived(h.vote(2, PREVOTE, 0, A), chain_id=CHAIN_ID))
    out = h.core.handle(MessageReceived(h.vote(3, PREVOTE, 0, A), verified=True))
    assert [m.type for m in sent(out)] == [PRECOMMIT]
    h.core.handle(ValidationResult(1, B, False))
    h.core.handle(TimeoutFired(1, 0, Step.PRECOMMIT))
    assert h.core.round == 1
    h.core.handle(BlockCommitted(1))
    assert h.core.height == 2
    with pytest.raises(TypeError):
        h.core.handle("not an event")  # type: ignore[arg-type]


# --- proposer, getValue, validValue --------------------------------------------------------


def test_proposer_requests_value_and_proposes_it() -> None:
    h = Harness(me=1)
    assert of(h.start_effects, RequestValue) == [RequestValue(1, 0)]
    out = h.core.on_value_ready(1, 0, A)
    p, v = sent(out)
    assert isinstance(p, Proposal) and (p.block_hash, p.valid_round) == (A, -1)
    assert isinstance(v, Vote) and (v.type, v.block_hash) == (PREVOTE, A)  # own proposal is valid


def test_late_value_is_ignored() -> None:
    h = Harness(me=1)
    h.core.on_timeout(1, 0, Step.PROPOSE)  # gave up waiting: prevote nil
    assert h.core.on_value_ready(1, 0, A) == []
    assert h.core.counters["late_value"] == 1


def test_proposer_rotation_is_weighted_by_power() -> None:
    h = Harness(powers=[3, 1, 1, 1])
    proposers = [index_of(h.validators, h.validators.proposer(1, r)) for r in range(6)]
    assert proposers.count(0) == 3  # v0 holds half the power: every other round
    requested = [0] if of(h.start_effects, RequestValue) else []
    for r in range(1, 6):
        if of(h.to_round(r), RequestValue):
            requested.append(r)
    assert requested == [r for r in range(6) if proposers[r] == 0]


def test_proposer_reproposes_valid_value_with_valid_round() -> None:
    """Lines 15-16: a proposer with a validValue proposes it, with validRound."""
    h = Harness()
    h.lock_on(A, 0)
    out = h.to_round(3)  # v0 proposes round 3
    proposals = [m for m in sent(out) if isinstance(m, Proposal)]
    assert [(p.round, p.block_hash, p.valid_round) for p in proposals] == [(3, A, 0)]


# --- locking (36), lock respected (22), unlock/relock via valid round (28) ------------------


def test_polka_in_the_current_round_relocks_a_locked_process() -> None:
    """Line 36 while step = prevote: a locked process that prevoted nil still locks on a
    polka it sees in its current round."""
    h = Harness()
    h.lock_on(A, 0)
    h.to_round(1)
    h.propose_valid(1, B)  # prevote nil: locked on A
    out = h.votes([1, 2, 3], PREVOTE, 1, B)
    assert [(m.type, m.block_hash) for m in sent(out)] == [(PRECOMMIT, B)]
    assert (h.core.locked_value, h.core.locked_round) == (B, 1)


def test_locked_process_prevotes_nil_for_another_value() -> None:
    h = Harness()
    h.lock_on(A, 0)
    h.to_round(1)
    out = h.propose_valid(1, B)
    assert [(m.type, m.block_hash) for m in sent(out)] == [(PREVOTE, NIL)]  # line 26
    # ... but prevotes its locked value when it is proposed again (line 23: lockedValue = v)
    h.to_round(2)
    out = h.propose_valid(2, A)
    assert [(m.type, m.block_hash) for m in sent(out)] == [(PREVOTE, A)]


def test_unlock_and_relock_through_a_later_valid_round() -> None:
    """Lines 28-33: lockedRound ≤ vr with a polka at vr lets a locked process prevote v'."""
    h = Harness()
    h.lock_on(A, 0)
    h.to_round(1)
    h.propose_valid(1, B)  # we prevote nil (locked) ...
    h.core.on_timeout(1, 1, Step.PREVOTE)  # ... and precommit nil
    h.votes([1, 2, 3], PREVOTE, 1, B)  # the others' polka for B in round 1 arrives late
    assert (h.core.locked_value, h.core.locked_round) == (A, 0)  # still locked on A
    assert (h.core.valid_value, h.core.valid_round) == (B, 1)  # lines 42-43
    h.to_round(2)
    out = h.propose_valid(2, B, vr=1)
    assert [(m.type, m.block_hash) for m in sent(out)] == [(PREVOTE, B)]  # line 30
    out = h.votes([1, 2], PREVOTE, 2, B)
    assert [(m.type, m.block_hash) for m in sent(out)] == [(PRECOMMIT, B)]
    assert (h.core.locked_value, h.core.locked_round) == (B, 2)  # relocked


def test_valid_round_proposal_without_polka_waits_then_times_out() -> None:
    h = Harness()
    h.lock_on(A, 0)
    h.to_round(1)
    out = h.propose_valid(1, B, vr=0)  # claims a polka for B in round 0 that we never saw
    assert not sent(out)
    out = h.core.on_timeout(1, 1, Step.PROPOSE)
    assert [(m.type, m.block_hash) for m in sent(out)] == [(PREVOTE, NIL)]  # lines 57-60


def test_valid_round_below_lock_keeps_the_lock() -> None:
    """Line 29: lockedRound > vr and v ≠ lockedValue → prevote nil (line 32)."""
    h = Harness()
    h.votes([1, 2, 3], PREVOTE, 0, B)  # a polka for B in round 0
    h.lock_on(A, 1)
    h.to_round(2)
    out = h.propose_valid(2, B, vr=0)
    assert [(m.type, m.block_hash) for m in sent(out)] == [(PREVOTE, NIL)]


def test_polka_seen_after_precommitting_nil_only_updates_valid_value() -> None:
    """Lines 36, 42-43 with step = precommit: validValue moves, the lock does not."""
    h = Harness()
    h.core.on_proposal(h.proposal(0, A))
    h.core.on_timeout(1, 0, Step.PROPOSE)  # still validating: prevote nil
    h.votes([1, 2, 3], PREVOTE, 0, NIL)  # precommit nil (line 44-46)
    assert h.core.step == Step.PRECOMMIT
    h.core.on_validation_result(1, A, True)
    assert h.core.valid_value is None
    h.core.on_vote(h.vote(1, PREVOTE, 0, A))  # v1 equivocated: counts for A too
    h.core.on_vote(h.vote(2, PREVOTE, 0, A))
    h.core.on_vote(h.vote(3, PREVOTE, 0, A))
    assert (h.core.valid_value, h.core.valid_round) == (A, 0)
    assert h.core.locked_value is None


# --- invalid proposals and valid(v) --------------------------------------------------------


def test_nil_prevote_on_invalid_proposal() -> None:
    h = Harness()
    h.core.on_proposal(h.proposal(0, A))
    out = h.core.on_validation_result(1, A, False)
    assert [(m.type, m.block_hash) for m in sent(out)] == [(PREVOTE, NIL)]


def test_no_lock_and_no_commit_on_an_invalid_value() -> None:
    h = Harness()
    h.core.on_proposal(h.proposal(0, A))
    h.core.on_validation_result(1, A, False)
    h.votes([1, 2, 3], PREVOTE, 0, A)
    assert h.core.locked_value is None
    out = h.votes([1, 2, 3], PRECOMMIT, 0, A)
    assert not of(out, Commit)


# --- timeouts ------------------------------------------------------------------------------


def test_timeouts_grow_with_the_round() -> None:
    h = Harness()
    durations = []
    for r in range(4):
        assert h.core.round == r
        out = h.core.on_timeout(1, r, Step.PROPOSE)  # lines 57-60
        assert [(m.type, m.block_hash) for m in sent(out)] == [(PREVOTE, NIL)]
        out = h.votes([1, 2], PREVOTE, r, NIL)
        # line 34 fires first (2f+1 any prevote), then 44 (2f+1 nil): precommit nil
        assert [(m.type, m.block_hash) for m in sent(out)] == [(PRECOMMIT, NIL)]
        # 2f+1 precommits, not all nil (all nil would start the next round at once)
        out = h.votes([1], PRECOMMIT, r, NIL) + h.votes([2], PRECOMMIT, r, A)
        [precommit_timeout] = of(out, ScheduleTimeout)  # line 47-48
        out = h.core.on_timeout(1, r, Step.PRECOMMIT)  # lines 65-67
        [propose_timeout] = of(out, ScheduleTimeout)
        durations.append((precommit_timeout.duration_ms, propose_timeout.duration_ms))
    assert durations == [(500, 1100), (550, 1200), (600, 1300), (650, 1400)]


def test_2f1_nil_precommits_start_the_next_round_at_once() -> None:
    """A deviation from line 47 (docs/consensus.md): with 2f+1 precommits for nil no
    value can be decided in the round, so the next starts without timeoutPrecommit; the
    timer's firing is then stale. With fewer nil among them the paper's wait stays."""
    h = Harness()
    h.core.on_timeout(1, 0, Step.PROPOSE)
    h.votes([1, 2], PREVOTE, 0, NIL)  # our precommit nil
    h.votes([1], PRECOMMIT, 0, NIL)  # two nil with ours: still round 0
    assert h.core.round == 0
    out = h.votes([2], PRECOMMIT, 0, NIL)  # three: 2f+1
    assert h.core.round == 1 and h.core.step == Step.PROPOSE
    assert ScheduleTimeout(1, 1, Step.PROPOSE, 1100) in of(out, ScheduleTimeout)
    assert h.core.on_timeout(1, 0, Step.PRECOMMIT) == []  # stale now
    assert h.core.round == 1


def test_nil_precommits_from_f_byzantine_plus_one_do_not_cut_the_wait() -> None:
    """2f+1 precommits of which only f+1 nil: a value could still gather 2f+1 in the
    round elsewhere (an equivocator), so the paper's timeoutPrecommit is waited out."""
    h = Harness(n=7)  # f = 2, 2f+1 = 5
    h.core.on_timeout(1, 0, Step.PROPOSE)
    h.votes([1, 2, 3, 4], PREVOTE, 0, NIL)  # 2f+1 nil prevotes with ours: precommit nil
    out = h.votes([1, 2], PRECOMMIT, 0, NIL) + h.votes([3, 4], PRECOMMIT, 0, A)
    assert h.core.round == 0
    assert [t.step for t in of(out, ScheduleTimeout)] == [Step.PRECOMMIT]


def test_prevote_timeout_scheduled_once_on_mixed_prevotes_then_precommit_nil() -> None:
    h = Harness()
    h.core.on_timeout(1, 0, Step.PROPOSE)
    out = h.core.on_vote(h.vote(1, PREVOTE, 0, A))
    out += h.core.on_vote(h.vote(2, PREVOTE, 0, B))
    assert of(out, ScheduleTimeout) == [ScheduleTimeout(1, 0, Step.PREVOTE, 500)]  # line 34-35
    assert of(h.core.on_vote(h.vote(3, PREVOTE, 0, A)), ScheduleTimeout) == []  # first time only
    out = h.core.on_timeout(1, 0, Step.PREVOTE)  # lines 61-64
    assert [(m.type, m.block_hash) for m in sent(out)] == [(PRECOMMIT, NIL)]
    assert h.core.step == Step.PRECOMMIT


def test_stale_timeouts_do_nothing() -> None:
    h = Harness()
    h.to_round(2)
    assert h.core.on_timeout(1, 0, Step.PRECOMMIT) == []
    assert h.core.on_timeout(1, 2, Step.PREVOTE) == []  # step is propose, not prevote
    assert h.core.round == 2 and h.core.counters["stale_timeout"] >= 1


# --- commit at another round (49) ----------------------------------------------------------


def test_commit_from_an_earlier_round() -> None:
    """Line 49 looks at any round r, not just round_p."""
    h = Harness()
    h.core.on_proposal(h.proposal(0, A))
    h.core.on_validation_result(1, A, True)
    h.to_round(2)
    out = h.votes([1, 2, 3], PRECOMMIT, 0, A)
    [commit] = of(out, Commit)
    assert (commit.round, commit.block_hash) == (0, A)


def test_commit_waits_for_the_proposal() -> None:
    h = Harness()
    assert not of(h.votes([1, 2, 3], PRECOMMIT, 0, A), Commit)
    out = h.core.on_proposal(h.proposal(0, A))
    assert not of(out, Commit)  # and for valid(v)
    [commit] = of(h.core.on_validation_result(1, A, True), Commit)
    assert commit.block_hash == A


# --- f+1 round skip (55) -------------------------------------------------------------------


def test_f_plus_one_messages_from_a_higher_round_skip_to_it() -> None:
    h = Harness()
    assert h.core.on_vote(h.vote(1, PREVOTE, 3, NIL)) == []  # f = 1 sender: not enough
    assert h.core.round == 0
    out = h.core.on_vote(h.vote(2, PRECOMMIT, 3, NIL))  # f+1 senders in round 3
    assert h.core.round == 3 and h.core.step == Step.PROPOSE
    assert ScheduleTimeout(1, 3, Step.PROPOSE, 1300) in out
    assert of(out, RequestValue) == [RequestValue(1, 3)]  # v0 proposes round 3


def test_same_sender_twice_does_not_skip() -> None:
    h = Harness()
    h.core.on_vote(h.vote(1, PREVOTE, 2, NIL))
    h.core.on_vote(h.vote(1, PRECOMMIT, 2, NIL))
    assert h.core.round == 0


def test_skip_from_rounds_beyond_the_stored_window() -> None:
    h = Harness(limits=Limits(future_rounds=4))
    h.core.on_vote(h.vote(1, PREVOTE, 50, NIL))
    h.core.on_vote(h.vote(2, PREVOTE, 40, NIL))
    assert h.core.round == 40  # f+1 validators are at round >= 40
    assert h.core.round_state(50) is None  # nothing that far ahead is stored
    assert h.core.counters["far_round"] == 2


# --- restart, observers, validator changes, misuse -----------------------------------------


def test_restart_resumes_round_and_relocks_with_its_polka() -> None:
    h = Harness()
    h.lock_on(A, 0)
    h.to_round(2)
    h.core.on_timeout(1, 2, Step.PROPOSE)  # signs a nil prevote in round 2
    restarted = ConsensusCore(
        chain_id=CHAIN_ID, validators=h.validators, signer=h.signer, timeouts=TIMEOUTS
    )
    restarted.start()
    assert restarted.round == 2  # where the signer last signed
    assert (restarted.locked_value, restarted.locked_round) == (A, 0)
    assert (restarted.valid_value, restarted.valid_round) == (A, 0)
    rs = restarted.round_state(0)
    assert rs is not None and rs.prevotes.has_quorum(A)  # the polka, ready for gossip
    mine = {m for m in restarted.known_messages() if isinstance(m, Vote)}
    mine = {m for m in mine if m.validator == KEYS[0].public_key}
    assert {(m.round, m.type, m.block_hash) for m in mine} == {
        (0, PREVOTE, A),
        (0, PRECOMMIT, A),
        (1, PREVOTE, NIL),
        (1, PRECOMMIT, NIL),
        (2, PREVOTE, NIL),
    }  # everything it signed at the height is back, for gossip


def test_observer_without_signer_commits_but_never_sends() -> None:
    vs = validator_set(4)
    core = ConsensusCore(chain_id=CHAIN_ID, validators=vs, timeouts=TIMEOUTS)
    core.start()
    p = Proposal.create(KEYS[1], CHAIN_ID, 1, 0, A, -1)
    out = core.on_proposal(p) + core.on_validation_result(1, A, True)
    for i in (1, 2, 3):
        out += core.on_vote(Vote.create(KEYS[i], CHAIN_ID, PREVOTE, 1, 0, A))
    for i in (1, 2, 3):
        out += core.on_vote(Vote.create(KEYS[i], CHAIN_ID, PRECOMMIT, 1, 0, A))
    assert not sent(out) and len(of(out, Commit)) == 1


def test_new_validator_set_from_the_next_height() -> None:
    h = Harness()
    bigger = validator_set(7)
    h.core.on_block_committed(1, bigger)
    assert h.core.validators is bigger and h.core.height == 2
    v6 = Vote.create(KEYS[6], CHAIN_ID, PREVOTE, 2, 0, NIL)
    assert not of(h.core.on_vote(v6), Rejected)


def test_calls_before_start_or_reentrant_are_refused() -> None:
    core = ConsensusCore(chain_id=CHAIN_ID, validators=validator_set(4))
    with pytest.raises(RuntimeError):
        core.on_timeout(1, 0, Step.PROPOSE)
    core.start()
    with pytest.raises(RuntimeError):
        core.start()
    with pytest.raises(ValueError):
        ConsensusCore(
            chain_id=CHAIN_ID,
            validators=validator_set(4),
            signer=Signer(PrivateKey.from_label("x"), "other-chain"),
        )


def test_restart_in_the_round_of_the_lock_as_its_proposer() -> None:
    """validRound = round_p after such a restart: no invalid proposal, nothing re-signed."""
    h = Harness()
    h.to_round(3)  # v0 proposes round 3
    h.core.on_value_ready(1, 3, A)
    h.votes([1, 2], PREVOTE, 3, A)
    assert (h.core.locked_value, h.core.locked_round) == (A, 3)
    restarted = ConsensusCore(
        chain_id=CHAIN_ID, validators=h.validators, signer=h.signer, timeouts=TIMEOUTS
    )
    out = restarted.start()
    assert restarted.round == 3 and restarted.locked_round == 3
    assert of(out, RequestValue) == [RequestValue(1, 3)]
    rs = restarted.round_state(3)  # our proposal of A is back from the signer ...
    assert rs is not None and rs.proposal is not None and rs.proposal.block_hash == A
    assert of(restarted.on_value_ready(1, 3, B), Broadcast) == []  # ... so B is not proposed
    assert restarted.counters["late_value"] == 1
