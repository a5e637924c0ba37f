"""Tendermint BFT consensus (Buchman, Kwon, Milosevic, arXiv:1807.04938, Algorithm 1),
as a sans-IO core. docs/consensus.md is the full description; this is the API.

Build one core per validator (or observer) and height range::

    signer = Signer(validator_key, chain_id, store)        # durable double-sign guard
    core = ConsensusCore(
        chain_id=chain_id,
        validators=validator_set,
        height=last_committed_height + 1,
        signer=signer,                                     # None: observe only
        verifier=Verifier(chain_id),                       # shared, cached signature checks
        timeouts=TimeoutConfig.from_params(genesis.consensus),
        evidence=EvidencePool(store),
    )
    effects = core.start()

Then feed it events, one call at a time, never from inside another call, and carry
out the effects each call returns, in order:

=========================  ==================================================
event (``core.handle``)    direct method
=========================  ==================================================
``MessageReceived``        ``on_message(msg, chain_id=None, verified=False)``,
                           ``on_vote(vote, verified=...)`` (hot path),
                           ``on_proposal(proposal, verified=...)``
``TimeoutFired``           ``on_timeout(height, round, step)``
``ValueReady``             ``on_value_ready(height, round, block_hash)``
``ValidationResult``       ``on_validation_result(height, block_hash, valid)``
``BlockCommitted``         ``on_block_committed(height, next_validators=None)``
=========================  ==================================================

=======================  ======================================================
effect                   what the layer does
=======================  ======================================================
``Broadcast``            send the signed proposal/vote to all validators
``ScheduleTimeout``      after ``duration_ms`` feed ``TimeoutFired``
``RequestValue``         build a block, answer ``ValueReady`` (getValue())
``RequestValidation``    check the block, answer ``ValidationResult`` (valid(v))
``Commit``               store block + ``certificate``, answer ``BlockCommitted``
``EvidenceFound``        report the equivocation (also in ``core.evidence``)
``Rejected``             message not used; score the peer if ``error.misbehaviour``
``SignRefused``          our signer refused (already signed something else there)
``SyncNeeded``           peers are at ``height``: block-sync if still behind soon
=======================  ======================================================

Answers (``ValueReady``, ``ValidationResult``, ``BlockCommitted``) may be fed right
after the call that asked for them or any time later. Signature checking is a
separate step: run ``verifier.is_valid(msg)`` off the hot path and feed the message
with ``verified=True`` (or let the core call the same cached verifier). Counters of
everything rejected or ignored are in ``core.counters`` (keys are error codes).
Accessors: ``height``, ``round``, ``step``, ``locked_value``/``locked_round``,
``valid_value``/``valid_round``, ``decision``, ``validators``, ``evidence``,
``known_messages()`` (for gossip), ``round_state(r)``, ``describe()``.
"""

from node.consensus.core import ConsensusCore
from node.consensus.effects import (
    Broadcast,
    Commit,
    Effect,
    EvidenceFound,
    Rejected,
    RequestValidation,
    RequestValue,
    ScheduleTimeout,
    SignRefused,
    SyncNeeded,
)
from node.consensus.errors import (
    BufferFull,
    ConsensusError,
    DoubleSignRefused,
    EvidenceError,
    HeightOutOfWindow,
    InvalidMessageSignature,
    MessageRejected,
    NotProposer,
    SignerStateError,
    StaleMessage,
    UnknownValidator,
    WrongChain,
)
from node.consensus.events import (
    BlockCommitted,
    Event,
    MessageReceived,
    TimeoutFired,
    ValidationResult,
    ValueReady,
)
from node.consensus.evidence import (
    ConflictingProposalEvidence,
    DuplicateVoteEvidence,
    Evidence,
    EvidencePool,
)
from node.consensus.signer import Lock, Signer
from node.consensus.timeouts import TimeoutConfig
from node.consensus.types import ConsensusMessage, Limits, Step
from node.consensus.verifier import Verifier, message_hash

__all__ = [
    "BlockCommitted",
    "Broadcast",
    "BufferFull",
    "Commit",
    "ConflictingProposalEvidence",
    "ConsensusCore",
    "ConsensusError",
    "ConsensusMessage",
    "DoubleSignRefused",
    "DuplicateVoteEvidence",
    "Effect",
    "Event",
    "Evidence",
    "EvidenceError",
    "EvidenceFound",
    "EvidencePool",
    "HeightOutOfWindow",
    "InvalidMessageSignature",
    "Limits",
    "Lock",
    "MessageReceived",
    "MessageRejected",
    "NotProposer",
    "Rejected",
    "RequestValidation",
    "RequestValue",
    "ScheduleTimeout",
    "SignRefused",
    "Signer",
    "SignerStateError",
    "StaleMessage",
    "Step",
    "SyncNeeded",
    "TimeoutConfig",
    "TimeoutFired",
    "UnknownValidator",
    "ValidationResult",
    "ValueReady",
    "Verifier",
    "WrongChain",
    "message_hash",
]
