"""Head statements: a validator's signed "my committed head, at my clock's time T".

An idle network commits a block only at its heartbeat (``[consensus]
empty_block_interval_ms``), so a block's own time no longer says how fresh an answer
is. Each validator signs, every few seconds while its head is older than that, a
:class:`HeadStatement` (chain id through the domain tag, height, block hash, time) and
gossips it; nodes keep the latest ones in memory (never in the chain: they cost no
growth) and serve them (``GET /v1/head``). A client holding statements for its
answer's block from validators with more than 2/3 of that height's power takes as the
answer's time the latest T at which such a set had all signed (lightclient/head.py):
more than 1/3 of the power signed at T or later, so at least one correct validator
still had that block as its head at T (docs/consensus.md, "Proving freshness").
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ledger.crypto import PrivateKey, Purpose, verify
from ledger.encoding import encode
from ledger.errors import ValidationError
from ledger.schema import HASH, HEIGHT, PUBLIC_KEY, SIGNATURE, Described, described, wire
from ledger.schema.fields import COUNT


@described("head statement")
@dataclass(frozen=True, slots=True)
class HeadStatement(Described):
    """``validator`` says: at ``time_ms`` (its clock, ms UTC) my committed head was block
    ``height`` with hash ``block_hash``."""

    height: int = field(metadata=wire(HEIGHT))
    block_hash: bytes = field(metadata=wire(HASH))
    time_ms: int = field(metadata=wire(COUNT))
    validator: bytes = field(metadata=wire(PUBLIC_KEY))
    signature: bytes = field(metadata=wire(SIGNATURE))

    def __post_init__(self) -> None:
        if len(self.block_hash) != 32 or len(self.validator) != 32 or len(self.signature) != 64:
            raise ValidationError(
                "a head statement has a 32-byte hash and key, a 64-byte signature"
            )

    @staticmethod
    def sign_bytes(height: int, block_hash: bytes, time_ms: int) -> bytes:
        """The canonical map ``{block_hash, height, time_ms}`` (docs/formats.md)."""
        return encode({"height": height, "block_hash": block_hash, "time_ms": time_ms})

    @classmethod
    def create(
        cls, key: PrivateKey, chain_id: str, height: int, block_hash: bytes, time_ms: int
    ) -> HeadStatement:
        message = cls.sign_bytes(height, block_hash, time_ms)
        signature = key.sign(Purpose.HEAD, chain_id, message)
        return cls(height, block_hash, time_ms, key.public_key, signature)

    def verify_signature(self, chain_id: str) -> None:
        """:class:`~ledger.errors.SignatureError` unless signed by ``validator`` for
        exactly this chain, height, hash and time."""
        message = self.sign_bytes(self.height, self.block_hash, self.time_ms)
        verify(self.validator, Purpose.HEAD, chain_id, message, self.signature)
