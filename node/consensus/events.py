"""Events: everything that can happen *to* the core.

The layer above (the simulator or the real node) feeds these to
``ConsensusCore.handle`` (or the matching ``on_*`` method) one at a time, never
from inside another call. Answers to the core's requests (``ValueReady`` for
``RequestValue``, ``ValidationResult`` for ``RequestValidation``,
``BlockCommitted`` for ``Commit``) may come back immediately after the call that
asked for them, or much later; the core does not care.
"""

from __future__ import annotations

from dataclasses import dataclass

from ledger.validators import ValidatorSet
from node.consensus.types import ConsensusMessage, Step


@dataclass(frozen=True, slots=True)
class MessageReceived:
    """A proposal or vote from the network (or gossip, or a replay).

    ``chain_id`` is the chain named by the envelope it came in, when the transport
    has one; a mismatch is rejected as ``WrongChain``. ``verified=True`` says the
    signature was already checked with the node's ``Verifier`` (off the hot path).
    """

    message: ConsensusMessage
    chain_id: str | None = None
    verified: bool = False


@dataclass(frozen=True, slots=True)
class TimeoutFired:
    """A ``ScheduleTimeout`` the layer was asked for has expired."""

    height: int
    round: int
    step: Step


@dataclass(frozen=True, slots=True)
class ValueReady:
    """The execution layer's answer to ``RequestValue``: the block it built (getValue())."""

    height: int
    round: int
    block_hash: bytes


@dataclass(frozen=True, slots=True)
class ValidationResult:
    """The execution layer's answer to ``RequestValidation``: the paper's valid(v)."""

    height: int
    block_hash: bytes
    valid: bool


@dataclass(frozen=True, slots=True)
class TxsAvailable:
    """The layer has something to commit at ``height`` (transactions ready in its
    mempool, or evidence): a height waiting before its round 0 starts it now."""

    height: int


@dataclass(frozen=True, slots=True)
class BlockCommitted:
    """The layer has durably committed the block at ``height`` (ours, or fetched by sync
    with a certificate it checked); the core moves to ``height + 1``.

    ``next_validators`` replaces the validator set from the next height on;
    ``upcoming`` is the set of the height after it, as far as it is known (a change made
    by block h is in force from h+2), whose members' messages for that height may wait
    in the next-height buffer.
    """

    height: int
    next_validators: ValidatorSet | None = None
    upcoming: ValidatorSet | None = None


Event = (
    MessageReceived | TimeoutFired | ValueReady | ValidationResult | BlockCommitted | TxsAvailable
)
