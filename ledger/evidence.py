"""Evidence of equivocation: two conflicting signed messages from one validator.

* :class:`DuplicateVoteEvidence` — two votes of one type for one (height, round)
  naming different blocks (the paper's "double prevote/precommit").
* :class:`ConflictingProposalEvidence` — two different proposals for one
  (height, round) from its proposer (an equivocating proposer).

Both are self-contained: anyone holding the validator set re-checks them with
``verify``. Verified evidence is committed in blocks (``Block.evidence``, under the
header's ``evidence_root``); the consensus rules a piece must pass to be committed
in block h are in :func:`check_evidence_window` and ``node.executor`` (docs/formats.md
§4, docs/consensus.md "Evidence").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from ledger import merkle
from ledger.encoding import Value, decode, digest
from ledger.errors import SignatureError, ValidationError
from ledger.schema import Described, Nested, OneOf, described, read, wire
from ledger.validators import ValidatorSet
from ledger.votes import Proposal, Vote

# At most this many pieces in one block (each is two votes or two proposals, under 600
# bytes encoded: the bound on count is also the bound on bytes, under 10 KB a block).
MAX_BLOCK_EVIDENCE = 16
# Block h may commit evidence of heights h - MAX_EVIDENCE_AGE .. h - 1 only.
MAX_EVIDENCE_AGE = 100_000

# (kind, offender, height, round, message type) — one piece of evidence per offence
Offence = tuple[str, bytes, int, int, int]


class EvidenceError(ValidationError):
    """Two messages that do not form valid evidence of equivocation."""

    code = "bad_evidence"


class Equivocation(Described):
    """What both kinds of evidence read off their two conflicting signed messages."""

    __slots__ = ()

    def signed_pair(self) -> tuple[Vote | Proposal, Vote | Proposal]:
        """The two conflicting messages, in the evidence's order."""
        raise NotImplementedError

    @property
    def height(self) -> int:
        return self.signed_pair()[0].height

    @property
    def round(self) -> int:
        return self.signed_pair()[0].round

    @property
    def hash(self) -> bytes:
        return digest(self.to_obj())

    def check_signatures(self, chain_id: str) -> None:
        """Raise :class:`EvidenceError` unless both messages are genuinely signed."""
        try:
            for message in self.signed_pair():
                message.verify_signature(chain_id)
        except SignatureError as exc:
            raise EvidenceError(f"evidence carries a bad signature: {exc}") from None


@described("evidence", tag=("kind", "duplicate_vote"))
@dataclass(frozen=True, slots=True)
class DuplicateVoteEvidence(Equivocation):
    """Two votes, same signer, type, height and round, different block hashes."""

    vote_a: Vote = field(metadata=wire(Nested(Vote), key="a"))
    vote_b: Vote = field(metadata=wire(Nested(Vote), key="b"))
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

    def signed_pair(self) -> tuple[Vote, Vote]:
        return self.vote_a, self.vote_b

    @property
    def offender(self) -> bytes:
        return self.vote_a.validator

    @property
    def offence(self) -> Offence:
        a = self.vote_a
        return (self.kind, a.validator, a.height, a.round, int(a.type))

    def verify(self, chain_id: str, validators: ValidatorSet | None = None) -> None:
        """Raise :class:`EvidenceError` unless both votes are genuinely signed."""
        if validators is not None and self.offender not in validators:
            raise EvidenceError("evidence names a key that is not a validator")
        self.check_signatures(chain_id)


@described("evidence", tag=("kind", "conflicting_proposal"))
@dataclass(frozen=True, slots=True)
class ConflictingProposalEvidence(Equivocation):
    """Two different proposals for one (height, round) signed by its proposer.

    "Different" is in what was signed (block hash, valid round): a second signature
    over the same proposal is not an offence (a signer may sign one message twice)."""

    proposal_a: Proposal = field(metadata=wire(Nested(Proposal), key="a"))
    proposal_b: Proposal = field(metadata=wire(Nested(Proposal), key="b"))
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

    def signed_pair(self) -> tuple[Proposal, Proposal]:
        return self.proposal_a, self.proposal_b

    @property
    def offender(self) -> bytes:
        return self.proposal_a.proposer

    @property
    def offence(self) -> Offence:
        a = self.proposal_a
        return (self.kind, a.proposer, a.height, a.round, 0)

    def verify(self, chain_id: str, validators: ValidatorSet | None = None) -> None:
        if validators is not None and self.offender != validators.proposer(
            self.height, self.proposal_a.round
        ):
            raise EvidenceError("evidence names a key that was not the proposer")
        self.check_signatures(chain_id)


Evidence = DuplicateVoteEvidence | ConflictingProposalEvidence


def _proposal_order(p: Proposal) -> tuple[bytes, int]:
    """What a proposer signs besides (height, round): two proposals differ in this."""
    return (p.block_hash, p.valid_round)


EVIDENCE = OneOf("kind", (DuplicateVoteEvidence, ConflictingProposalEvidence))
"""A piece of evidence on the wire: its ``kind`` says which."""


def evidence_from_obj(obj: Value) -> Evidence:
    """The evidence in ``obj`` (a decoded canonical map); :class:`DecodeError` otherwise."""
    evidence: Evidence = read(EVIDENCE, obj, "evidence")
    return evidence


def decode_evidence(data: bytes) -> Evidence:
    return evidence_from_obj(decode(data))


def compute_evidence_root(evidence: Sequence[Evidence]) -> bytes:
    """RFC 6962 root over the evidence hashes (leaf data = the 32-byte hash), as for txs."""
    return merkle.root_of([e.hash for e in evidence])


def check_evidence_window(evidence: Evidence, block_height: int) -> None:
    """Raise unless block ``block_height`` may commit ``evidence`` by its height:
    from a height already decided (below the block's) and at most MAX_EVIDENCE_AGE back."""
    if evidence.height >= block_height:
        raise EvidenceError(
            f"evidence of height {evidence.height} cannot be committed before height "
            f"{evidence.height + 1}"
        )
    if evidence.height < block_height - MAX_EVIDENCE_AGE:
        raise EvidenceError(
            f"evidence of height {evidence.height} is too old for block {block_height} "
            f"(at most {MAX_EVIDENCE_AGE} heights back)"
        )


def describe_evidence(evidence: Evidence, name: str | None = None) -> str:
    """``duplicate_vote by <name> at height 5 round 0`` (the key's hex without a name)."""
    who = name if name is not None else evidence.offender.hex()[:16] + "…"
    what = evidence.kind
    if isinstance(evidence, DuplicateVoteEvidence):
        what += " (precommit)" if evidence.vote_a.type == 2 else " (prevote)"
    return f"{what} by {who} at height {evidence.height} round {evidence.round}"


def evidence_summary(evidence: Evidence) -> dict[str, Value]:
    """The fields a reader looks for, beside the evidence's own canonical object."""
    _, offender, height, round_, vote_type = evidence.offence
    return {
        "hash": evidence.hash,
        "kind": evidence.kind,
        "offender": offender,
        "offence_height": height,
        "round": round_,
        "vote_type": vote_type,
        "evidence": evidence.to_obj(),
    }


__all__ = [
    "EVIDENCE",
    "MAX_BLOCK_EVIDENCE",
    "MAX_EVIDENCE_AGE",
    "ConflictingProposalEvidence",
    "DuplicateVoteEvidence",
    "Evidence",
    "EvidenceError",
    "Offence",
    "check_evidence_window",
    "compute_evidence_root",
    "decode_evidence",
    "describe_evidence",
    "evidence_from_obj",
    "evidence_summary",
]
