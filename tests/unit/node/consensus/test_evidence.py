"""Evidence of equivocation: construction rules, verification, encoding, the pool
(dedup, bound, storage under keys.EVIDENCE on memory and LevelDB)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger.encoding import encode
from ledger.errors import DecodeError
from ledger.storage import KVStore, MemoryStore, open_leveldb
from ledger.storage import keys as K
from ledger.votes import NIL, Proposal, Vote, VoteType
from node.consensus import (
    ConflictingProposalEvidence,
    DuplicateVoteEvidence,
    EvidenceError,
    EvidencePool,
)
from node.consensus.evidence import decode_evidence
from tests.sim.fixtures import CHAIN_ID, KEYS, OUTSIDER, index_of, validator_set
from tests.unit.node.consensus.core_kit import PRECOMMIT, PREVOTE, A, B

VALIDATORS = validator_set(4)


def vote(
    i: int, value: bytes, *, kind: VoteType = PREVOTE, height: int = 3, round_: int = 1
) -> Vote:
    return Vote.create(KEYS[i], CHAIN_ID, kind, height, round_, value)


def duplicate(i: int = 2, height: int = 3, round_: int = 1) -> DuplicateVoteEvidence:
    return DuplicateVoteEvidence.of(
        vote(i, A, height=height, round_=round_), vote(i, NIL, height=height, round_=round_)
    )


def proposals(height: int = 3, round_: int = 1) -> tuple[Proposal, Proposal]:
    key = KEYS[index_of(VALIDATORS, VALIDATORS.proposer(height, round_))]
    return (
        Proposal.create(key, CHAIN_ID, height, round_, A, -1),
        Proposal.create(key, CHAIN_ID, height, round_, B, -1),
    )


def test_duplicate_vote_evidence_is_ordered_verifiable_and_round_trips() -> None:
    ev = DuplicateVoteEvidence.of(vote(2, A), vote(2, NIL))
    assert ev == DuplicateVoteEvidence.of(vote(2, NIL), vote(2, A))  # order does not matter
    assert ev.vote_a.block_hash == NIL and ev.offender == KEYS[2].public_key
    assert ev.offence == ("duplicate_vote", KEYS[2].public_key, 3, 1, int(PREVOTE))
    ev.verify(CHAIN_ID, VALIDATORS)
    again = decode_evidence(encode(ev.to_obj()))
    assert again == ev and again.hash == ev.hash


@pytest.mark.parametrize(
    "a, b",
    [
        (vote(2, A), vote(2, A)),  # the same vote twice
        (vote(2, A), vote(3, B)),  # two validators
        (vote(2, A), vote(2, B, kind=PRECOMMIT)),  # two types
        (vote(2, A), vote(2, B, round_=2)),  # two rounds
        (vote(2, A), vote(2, B, height=4)),  # two heights
    ],
)
def test_non_conflicting_votes_are_not_evidence(a: Vote, b: Vote) -> None:
    with pytest.raises(EvidenceError):
        DuplicateVoteEvidence.of(a, b)


def test_forged_or_foreign_evidence_fails_verification() -> None:
    good = vote(2, A)
    forged = Vote(PREVOTE, 3, 1, B, good.validator, good.signature)
    with pytest.raises(EvidenceError):
        DuplicateVoteEvidence.of(good, forged).verify(CHAIN_ID)
    with pytest.raises(EvidenceError):
        duplicate().verify("other-chain")
    outsider = DuplicateVoteEvidence.of(
        Vote.create(OUTSIDER, CHAIN_ID, PREVOTE, 3, 1, A),
        Vote.create(OUTSIDER, CHAIN_ID, PREVOTE, 3, 1, B),
    )
    outsider.verify(CHAIN_ID)  # well signed ...
    with pytest.raises(EvidenceError):
        outsider.verify(CHAIN_ID, VALIDATORS)  # ... but not by a validator


def test_conflicting_proposal_evidence() -> None:
    a, b = proposals()
    ev = ConflictingProposalEvidence.of(b, a)
    assert ev.proposal_a == a and ev.kind == "conflicting_proposal"
    ev.verify(CHAIN_ID, VALIDATORS)
    assert decode_evidence(encode(ev.to_obj())) == ev
    with pytest.raises(EvidenceError):
        ConflictingProposalEvidence.of(a, a)
    wrong_round = proposals(round_=2)[0]
    with pytest.raises(EvidenceError):
        ConflictingProposalEvidence.of(a, wrong_round)


def test_decode_rejects_unknown_or_malformed_evidence() -> None:
    with pytest.raises(DecodeError):
        decode_evidence(encode({"kind": "nonsense", "a": 1, "b": 2}))
    with pytest.raises(DecodeError):
        decode_evidence(encode([1, 2]))
    same = duplicate().to_obj()
    same["b"] = same["a"]
    with pytest.raises(DecodeError):
        decode_evidence(encode(same))


def test_pool_keeps_one_piece_per_offence_and_is_bounded() -> None:
    pool = EvidencePool(max_items=3)
    assert pool.add(duplicate(2, round_=1))
    assert not pool.add(DuplicateVoteEvidence.of(vote(2, A), vote(2, B)))  # same offence
    for r in range(2, 6):
        assert pool.add(duplicate(2, round_=r))
    assert len(pool) == 3
    assert [e.vote_a.round for e in pool.items()] == [3, 4, 5]  # the oldest went first
    assert pool.offenders() == {KEYS[2].public_key}


def _store_and_reload(store: KVStore, reopen: object) -> None:
    pool = EvidencePool(store)
    pool.add(duplicate(1))
    pool.add(ConflictingProposalEvidence.of(*proposals()))
    keys = [k for k, _ in store.iterate(K.EVIDENCE)]
    assert len(keys) == 2 and all(k.startswith(K.EVIDENCE + K.height_bytes(3)) for k in keys)
    reloaded = EvidencePool(reopen())  # type: ignore[operator]
    assert {e.hash for e in reloaded.items()} == {e.hash for e in pool.items()}
    assert not reloaded.add(duplicate(1))


def test_pool_stores_under_the_evidence_prefix_in_memory() -> None:
    store = MemoryStore()
    _store_and_reload(store, lambda: store)


def test_pool_stores_under_the_evidence_prefix_in_leveldb(tmp_path: Path) -> None:
    path = str(tmp_path / "db")
    store = open_leveldb(path, create=True)
    pool = EvidencePool(store)
    pool.add(duplicate(1))
    store.close()
    store = open_leveldb(path)
    try:
        assert [e.offender for e in EvidencePool(store).items()] == [KEYS[1].public_key]
    finally:
        store.close()
