"""Consensus messages: proposals, votes, and commit certificates.

A proposal signs (height, round, block hash, valid round); a vote signs
(type, height, round, block hash or nil). A commit certificate is a set of
precommit signatures for one block that carries >2/3 of the voting power;
anyone holding the validator set can check it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

from ledger.crypto import PrivateKey, Purpose, is_valid_signature, verify
from ledger.encoding import decode, digest, encode
from ledger.errors import CertificateError, ValidationError
from ledger.ids import HASH_SIZE, NIL_ROUND
from ledger.schema import (
    HASH,
    HEIGHT,
    PUBLIC_KEY,
    SIGNATURE,
    Bytes,
    Described,
    Int,
    IntEnumOf,
    List,
    Pair,
    described,
    wire,
)
from ledger.validators import MAX_VALIDATORS, ValidatorSet

MAX_ROUND = 2**31
NIL = b""  # the block hash of a nil vote


class VoteType(IntEnum):
    PREVOTE = 1
    PRECOMMIT = 2


_ROUND = Int(hi=MAX_ROUND - 1)


def _check_hash(value: bytes, what: str, *, allow_nil: bool) -> None:
    if not isinstance(value, bytes) or not (
        len(value) == HASH_SIZE or (allow_nil and value == NIL)
    ):
        raise ValidationError(f"{what} must be a 32-byte hash" + (" or nil" if allow_nil else ""))


def _check_height_round(height: int, round_: int) -> None:
    if not isinstance(height, int) or not 1 <= height < 2**63:
        raise ValidationError("height must be >= 1")
    if not isinstance(round_, int) or not 0 <= round_ < MAX_ROUND:
        raise ValidationError("round must be >= 0")


@described("vote")
@dataclass(frozen=True, slots=True)
class Vote(Described):
    type: VoteType = field(metadata=wire(IntEnumOf(VoteType)))
    height: int = field(metadata=wire(HEIGHT))
    round: int = field(metadata=wire(_ROUND))
    block_hash: bytes = field(metadata=wire(Bytes(max_size=HASH_SIZE)))  # NIL for a nil vote
    validator: bytes = field(metadata=wire(PUBLIC_KEY))
    signature: bytes = field(metadata=wire(SIGNATURE))

    def __post_init__(self) -> None:
        _check_height_round(self.height, self.round)
        _check_hash(self.block_hash, "vote.block_hash", allow_nil=True)
        if len(self.validator) != 32 or len(self.signature) != 64:
            raise ValidationError("vote validator key must be 32 bytes and signature 64")

    @staticmethod
    def sign_bytes(vote_type: VoteType, height: int, round_: int, block_hash: bytes) -> bytes:
        return encode(
            {"type": int(vote_type), "height": height, "round": round_, "block_hash": block_hash}
        )

    @classmethod
    def create(
        cls,
        key: PrivateKey,
        chain_id: str,
        vote_type: VoteType,
        height: int,
        round_: int,
        block_hash: bytes,
    ) -> Vote:
        message = cls.sign_bytes(vote_type, height, round_, block_hash)
        signature = key.sign(Purpose.VOTE, chain_id, message)
        return cls(vote_type, height, round_, block_hash, key.public_key, signature)

    @property
    def is_nil(self) -> bool:
        return self.block_hash == NIL

    def verify_signature(self, chain_id: str) -> None:
        message = self.sign_bytes(self.type, self.height, self.round, self.block_hash)
        verify(self.validator, Purpose.VOTE, chain_id, message, self.signature)


@described("proposal")
@dataclass(frozen=True, slots=True)
class Proposal(Described):
    height: int = field(metadata=wire(HEIGHT))
    round: int = field(metadata=wire(_ROUND))
    block_hash: bytes = field(metadata=wire(HASH))
    # NIL_ROUND (-1) when the proposer has no valid round
    valid_round: int = field(metadata=wire(Int(lo=NIL_ROUND, hi=MAX_ROUND - 1)))
    proposer: bytes = field(metadata=wire(PUBLIC_KEY))
    signature: bytes = field(metadata=wire(SIGNATURE))

    def __post_init__(self) -> None:
        _check_height_round(self.height, self.round)
        _check_hash(self.block_hash, "proposal.block_hash", allow_nil=False)
        if not NIL_ROUND <= self.valid_round < self.round:
            raise ValidationError("proposal valid_round must be -1 or below the round")
        if len(self.proposer) != 32 or len(self.signature) != 64:
            raise ValidationError("proposer key must be 32 bytes and signature 64")

    @staticmethod
    def sign_bytes(height: int, round_: int, block_hash: bytes, valid_round: int) -> bytes:
        return encode(
            {
                "height": height,
                "round": round_,
                "block_hash": block_hash,
                "valid_round": valid_round,
            }
        )

    @classmethod
    def create(
        cls,
        key: PrivateKey,
        chain_id: str,
        height: int,
        round_: int,
        block_hash: bytes,
        valid_round: int,
    ) -> Proposal:
        message = cls.sign_bytes(height, round_, block_hash, valid_round)
        signature = key.sign(Purpose.PROPOSAL, chain_id, message)
        return cls(height, round_, block_hash, valid_round, key.public_key, signature)

    def verify_signature(self, chain_id: str) -> None:
        message = self.sign_bytes(self.height, self.round, self.block_hash, self.valid_round)
        verify(self.proposer, Purpose.PROPOSAL, chain_id, message, self.signature)


@described("certificate")
@dataclass(frozen=True, slots=True)
class CommitCertificate(Described):
    """>2/3 precommits for ``block_hash`` at (height, round), signatures sorted by key."""

    height: int = field(metadata=wire(HEIGHT))
    round: int = field(metadata=wire(_ROUND))
    block_hash: bytes = field(metadata=wire(HASH))
    # (validator public key, signature)
    signatures: tuple[tuple[bytes, bytes], ...] = field(
        metadata=wire(List(Pair(PUBLIC_KEY, SIGNATURE), max_len=MAX_VALIDATORS))
    )
    hash: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_height_round(self.height, self.round)
        _check_hash(self.block_hash, "certificate.block_hash", allow_nil=False)
        keys = [k for k, _ in self.signatures]
        if keys != sorted(keys) or len(set(keys)) != len(keys):
            raise ValidationError("certificate signers must be distinct and sorted by key")
        for k, s in self.signatures:
            if len(k) != 32 or len(s) != 64:
                raise ValidationError("certificate entries are (32-byte key, 64-byte signature)")
        object.__setattr__(self, "hash", digest(self.to_obj()))

    @classmethod
    def from_votes(cls, votes: list[Vote]) -> CommitCertificate:
        """Certificate from precommits that all name the same (height, round, block)."""
        first = votes[0]
        for v in votes:
            if (v.type, v.height, v.round, v.block_hash) != (
                VoteType.PRECOMMIT,
                first.height,
                first.round,
                first.block_hash,
            ):
                raise ValidationError("certificate votes must be matching precommits")
        by_key = {v.validator: v.signature for v in votes}
        return cls(first.height, first.round, first.block_hash, tuple(sorted(by_key.items())))

    @property
    def signers(self) -> frozenset[bytes]:
        return frozenset(k for k, _ in self.signatures)

    def verify(
        self,
        validators: ValidatorSet,
        chain_id: str,
        *,
        height: int | None = None,
        block_hash: bytes | None = None,
    ) -> None:
        """Raise :class:`CertificateError` unless this certifies the block by >2/3 power."""
        if height is not None and self.height != height:
            raise CertificateError(f"certificate is for height {self.height}, expected {height}")
        if block_hash is not None and self.block_hash != block_hash:
            raise CertificateError(
                f"certificate at height {self.height} is for block "
                f"{self.block_hash.hex()[:16]}…, not {block_hash.hex()[:16]}…"
            )
        message = Vote.sign_bytes(VoteType.PRECOMMIT, self.height, self.round, self.block_hash)
        power = 0
        for key, signature in self.signatures:
            validator = validators.get(key)
            if validator is None:
                raise CertificateError(
                    f"certificate at height {self.height} is signed by {key.hex()[:16]}…, "
                    "which is not a validator"
                )
            if not is_valid_signature(key, Purpose.VOTE, chain_id, message, signature):
                raise CertificateError(
                    f"certificate at height {self.height}: bad signature from {validator.name}"
                )
            power += validator.power
        if power < validators.quorum_power:
            raise CertificateError(
                f"certificate at height {self.height} carries power {power} of "
                f"{validators.total_power}; more than 2/3 ({validators.quorum_power}) is needed"
            )

    def encode(self) -> bytes:
        return encode(self.to_obj())

    @classmethod
    def decode(cls, data: bytes) -> CommitCertificate:
        return cls.from_obj(decode(data))
