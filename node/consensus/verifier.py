"""Signature checking as a separate, cacheable step.

Ed25519 verification costs far more than everything else the core does with a
vote, so it is kept out of the state machine: a :class:`Verifier` checks a
message's signature once and remembers the answer under the message's hash (a
hash of *every* field, signature included, so a cached "valid" can never be
reused for a changed message). The node may run it on a worker thread before
feeding the core (``MessageReceived(verified=True)``); the core itself calls the
same verifier, where a pre-checked message is a cache hit. One verifier may be
shared by many cores (the simulator does), as long as they share a chain id.
"""

from __future__ import annotations

import struct

from ledger.crypto import Purpose, is_valid_signature
from ledger.digest import sha256_digest
from ledger.votes import Proposal, Vote
from node.consensus.errors import InvalidMessageSignature
from node.consensus.types import ConsensusMessage

_VOTE = struct.Struct(">cBQIB")
_PROPOSAL = struct.Struct(">cQIqB")


def message_hash(message: ConsensusMessage) -> bytes:
    """SHA-256 over a fixed layout of all of the message's fields."""
    if isinstance(message, Vote):
        head = _VOTE.pack(
            b"V", message.type, message.height, message.round, len(message.block_hash)
        )
        body = message.block_hash + message.validator + message.signature
    else:
        head = _PROPOSAL.pack(
            b"P", message.height, message.round, message.valid_round, len(message.block_hash)
        )
        body = message.block_hash + message.proposer + message.signature
    return sha256_digest(head + body)


def signature_ok(message: ConsensusMessage, chain_id: str) -> bool:
    """Uncached check of one message's signature."""
    if isinstance(message, Vote):
        data = Vote.sign_bytes(message.type, message.height, message.round, message.block_hash)
        return is_valid_signature(
            message.validator, Purpose.VOTE, chain_id, data, message.signature
        )
    data = Proposal.sign_bytes(
        message.height, message.round, message.block_hash, message.valid_round
    )
    return is_valid_signature(message.proposer, Purpose.PROPOSAL, chain_id, data, message.signature)


class Verifier:
    """Checks signatures for one chain and caches the verdicts by the messages' heights.

    At most ``max_entries`` verdicts, the oldest out first (by when they were added, not
    by height: junk signed for a far-future height must not push out the current
    height's); and a core that owns its verifier drops the heights below its own as it
    enters each height (:meth:`forget_below`): it refuses older messages before asking,
    so their verdicts would only take room. Held by height, the cache stays at a few
    heights' messages instead of filling to its bound over hours (15 MB at 100,000).
    """

    def __init__(self, chain_id: str, *, max_entries: int = 100_000) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be >= 1")
        self.chain_id = chain_id
        self._max = max_entries
        self._by_height: dict[int, dict[bytes, bool]] = {}
        self._added: dict[bytes, int] = {}  # message hash -> height, oldest first
        self.hits = 0
        self.misses = 0

    @property
    def max_entries(self) -> int:
        return self._max

    def is_valid(self, message: ConsensusMessage) -> bool:
        key = message_hash(message)
        verdicts = self._by_height.get(message.height)
        verdict = None if verdicts is None else verdicts.get(key)
        if verdict is not None:
            self.hits += 1
            return verdict
        self.misses += 1
        verdict = signature_ok(message, self.chain_id)
        if len(self._added) >= self._max:
            self._drop_oldest()
        self._by_height.setdefault(message.height, {})[key] = verdict
        self._added[key] = message.height
        return verdict

    def _drop_oldest(self) -> None:
        key = next(iter(self._added))
        height = self._added.pop(key)
        verdicts = self._by_height[height]
        del verdicts[key]
        if not verdicts:
            del self._by_height[height]

    def forget_below(self, height: int) -> None:
        """Drop the verdicts of messages below ``height`` (a core entering it)."""
        for h in [h for h in list(self._by_height) if h < height]:
            for key in self._by_height.pop(h):
                del self._added[key]

    def verify(self, message: ConsensusMessage) -> None:
        """Raise :class:`InvalidMessageSignature` unless the signature is valid."""
        if not self.is_valid(message):
            signer = message.validator if isinstance(message, Vote) else message.proposer
            raise InvalidMessageSignature(
                f"bad {type(message).__name__.lower()} signature from {signer.hex()[:16]}… "
                f"at height {message.height} round {message.round}"
            )

    def __len__(self) -> int:
        return len(self._added)
