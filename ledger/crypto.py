"""Ed25519 keys and domain-separated signatures (PyNaCl).

Signed bytes are ``tag || len(chain_id) || chain_id || message`` where ``tag`` is
one fixed string per purpose. A signature made for one purpose or one chain
therefore never verifies for another.
"""

from __future__ import annotations

import hashlib
from enum import Enum

import nacl.bindings
import nacl.exceptions
import nacl.signing

from ledger.errors import SignatureError, ValidationError
from ledger.verdicts import GOOD, verdict_key

PUBLIC_KEY_SIZE = 32
SIGNATURE_SIZE = 64
SEED_SIZE = 32
X509_FIRST_BYTE = 0x30  # a DER SEQUENCE: the first byte of every TBSCertificate


class Purpose(Enum):
    """One domain tag per thing we sign."""

    TRANSACTION = b"cityledger/v1/transaction\x00"
    PROPOSAL = b"cityledger/v1/proposal\x00"
    VOTE = b"cityledger/v1/vote\x00"
    HANDSHAKE = b"cityledger/v1/peer-handshake\x00"
    METER_READING = b"cityledger/v1/meter-reading\x00"
    API_REQUEST = b"cityledger/v1/api-request\x00"
    CHECKPOINT = b"cityledger/v1/checkpoint\x00"
    GENESIS = b"cityledger/v1/genesis\x00"  # a founding agency's signature of the genesis hash
    JOIN_REQUEST = b"cityledger/v1/join-request\x00"  # an admin key over its join request
    POSSESSION = b"cityledger/v1/validator-possession\x00"  # a validator key over its request
    VALIDATOR_KEY = b"cityledger/v1/validator-key\x00"  # proof of possession (gov rotate)
    HEAD = b"cityledger/v1/head\x00"  # "my committed head at time T" (ledger/head.py)


def signing_bytes(purpose: Purpose, chain_id: str, message: bytes) -> bytes:
    """The exact bytes that get signed for ``message`` under ``purpose`` on ``chain_id``."""
    chain = chain_id.encode()
    if not 0 < len(chain) < 256:
        raise ValidationError("chain id must be 1..255 bytes of UTF-8")
    return purpose.value + bytes([len(chain)]) + chain + message


class PrivateKey:
    """An Ed25519 signing key. The seed never leaves this object except to a key file."""

    __slots__ = ("_key", "public_key")

    def __init__(self, seed: bytes) -> None:
        if len(seed) != SEED_SIZE:
            raise ValidationError(f"an Ed25519 seed is {SEED_SIZE} bytes, got {len(seed)}")
        self._key = nacl.signing.SigningKey(seed)
        self.public_key: bytes = bytes(self._key.verify_key)

    @classmethod
    def generate(cls) -> PrivateKey:
        """A fresh key from the operating system's randomness."""
        return cls(bytes(nacl.signing.SigningKey.generate()))

    @classmethod
    def from_label(cls, label: str) -> PrivateKey:
        """A deterministic key for tests, simulations and demo data only."""
        return cls(hashlib.sha256(b"cityledger-test-key:" + label.encode()).digest())

    @property
    def seed(self) -> bytes:
        return bytes(self._key)

    def sign(self, purpose: Purpose, chain_id: str, message: bytes) -> bytes:
        """A 64-byte signature over ``message`` for ``purpose`` on ``chain_id``."""
        signed = self._key.sign(signing_bytes(purpose, chain_id, message))
        return bytes(signed.signature)

    def sign_x509(self, tbs_certificate: bytes) -> bytes:
        """A plain Ed25519 signature (RFC 8410) over a DER ``TBSCertificate``: the node's
        TLS certificate (node.link_identity). Only bytes that start like a DER SEQUENCE
        (0x30) are signed this way; every :class:`Purpose` tag starts with ``c``
        (0x63), so no signature made here is one over any message :meth:`sign` makes,
        nor the reverse (docs/consensus.md, "Domain separation")."""
        if not tbs_certificate or tbs_certificate[0] != X509_FIRST_BYTE:
            raise ValidationError("only a DER TBSCertificate (starting with 0x30) is signed raw")
        return bytes(self._key.sign(tbs_certificate).signature)

    def __repr__(self) -> str:
        return f"PrivateKey(public={self.public_key.hex()[:16]}…)"


def verify(
    public_key: bytes, purpose: Purpose, chain_id: str, message: bytes, signature: bytes
) -> None:
    """Raise :class:`SignatureError` unless ``signature`` is valid for exactly these inputs."""
    if len(public_key) != PUBLIC_KEY_SIZE:
        raise SignatureError(f"public key must be {PUBLIC_KEY_SIZE} bytes")
    if len(signature) != SIGNATURE_SIZE:
        raise SignatureError(f"signature must be {SIGNATURE_SIZE} bytes")
    try:
        nacl.bindings.crypto_sign_open(
            signature + signing_bytes(purpose, chain_id, message), public_key
        )
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError, ValueError):
        raise SignatureError(
            f"bad {purpose.name.lower().replace('_', ' ')} signature "
            f"for key {public_key.hex()[:16]}…"
        ) from None


def is_valid_signature(
    public_key: bytes, purpose: Purpose, chain_id: str, message: bytes, signature: bytes
) -> bool:
    """Boolean form of :func:`verify`; a signature the node's worker already found good
    (:mod:`ledger.verdicts`, for the same key, signature and signed bytes) is not
    checked again."""
    if len(public_key) == PUBLIC_KEY_SIZE and len(signature) == SIGNATURE_SIZE:
        key = verdict_key(public_key, signature, signing_bytes(purpose, chain_id, message))
        if GOOD.known(key):
            return True
    try:
        verify(public_key, purpose, chain_id, message, signature)
    except SignatureError:
        return False
    return True
