"""Votes, proposals and the commit-certificate rules: >2/3 power, distinct signers, target."""

from __future__ import annotations

import hashlib

import pytest

from ledger.crypto import PrivateKey
from ledger.encoding import decode, encode
from ledger.errors import CertificateError, DecodeError, SignatureError, ValidationError
from ledger.validators import Validator, ValidatorSet
from ledger.votes import NIL, CommitCertificate, Proposal, Vote, VoteType

CHAIN = "test-chain"
KEYS = [PrivateKey.from_label(f"validator-{i}") for i in range(4)]
BLOCK = hashlib.sha256(b"block").digest()
OTHER = hashlib.sha256(b"other").digest()


def validator_set(powers: list[int]) -> ValidatorSet:
    return ValidatorSet(
        tuple(
            Validator(f"v{i}", k.public_key, p)
            for i, (k, p) in enumerate(zip(KEYS, powers, strict=False))
        )
    )


def precommits(
    signers: list[int], *, height: int = 5, round_: int = 1, block: bytes = BLOCK
) -> list[Vote]:
    return [Vote.create(KEYS[i], CHAIN, VoteType.PRECOMMIT, height, round_, block) for i in signers]


def test_vote_round_trip_and_signature() -> None:
    vote = Vote.create(KEYS[0], CHAIN, VoteType.PREVOTE, 3, 0, BLOCK)
    again = Vote.from_obj(decode(encode(vote.to_obj())))
    assert again == vote
    again.verify_signature(CHAIN)
    with pytest.raises(SignatureError):
        again.verify_signature("other-chain")
    nil = Vote.create(KEYS[0], CHAIN, VoteType.PREVOTE, 3, 0, NIL)
    assert nil.is_nil
    nil.verify_signature(CHAIN)


def test_vote_signature_covers_type_round_and_block() -> None:
    vote = Vote.create(KEYS[0], CHAIN, VoteType.PREVOTE, 3, 0, BLOCK)
    for forged in (
        Vote(VoteType.PRECOMMIT, 3, 0, BLOCK, vote.validator, vote.signature),
        Vote(VoteType.PREVOTE, 3, 1, BLOCK, vote.validator, vote.signature),
        Vote(VoteType.PREVOTE, 4, 0, BLOCK, vote.validator, vote.signature),
        Vote(VoteType.PREVOTE, 3, 0, OTHER, vote.validator, vote.signature),
        Vote(VoteType.PREVOTE, 3, 0, NIL, vote.validator, vote.signature),
    ):
        with pytest.raises(SignatureError):
            forged.verify_signature(CHAIN)


def test_proposal_round_trip_and_valid_round_rule() -> None:
    p = Proposal.create(KEYS[1], CHAIN, 7, 2, BLOCK, 1)
    assert Proposal.from_obj(decode(encode(p.to_obj()))) == p
    p.verify_signature(CHAIN)
    with pytest.raises(ValidationError):
        Proposal.create(KEYS[1], CHAIN, 7, 2, BLOCK, 2)  # valid_round must be < round
    bad = p.to_obj() | {"valid_round": -2}
    with pytest.raises(DecodeError):
        Proposal.from_obj(bad)


def test_malformed_vote_objects_are_decode_errors() -> None:
    good = Vote.create(KEYS[0], CHAIN, VoteType.PREVOTE, 3, 0, BLOCK).to_obj()
    for bad in (
        good | {"type": 3},
        good | {"height": 0},
        good | {"block_hash": b"\x00" * 31},
        good | {"signature": b"x"},
        {k: v for k, v in good.items() if k != "round"},
        good | {"extra": 1},
        [good],
    ):
        with pytest.raises(DecodeError):
            Vote.from_obj(bad)


def test_certificate_with_three_of_four_verifies() -> None:
    vs = validator_set([1, 1, 1, 1])
    cert = CommitCertificate.from_votes(precommits([0, 1, 2]))
    cert.verify(vs, CHAIN, height=5, block_hash=BLOCK)
    assert CommitCertificate.decode(cert.encode()) == cert


def test_certificate_with_two_of_four_is_not_enough() -> None:
    vs = validator_set([1, 1, 1, 1])
    cert = CommitCertificate.from_votes(precommits([0, 1]))
    with pytest.raises(CertificateError, match="more than 2/3"):
        cert.verify(vs, CHAIN)


def test_certificate_counts_power_not_heads() -> None:
    vs = validator_set([5, 1, 1, 1])  # total 8, quorum 6
    CommitCertificate.from_votes(precommits([0, 1])).verify(vs, CHAIN)
    with pytest.raises(CertificateError):
        CommitCertificate.from_votes(precommits([1, 2, 3])).verify(vs, CHAIN)


def test_exactly_two_thirds_is_not_more_than_two_thirds() -> None:
    vs = validator_set([1, 1, 1])  # 2 of 3 == 2/3 exactly: not enough
    keys3 = ValidatorSet(vs.validators[:3])
    cert = CommitCertificate.from_votes(precommits([0, 1]))
    with pytest.raises(CertificateError):
        cert.verify(keys3, CHAIN)


def test_certificate_rejects_duplicate_signers() -> None:
    votes = precommits([0, 1])
    sigs = sorted([(v.validator, v.signature) for v in votes] * 2)
    with pytest.raises(ValidationError, match="distinct"):
        CommitCertificate(5, 1, BLOCK, tuple(sigs))
    obj = CommitCertificate.from_votes(votes).to_obj()
    obj["signatures"] = obj["signatures"] + obj["signatures"][:1]
    with pytest.raises(DecodeError):
        CommitCertificate.from_obj(obj)


def test_certificate_rejects_wrong_target_and_foreign_signers() -> None:
    vs = validator_set([1, 1, 1, 1])
    cert = CommitCertificate.from_votes(precommits([0, 1, 2]))
    with pytest.raises(CertificateError, match="height"):
        cert.verify(vs, CHAIN, height=6)
    with pytest.raises(CertificateError, match="not"):
        cert.verify(vs, CHAIN, block_hash=OTHER)
    # Same signatures claimed for another round or block: the signatures no longer match.
    moved = CommitCertificate(5, 2, BLOCK, cert.signatures)
    with pytest.raises(CertificateError, match="bad signature"):
        moved.verify(vs, CHAIN)
    moved = CommitCertificate(5, 1, OTHER, cert.signatures)
    with pytest.raises(CertificateError, match="bad signature"):
        moved.verify(vs, CHAIN)
    with pytest.raises(CertificateError, match="bad signature"):
        cert.verify(vs, "other-chain")
    outsider = PrivateKey.from_label("outsider")
    extra = Vote.create(outsider, CHAIN, VoteType.PRECOMMIT, 5, 1, BLOCK)
    with_outsider = CommitCertificate.from_votes([*precommits([0, 1, 2]), extra])
    with pytest.raises(CertificateError, match="not a validator"):
        with_outsider.verify(vs, CHAIN)


def test_certificate_from_prevotes_or_mixed_votes_is_refused() -> None:
    prevote = Vote.create(KEYS[0], CHAIN, VoteType.PREVOTE, 5, 1, BLOCK)
    with pytest.raises(ValidationError):
        CommitCertificate.from_votes([prevote, *precommits([1, 2])])
    # A prevote signature smuggled into a certificate does not verify as a precommit.
    vs = validator_set([1, 1, 1, 1])
    sigs = [(prevote.validator, prevote.signature)] + [
        (v.validator, v.signature) for v in precommits([1, 2])
    ]
    cert = CommitCertificate(5, 1, BLOCK, tuple(sorted(sigs)))
    with pytest.raises(CertificateError, match="bad signature"):
        cert.verify(vs, CHAIN)


def test_validator_set_rules() -> None:
    with pytest.raises(ValidationError):
        ValidatorSet(())
    v = Validator("a", KEYS[0].public_key, 1)
    with pytest.raises(ValidationError, match="twice"):
        ValidatorSet((v, Validator("b", KEYS[0].public_key, 1)))
    vs = validator_set([1, 1, 1, 1])
    assert (vs.quorum_power, vs.skip_power) == (3, 2)
    assert [vs.proposer(h, 0) for h in range(4)] == [k.public_key for k in KEYS]
    assert vs.proposer(1, 1) == vs.proposer(2, 0)


def test_weighted_proposer_rotation_matches_power() -> None:
    vs = validator_set([3, 1, 1, 1])
    counts = {k.public_key: 0 for k in KEYS}
    for h in range(600):
        counts[vs.proposer(h, 0)] += 1
    assert [counts[k.public_key] for k in KEYS] == [300, 100, 100, 100]
    # Interleaved, not bunched: the heavy validator never proposes 3 times in a row.
    seq = [vs.proposer(h, 0) for h in range(12)]
    assert all(not (seq[i] == seq[i + 1] == seq[i + 2]) for i in range(10))
