"""Effects: everything the core asks the layer above to do.

Each call into the core returns a list of these, in order. The layer carries
them out (send, set a timer, build or check a block, store a commit) and feeds
any answer back as an event — right away or later.
"""

from __future__ import annotations

from dataclasses import dataclass

from ledger.votes import CommitCertificate
from node.consensus.errors import DoubleSignRefused, MessageRejected
from node.consensus.evidence import Evidence
from node.consensus.types import ConsensusMessage, Step


@dataclass(frozen=True, slots=True)
class Broadcast:
    """Send this signed proposal or vote to every validator (the core has already
    counted it itself; do not feed it back)."""

    message: ConsensusMessage


@dataclass(frozen=True, slots=True)
class ScheduleTimeout:
    """Call back with ``TimeoutFired(height, round, step)`` after ``duration_ms``.

    ``step`` WAIT is the idle heartbeat of a height waiting for something to commit
    (round 0): the layer answers ``TxsAvailable(height)`` instead as soon as it has
    transactions, and may fire it early (it counts from its last block's time, so a
    node restarted long after that block does not wait a whole interval more).
    """

    height: int
    round: int
    step: Step
    duration_ms: int


@dataclass(frozen=True, slots=True)
class RequestValue:
    """getValue() (line 18): build a block for (height, round), answer ``ValueReady``."""

    height: int
    round: int


@dataclass(frozen=True, slots=True)
class RequestValidation:
    """valid(v): check the proposed block ``block_hash``, answer ``ValidationResult``.

    Asked at most once per block hash and height.
    """

    height: int
    round: int
    block_hash: bytes


@dataclass(frozen=True, slots=True)
class Commit:
    """decision_p[h] = v (line 51): commit the block with this certificate (>2/3
    precommits), then answer ``BlockCommitted(height)``."""

    height: int
    round: int
    block_hash: bytes
    certificate: CommitCertificate


@dataclass(frozen=True, slots=True)
class EvidenceFound:
    """A validator equivocated; the evidence is also kept in ``core.evidence``."""

    evidence: Evidence


@dataclass(frozen=True, slots=True)
class Rejected:
    """A message was not used; ``error.misbehaviour`` says whether to blame its sender."""

    message: ConsensusMessage
    error: MessageRejected


@dataclass(frozen=True, slots=True)
class SignRefused:
    """Our signer refused to sign (it already signed something else there): nothing sent."""

    error: DoubleSignRefused


@dataclass(frozen=True, slots=True)
class SyncNeeded:
    """A validator has signed a message at ``height`` > ours: we are behind. Fetch
    committed blocks and certificates (and answer ``BlockCommitted``) if we are still
    behind after a grace period; emitted once per new highest height seen."""

    height: int


Effect = (
    Broadcast
    | ScheduleTimeout
    | RequestValue
    | RequestValidation
    | Commit
    | EvidenceFound
    | Rejected
    | SignRefused
    | SyncNeeded
)
