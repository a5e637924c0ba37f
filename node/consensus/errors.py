"""Consensus errors: what a peer (or our own past) can cause, typed and countable.

Every error here is a :class:`~ledger.errors.LedgerError` with a stable ``code``.
The core never lets one escape while handling an event: it counts it under
``ConsensusCore.counters[code]`` and reports it as a ``Rejected`` effect, so the
node can score the peer that sent the message. ``misbehaviour`` says whether the
message proves the *sender* did something wrong (a bad signature, a vote from a
non-validator) or is merely late or early, which honest peers cause all the time.
"""

from __future__ import annotations

from ledger.errors import LedgerError, SignatureError
from ledger.evidence import EvidenceError  # blocks carry evidence: defined with it

__all__ = [
    "BufferFull",
    "ConsensusError",
    "DoubleSignRefused",
    "EvidenceError",
    "HeightOutOfWindow",
    "InvalidMessageSignature",
    "MessageRejected",
    "NotProposer",
    "SignerStateError",
    "StaleMessage",
    "UnknownValidator",
    "WrongChain",
]


class ConsensusError(LedgerError):
    """Base of every consensus error."""

    code = "consensus"


class MessageRejected(ConsensusError):
    """A proposal or vote the core will not use."""

    code = "rejected"
    misbehaviour = False


class WrongChain(MessageRejected):
    """The message arrived in an envelope for another chain id."""

    code = "wrong_chain"
    misbehaviour = True


class UnknownValidator(MessageRejected):
    """Signed by a key that is not in the validator set of its height."""

    code = "unknown_validator"
    misbehaviour = True


class NotProposer(MessageRejected):
    """A proposal signed by someone other than proposer(height, round)."""

    code = "not_proposer"
    misbehaviour = True


class InvalidMessageSignature(MessageRejected, SignatureError):
    """The signature does not verify for this chain, purpose and content."""

    code = "bad_signature"
    misbehaviour = True


class StaleMessage(MessageRejected):
    """For a height we have already decided; late messages are normal."""

    code = "stale_height"


class HeightOutOfWindow(MessageRejected):
    """For a height beyond the buffered window (current .. current + future_heights)."""

    code = "height_out_of_window"


class BufferFull(MessageRejected):
    """The bounded buffer of next-height messages is full."""

    code = "buffer_full"


class DoubleSignRefused(ConsensusError):
    """The signer refused: it already signed something else at this (height, round, step)
    or has moved past it. The core then simply does not send."""

    code = "double_sign_refused"


class SignerStateError(ConsensusError):
    """The stored signer state is unreadable or belongs to another key."""

    code = "signer_state"
