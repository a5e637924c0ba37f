"""The consensus core's admission of messages — rejected, counted, never raised; the
bounded next-height buffer; pre-verified messages and duplicates — and equivocation
turned into evidence. Validators, proposers and the core under test: see :class:`Harness`.
"""

from __future__ import annotations

import hashlib

from ledger.votes import NIL, Proposal, Vote
from node.consensus import (
    EvidenceFound,
    Limits,
    Rejected,
    RequestValidation,
    SyncNeeded,
    Verifier,
)
from tests.sim.fixtures import CHAIN_ID, KEYS, OUTSIDER
from tests.unit.garbage_kit import cyclic_garbage
from tests.unit.node.consensus.core_kit import PRECOMMIT, PREVOTE, A, B, Harness, of

# --- admission: rejected, counted, never raised -------------------------------------------


def test_bad_messages_are_rejected_with_typed_errors_and_counted() -> None:
    h = Harness()
    stranger = Vote.create(OUTSIDER, CHAIN_ID, PREVOTE, 1, 0, A)
    forged = Vote(PREVOTE, 1, 0, B, KEYS[1].public_key, h.vote(1, PREVOTE, 0, A).signature)
    other_chain = Vote.create(KEYS[2], "other-chain", PREVOTE, 1, 0, A)
    not_proposer = Proposal.create(KEYS[3], CHAIN_ID, 1, 0, A, -1)
    too_high = h.vote(1, PREVOTE, 0, A, height=5)
    cases = [
        (h.core.on_message(stranger), "unknown_validator", True),
        (h.core.on_message(forged), "bad_signature", True),
        (h.core.on_message(other_chain), "bad_signature", True),
        (h.core.on_message(h.vote(1, PREVOTE, 0, A), chain_id="x"), "wrong_chain", True),
        (h.core.on_message(not_proposer), "not_proposer", True),
        (h.core.on_message(too_high), "height_out_of_window", False),
    ]
    for effects, code, misbehaviour in cases:
        [rejected] = of(effects, Rejected)
        assert rejected.error.code == code
        assert rejected.error.misbehaviour is misbehaviour
        assert h.core.counters[code] >= 1
    assert h.core.round_state(0) is not None
    assert h.core.round_state(0).prevotes.total == 0  # type: ignore[union-attr]
    h.core.on_block_committed(1)
    [rejected] = of(h.core.on_message(h.vote(1, PREVOTE, 0, A, height=1)), Rejected)
    assert rejected.error.code == "stale_height"


def test_next_height_buffer_is_bounded_and_replayed() -> None:
    h = Harness(limits=Limits(max_buffered=2))
    out = h.core.on_vote(h.vote(1, PREVOTE, 0, A, height=2))
    assert of(out, SyncNeeded) == [SyncNeeded(2)]
    assert of(h.core.on_vote(h.vote(2, PREVOTE, 0, A, height=2)), SyncNeeded) == []  # once
    [rejected] = of(h.core.on_vote(h.vote(3, PREVOTE, 0, A, height=2)), Rejected)
    assert rejected.error.code == "buffer_full"
    h.core.on_block_committed(1)
    rs = h.core.round_state(0)
    assert rs is not None and rs.prevotes.total == 2  # replayed at height 2


def test_a_forged_next_height_message_is_refused_on_arrival_not_buffered() -> None:
    h = Harness()
    good = h.vote(1, PREVOTE, 0, A, height=2)
    forged = Vote(PREVOTE, 2, 0, B, good.validator, good.signature)
    [rejected] = of(h.core.on_vote(forged), Rejected)
    assert rejected.error.code == "bad_signature" and rejected.error.misbehaviour
    assert not h.core.buffered(forged) and not h.core.holds(forged)
    assert of(h.core.on_block_committed(1), Rejected) == []  # nothing left to refuse


def test_forged_next_height_votes_take_no_room_from_the_real_proposal() -> None:
    """10,000 forged votes for the next height (the default bound of the buffer) do not
    fill it: the real proposal is not refused with buffer_full."""
    h = Harness()
    forged_signature = h.vote(1, PREVOTE, 0, A, height=2).signature
    refused = 0
    for i in range(10_000):
        sender = KEYS[1 + i % 3].public_key
        value = hashlib.sha256(i.to_bytes(4, "big")).digest()
        forged = Vote(PREVOTE, 2, i % 16, value, sender, forged_signature)
        refused += len(of(h.core.on_vote(forged), Rejected))
    assert refused == 10_000 and h.core.counters["bad_signature"] == 10_000
    assert len(h.core._buffered) == 0  # counted in items: nothing of them is held
    real = h.proposal(0, A, height=2)
    assert of(h.core.on_proposal(real), Rejected) == []
    assert h.core.buffered(real) and h.core.holds(real)
    out = h.core.on_block_committed(1)
    rs = h.core.round_state(0)
    assert rs is not None and rs.proposal == real  # replayed at height 2
    assert RequestValidation(2, 0, A) in out


def test_one_validator_cannot_take_the_buffer_from_the_others() -> None:
    """A byzantine validator signs as many next-height messages as it likes: it gets its
    quota per height, and the honest validators' messages still find room."""
    limits = Limits(max_buffered=200, max_buffered_per_sender=16)
    h = Harness(limits=limits)
    refused = []
    for i in range(1_000):
        value = hashlib.sha256(i.to_bytes(4, "big")).digest()
        vote = h.vote(3, PREVOTE if i % 2 else PRECOMMIT, i % 40, value, height=2)
        refused += [r.error for r in of(h.core.on_vote(vote), Rejected)]
    assert len(refused) == 1_000 - 16
    assert all(e.code == "buffer_full" and not e.misbehaviour for e in refused)
    assert len(h.core._buffered) == 16
    real = h.proposal(0, A, height=2)
    honest = [h.vote(i, PREVOTE, 0, A, height=2) for i in (1, 2)]
    for message in (real, *honest):
        assert of(h.core.on_message(message), Rejected) == []
        assert h.core.buffered(message)
    h.core.on_block_committed(1)
    rs = h.core.round_state(0)
    assert rs is not None and rs.proposal == real
    assert rs.prevotes.votes[KEYS[1].public_key] == honest[0]
    assert not h.core._buffered and not h.core._buffered_from  # all released


def test_a_message_refused_for_lack_of_room_is_not_held_and_is_taken_again() -> None:
    """A refused message must not count as held (the node would then drop its re-sends
    unseen): its next copy is taken once there is room."""
    h = Harness(limits=Limits(max_buffered=1))
    first, second = h.vote(1, PREVOTE, 0, A, height=2), h.vote(2, PREVOTE, 0, A, height=2)
    assert of(h.core.on_vote(first), Rejected) == []
    [rejected] = of(h.core.on_vote(second), Rejected)
    assert rejected.error.code == "buffer_full"
    assert h.core.holds(first) and not h.core.holds(second)
    h.core.on_block_committed(1)
    assert of(h.core.on_vote(second), Rejected) == []  # the re-send, at its own height
    assert h.core.holds(second)
    rs = h.core.round_state(0)
    assert rs is not None and rs.prevotes.total == 2


def test_pre_verified_messages_skip_the_verifier() -> None:
    verifier = Verifier(CHAIN_ID)
    h = Harness(verifier=verifier)
    vote = h.vote(1, PREVOTE, 0, A)
    h.core.on_vote(vote, verified=True)
    assert verifier.misses == 0 and verifier.hits == 0
    vote2 = h.vote(2, PREVOTE, 0, A)
    assert verifier.is_valid(vote2)  # checked off the hot path ...
    h.core.on_vote(vote2)  # ... is a cache hit in the core
    assert (verifier.misses, verifier.hits) == (1, 1)


def test_duplicates_are_counted_not_recounted() -> None:
    h = Harness()
    vote = h.vote(1, PREVOTE, 0, A)
    h.core.on_vote(vote)
    h.core.on_vote(vote)
    rs = h.core.round_state(0)
    assert rs is not None and rs.prevotes.total == 1
    assert h.core.counters["duplicate"] == 1


# --- equivocation --------------------------------------------------------------------------


def test_conflicting_votes_become_evidence_once() -> None:
    h = Harness()
    h.core.on_proposal(h.proposal(0, A))
    h.core.on_vote(h.vote(2, PREVOTE, 0, NIL))
    out = h.core.on_vote(h.vote(2, PREVOTE, 0, A))
    [found] = of(out, EvidenceFound)
    assert found.evidence.offender == KEYS[2].public_key
    found.evidence.verify(CHAIN_ID, h.validators)
    assert h.core.evidence.items() == [found.evidence]
    assert not of(h.core.on_vote(h.vote(2, PREVOTE, 0, A)), EvidenceFound)


def test_conflicting_proposals_become_evidence() -> None:
    h = Harness()
    h.core.on_proposal(h.proposal(0, A))
    [found] = of(h.core.on_proposal(h.proposal(0, B)), EvidenceFound)
    assert found.evidence.kind == "conflicting_proposal"
    rs = h.core.round_state(0)
    assert rs is not None and rs.proposal is not None and rs.proposal.block_hash == A
    assert set(rs.proposals) == {A, B}


def test_a_second_signature_over_the_same_proposal_is_a_duplicate_not_evidence() -> None:
    h = Harness()
    p = h.proposal(0, A)
    h.core.on_proposal(p)
    again = Proposal(p.height, p.round, p.block_hash, p.valid_round, p.proposer, bytes(64))
    out = h.core.on_proposal(again, verified=True)  # as if another signature verified
    assert not of(out, EvidenceFound) and h.core.counters["duplicate"] == 1
    assert h.core.evidence.items() == []


def test_conflicting_vote_for_an_unproposed_value_is_not_counted() -> None:
    h = Harness()
    h.core.on_vote(h.vote(2, PREVOTE, 0, NIL))
    h.core.on_vote(h.vote(2, PREVOTE, 0, B))  # no proposal for B in round 0
    rs = h.core.round_state(0)
    assert rs is not None and rs.prevotes.power.get(B, 0) == 0
    assert h.core.counters["conflicting_dropped"] == 1


def test_a_core_forgets_the_verdicts_of_heights_it_left_unless_its_verifier_is_shared() -> None:
    own = Harness()
    own.core.on_vote(own.vote(1, PREVOTE, 0, A))
    own.core.on_vote(own.vote(2, PREVOTE, 0, A, height=2))  # buffered for the next height
    assert len(own.core.verifier) == 2
    own.core.on_block_committed(1)
    assert len(own.core.verifier) == 1  # height 1's verdict gone; height 2's kept
    shared = Verifier(CHAIN_ID)
    h = Harness(verifier=shared)
    h.core.on_vote(h.vote(1, PREVOTE, 0, A))
    h.core.on_block_committed(1)
    assert len(shared) == 1  # other cores sharing it may still be at height 1


def test_a_rejected_message_is_freed_by_reference_counting() -> None:
    """Rejections are common (a stale vote each time a peer is a height behind): their
    error's traceback would hold the frames of the call that raised it, and so the
    effects list that holds the rejection — a cycle only the cyclic collector frees, with
    every frame's locals kept until it runs."""
    h = Harness()
    h.core.on_block_committed(1)
    with cyclic_garbage() as garbage:
        effects = h.core.on_message(h.vote(1, PREVOTE, 0, A, height=1))
        [rejected] = of(effects, Rejected)
        assert rejected.error.code == "stale_height" and rejected.error.__traceback__ is None
        del effects, rejected
        h.core.on_message(h.vote(1, PREVOTE, 0, A, height=1))  # the core's next call
    assert [o for o in garbage if isinstance(o, Rejected)] == []
