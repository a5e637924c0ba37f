"""Signed transactions.

A transaction's identity (:attr:`Transaction.hash`) is the SHA-256 of its
*signed body* — kind, chain id, sender, nonce, payload — not of the signature,
so a re-signed copy (Ed25519 signatures are deterministic, but a malleated one
need not be) is still the same transaction for dedup and replay protection.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ledger.crypto import PUBLIC_KEY_SIZE, SIGNATURE_SIZE, PrivateKey, Purpose, verify
from ledger.digest import sha256_digest
from ledger.encoding import Value, decode, encode, packb_canonical
from ledger.errors import DecodeError, ValidationError
from ledger.schema import (
    PUBLIC_KEY,
    SIGNATURE,
    AnyMap,
    Int,
    Record,
    Str,
    described,
    wire,
)
from ledger.schema.records import Described

MAX_PAYLOAD_BYTES = 64 * 1024
MAX_TX_BYTES = MAX_PAYLOAD_BYTES + 1024
KIND_PATTERN = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
CHAIN_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")

CHAIN_ID = Str(max_len=64, pattern=CHAIN_ID_PATTERN)
"""A chain id on the wire."""
KIND = Str(max_len=64, pattern=KIND_PATTERN)
"""A transaction kind on the wire."""
# The msgpack of the key "signature" and the header of a 64-byte bin.
_SIGNATURE_FIELD = b"\xa9signature\xc4\x40"


def check_chain_id(chain_id: str) -> str:
    if not isinstance(chain_id, str) or not CHAIN_ID_PATTERN.match(chain_id):
        raise ValidationError(f"chain id {chain_id!r} must match {CHAIN_ID_PATTERN.pattern}")
    return chain_id


@described("transaction", sort_keys=True)
@dataclass(frozen=True, slots=True)
class Transaction(Described):
    """A signed transaction; its wire map has its keys in canonical (sorted) order."""

    kind: str = field(metadata=wire(KIND))
    chain_id: str = field(metadata=wire(CHAIN_ID))
    sender: bytes = field(metadata=wire(PUBLIC_KEY))
    nonce: int = field(metadata=wire(Int(hi=2**63 - 1)))
    payload: dict[str, Value] = field(metadata=wire(AnyMap()))
    signature: bytes = field(metadata=wire(SIGNATURE))
    body: bytes = field(init=False, repr=False, compare=False)
    hash: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._check()
        self._seal(encode(self.body_obj()))

    def _check(self) -> None:
        if not isinstance(self.kind, str) or not KIND_PATTERN.match(self.kind):
            raise ValidationError(f"transaction kind {self.kind!r} is not like 'shipment.declare'")
        if len(self.kind) > 64:
            raise ValidationError("transaction kind is longer than 64 characters")
        check_chain_id(self.chain_id)
        if not isinstance(self.sender, bytes) or len(self.sender) != PUBLIC_KEY_SIZE:
            raise ValidationError("sender must be a 32-byte public key")
        if not isinstance(self.nonce, int) or not 0 <= self.nonce < 2**63:
            raise ValidationError("nonce must be an integer in [0, 2**63)")
        if not isinstance(self.payload, dict):
            raise ValidationError("payload must be a map")
        if not isinstance(self.signature, bytes) or len(self.signature) != SIGNATURE_SIZE:
            raise ValidationError("signature must be 64 bytes")

    def _seal(self, body: bytes) -> None:
        if len(body) > MAX_PAYLOAD_BYTES + 512:
            raise ValidationError(f"transaction body is over {MAX_PAYLOAD_BYTES} bytes")
        object.__setattr__(self, "body", body)
        object.__setattr__(self, "hash", sha256_digest(body))

    def body_obj(self) -> dict[str, Value]:
        """The signed part."""
        return {
            "chain_id": self.chain_id,
            "kind": self.kind,
            "nonce": self.nonce,
            "payload": self.payload,
            "sender": self.sender,
        }

    @classmethod
    def create(
        cls, key: PrivateKey, chain_id: str, kind: str, nonce: int, payload: dict[str, Value]
    ) -> Transaction:
        """Build and sign a transaction with ``key``."""
        body = {
            "chain_id": chain_id,
            "kind": kind,
            "nonce": nonce,
            "payload": payload,
            "sender": key.public_key,
        }
        signature = key.sign(Purpose.TRANSACTION, chain_id, encode(body))
        return cls(kind, chain_id, key.public_key, nonce, payload, signature)

    def verify_signature(self) -> None:
        """Raise :class:`~ledger.errors.SignatureError` unless the sender signed this body."""
        verify(self.sender, Purpose.TRANSACTION, self.chain_id, self.body, self.signature)

    @classmethod
    def from_obj(cls, obj: Value, *, decoded: bool = False) -> Transaction:
        """The transaction in ``obj``.

        ``decoded`` says that ``obj`` came straight out of :func:`~ledger.encoding.decode`
        (so every map in it is canonical, keys in order): the signed body's bytes are then
        packed as they are instead of being canonicalised again.
        """
        if not decoded:
            return _RECORD.from_obj(obj)
        kind, chain_id, sender, nonce, payload, signature = _RECORD.values(obj)
        tx = cls.__new__(cls)
        setattr_ = object.__setattr__
        setattr_(tx, "kind", kind)
        setattr_(tx, "chain_id", chain_id)
        setattr_(tx, "sender", sender)
        setattr_(tx, "nonce", nonce)
        setattr_(tx, "payload", payload)
        setattr_(tx, "signature", signature)
        body = packb_canonical(
            {
                "chain_id": chain_id,
                "kind": kind,
                "nonce": nonce,
                "payload": payload,
                "sender": sender,
            }
        )
        if len(body) > MAX_PAYLOAD_BYTES + 512:
            raise DecodeError(f"transaction body is over {MAX_PAYLOAD_BYTES} bytes")
        setattr_(tx, "body", body)
        setattr_(tx, "hash", sha256_digest(body))
        return tx

    def encode(self) -> bytes:
        """``encode(self.to_obj())``, from the body's bytes: the signature sorts last."""
        return b"\x86" + self.body[1:] + _SIGNATURE_FIELD + self.signature

    @classmethod
    def decode(cls, data: bytes) -> Transaction:
        return cls.from_obj(decode(data, max_size=MAX_TX_BYTES), decoded=True)


_RECORD: Record[Transaction] = Transaction.__schema__


# Readers of an encoded transaction that need no decoding, for refusing junk cheaply
# (node.api.routes_txs): ``Transaction.encode`` ends with the sorted map's last two
# entries, the 32-byte sender and the 64-byte signature.
_SENDER_FIELD = b"\xa6sender\xc4\x20"
_SIG_TAIL = len(_SIGNATURE_FIELD) + SIGNATURE_SIZE
_MIN_ENCODED = 1 + len(_SENDER_FIELD) + PUBLIC_KEY_SIZE + _SIG_TAIL


def peek_sender(raw: bytes) -> bytes | None:
    """The sender of the canonical transaction ``raw``, read where :meth:`Transaction.encode`
    puts it (None when ``raw`` does not end like a canonical transaction)."""
    end = len(raw) - _SIG_TAIL
    if (
        len(raw) < _MIN_ENCODED
        or raw[0] != 0x86
        or raw[end : end + len(_SIGNATURE_FIELD)] != _SIGNATURE_FIELD
        or raw[end - PUBLIC_KEY_SIZE - len(_SENDER_FIELD) : end - PUBLIC_KEY_SIZE] != _SENDER_FIELD
    ):
        return None
    return raw[end - PUBLIC_KEY_SIZE : end]


def peek_hash(raw: bytes) -> bytes:
    """``Transaction.decode(raw).hash`` without decoding (for ``raw`` that
    :func:`peek_sender` accepts): SHA-256 of the signed body, which is the encoding minus
    the signature entry, as a map of five entries."""
    return sha256_digest(b"\x85" + raw[1:-_SIG_TAIL])
