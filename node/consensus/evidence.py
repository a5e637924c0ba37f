"""Evidence of equivocation: two conflicting signed messages from one validator.

* :class:`DuplicateVoteEvidence` — two votes of one type for one (height, round)
  naming different blocks (the paper's "double prevote/precommit").
* :class:`ConflictingProposalEvidence` — two proposals for one (height, round)
  from its proposer (an equivocating proposer).

Both are self-contained: anyone holding the validator set can re-check them with
``verify``. The core hands each new piece to an :class:`EvidencePool`, which keeps
a bounded number in memory, writes every piece under ``keys.EVIDENCE`` when it was
given a store, and is what the layer above reads (``EvidenceFound`` effect plus the
``items()`` accessor) to report or punish.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar

from ledger.encoding import Value, decode, digest, encode, expect_map, expect_str
from ledger.errors import DecodeError, SignatureError
from ledger.storage import KVStore, WriteBatch
from ledger.storage import keys as K
from ledger.validators import ValidatorSet
from ledger.votes import Proposal, Vote
from node.consensus.errors import EvidenceError

# (kind, offender, height, round, message type) — one piece of evidence per offence
Offence = tuple[str, bytes, int, int, int]


@dataclass(frozen=True, slots=True)
class DuplicateVoteEvidence:
    """Two votes, same signer, type, height and round, different block hashes."""

    vote_a: Vote
    vote_b: Vote
    kind: ClassVar[str] = "duplicate_vote"

    def __post_init__(self) -> None:
        a, b = self.vote_a, self.vote_b
        if (a.validator, a.type, a.height, a.round) != (b.validator, b.type, b.height, b.round):
            raise EvidenceError("duplicate-vote evidence needs one signer, type, height, round")
        if a.block_hash == b.block_hash:
            raise EvidenceError("duplicate-vote evidence needs two different block hashes")
        if a.block_hash > b.block_hash:
            raise EvidenceError("duplicate-vote evidence lists its votes ordered by block hash")

    @classmethod
    def of(cls, first: Vote, second: Vote) -> DuplicateVoteEvidence:
        """Evidence from two conflicting votes in either order."""
        a, b = sorted((first, second), key=lambda v: v.block_hash)
        return cls(a, b)

    @property
    def offender(self) -> bytes:
        return self.vote_a.validator

    @property
    def height(self) -> int:
        return self.vote_a.height

    @property
    def offence(self) -> Offence:
        a = self.vote_a
        return (self.kind, a.validator, a.height, a.round, int(a.type))

    @property
    def hash(self) -> bytes:
        return digest(self.to_obj())

    def verify(self, chain_id: str, validators: ValidatorSet | None = None) -> None:
        """Raise :class:`EvidenceError` unless both votes are genuinely signed."""
        if validators is not None and self.offender not in validators:
            raise EvidenceError("evidence names a key that is not a validator")
        try:
            self.vote_a.verify_signature(chain_id)
            self.vote_b.verify_signature(chain_id)
        except SignatureError as exc:
            raise EvidenceError(f"evidence carries a bad signature: {exc}") from None

    def to_obj(self) -> dict[str, Value]:
        return {"kind": self.kind, "a": self.vote_a.to_obj(), "b": self.vote_b.to_obj()}

    @classmethod
    def from_obj(cls, obj: Value) -> DuplicateVoteEvidence:
        m = expect_map(obj, "evidence", ("kind", "a", "b"))
        try:
            return cls(Vote.from_obj(m["a"]), Vote.from_obj(m["b"]))
        except EvidenceError as exc:
            raise DecodeError(str(exc)) from None


@dataclass(frozen=True, slots=True)
class ConflictingProposalEvidence:
    """Two proposals for one (height, round) signed by its proposer."""

    proposal_a: Proposal
    proposal_b: Proposal
    kind: ClassVar[str] = "conflicting_proposal"

    def __post_init__(self) -> None:
        a, b = self.proposal_a, self.proposal_b
        if (a.proposer, a.height, a.round) != (b.proposer, b.height, b.round):
            raise EvidenceError("proposal evidence needs one proposer, height and round")
        if _proposal_order(a) >= _proposal_order(b):
            raise EvidenceError("proposal evidence needs two different, ordered proposals")

    @classmethod
    def of(cls, first: Proposal, second: Proposal) -> ConflictingProposalEvidence:
        a, b = sorted((first, second), key=_proposal_order)
        return cls(a, b)

    @property
    def offender(self) -> bytes:
        return self.proposal_a.proposer

    @property
    def height(self) -> int:
        return self.proposal_a.height

    @property
    def offence(self) -> Offence:
        a = self.proposal_a
        return (self.kind, a.proposer, a.height, a.round, 0)

    @property
    def hash(self) -> bytes:
        return digest(self.to_obj())

    def verify(self, chain_id: str, validators: ValidatorSet | None = None) -> None:
        if validators is not None and self.offender != validators.proposer(
            self.height, self.proposal_a.round
        ):
            raise EvidenceError("evidence names a key that was not the proposer")
        try:
            self.proposal_a.verify_signature(chain_id)
            self.proposal_b.verify_signature(chain_id)
        except SignatureError as exc:
            raise EvidenceError(f"evidence carries a bad signature: {exc}") from None

    def to_obj(self) -> dict[str, Value]:
        return {"kind": self.kind, "a": self.proposal_a.to_obj(), "b": self.proposal_b.to_obj()}

    @classmethod
    def from_obj(cls, obj: Value) -> ConflictingProposalEvidence:
        m = expect_map(obj, "evidence", ("kind", "a", "b"))
        try:
            return cls(Proposal.from_obj(m["a"]), Proposal.from_obj(m["b"]))
        except EvidenceError as exc:
            raise DecodeError(str(exc)) from None


Evidence = DuplicateVoteEvidence | ConflictingProposalEvidence


def _proposal_order(p: Proposal) -> tuple[bytes, int, bytes]:
    return (p.block_hash, p.valid_round, p.signature)


def decode_evidence(data: bytes) -> Evidence:
    obj = decode(data)
    if not isinstance(obj, dict):
        raise DecodeError("evidence: expected a map")
    kind = expect_str(obj.get("kind"), "evidence.kind")
    if kind == DuplicateVoteEvidence.kind:
        return DuplicateVoteEvidence.from_obj(obj)
    if kind == ConflictingProposalEvidence.kind:
        return ConflictingProposalEvidence.from_obj(obj)
    raise DecodeError(f"evidence: unknown kind {kind!r}")


def evidence_key(evidence: Evidence) -> bytes:
    return K.EVIDENCE + K.height_bytes(evidence.height) + evidence.hash


class EvidencePool:
    """One piece of evidence per offence, newest ``max_items`` kept in memory.

    With a store every new piece is written (synced) under ``keys.EVIDENCE``, and
    the newest ``max_items`` are loaded back on construction.
    """

    def __init__(self, store: KVStore | None = None, *, max_items: int = 1024) -> None:
        if max_items < 1:
            raise ValueError("max_items must be >= 1")
        self._store = store
        self._max = max_items
        self._items: dict[Offence, Evidence] = {}
        if store is not None:
            for _, data in store.iterate(K.EVIDENCE):
                self._remember(decode_evidence(data))

    def add(self, evidence: Evidence) -> bool:
        """Keep ``evidence``; False when this offence is already known."""
        if evidence.offence in self._items:
            return False
        if self._store is not None:
            batch = WriteBatch()
            batch.put(evidence_key(evidence), encode(evidence.to_obj()))
            self._store.write(batch, sync=True)
        self._remember(evidence)
        return True

    def _remember(self, evidence: Evidence) -> None:
        self._items[evidence.offence] = evidence
        while len(self._items) > self._max:
            del self._items[next(iter(self._items))]

    def items(self) -> list[Evidence]:
        """Evidence in the order it was found, oldest first."""
        return list(self._items.values())

    def offenders(self) -> set[bytes]:
        return {e.offender for e in self._items.values()}

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Evidence]:
        return iter(list(self._items.values()))
