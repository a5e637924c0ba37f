"""The X.509 certificates of peer links: a node's TLS key bound to its validator key.

No certificate authority and no expiry. Each node has a TLS key (Ed25519) separate from
its consensus key; its *leaf* certificate carries the TLS key and is signed by the
consensus key (RFC 8410), issuer name :func:`validator_name` of the consensus key,
valid until 9999-12-31T23:59:59Z (RFC 5280 §4.1.2.5: no well-defined expiration).

A node trusts, as TLS trust anchors, one CA certificate per allowed key (validators
and configured observers): :func:`trust_anchor` puts that consensus public key in a
certificate named :func:`validator_name` of it. OpenSSL does not check a trust
anchor's own signature (``X509_V_FLAG_CHECK_SS_SIGNATURE`` is off), so a node builds
the anchors from public keys alone; what OpenSSL checks is the leaf's signature by the
anchor's key — by the validator's consensus key. :func:`peer_key` checks the same
again after the handshake, in the application (chain depth 1, issuer allowed, leaf
signed by the issuer's key).
"""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Container

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from ledger.crypto import PUBLIC_KEY_SIZE, PrivateKey
from ledger.errors import LedgerError

NOT_BEFORE = datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC)
NOT_AFTER = datetime.datetime(9999, 12, 31, 23, 59, 59, tzinfo=datetime.UTC)
VALIDATOR_ORG = "CityLedger validator key"
TLS_ORG = "CityLedger TLS key"
# An anchor's own signature is never checked (see the module docstring): it is made
# with this fixed, public key only because an X.509 certificate must carry one.
_ANCHOR_FILLER = ed25519.Ed25519PrivateKey.from_private_bytes(
    hashlib.sha256(b"cityledger/v1/tls-anchor-filler").digest()
)
# AlgorithmIdentifier for Ed25519 (RFC 8410 §3): SEQUENCE { OID 1.3.101.112 }
_ED25519_ALGORITHM = bytes.fromhex("300506032b6570")


class LinkIdentityError(LedgerError):
    """A peer's TLS certificate does not bind it to an allowed key."""

    code = "tls_binding"


def validator_name(public_key: bytes) -> x509.Name:
    """The X.509 name of a consensus key: its hex as common name."""
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, VALIDATOR_ORG),
            x509.NameAttribute(NameOID.COMMON_NAME, public_key.hex()),
        ]
    )


def trust_anchor(public_key: bytes) -> bytes:
    """The DER trust anchor for one allowed consensus key (a CA certificate)."""
    key = ed25519.Ed25519PublicKey.from_public_bytes(public_key)
    name = validator_name(public_key)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key)
        .serial_number(1)
        .not_valid_before(NOT_BEFORE)
        .not_valid_after(NOT_AFTER)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(_ANCHOR_FILLER, None)
    )
    return cert.public_bytes(Encoding.DER)


def leaf_certificate(consensus_key: PrivateKey, tls_key: ed25519.Ed25519PrivateKey) -> bytes:
    """The DER certificate of ``tls_key``, issued (signed) by ``consensus_key``."""
    serial = x509.random_serial_number()
    builder = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, TLS_ORG),
                    x509.NameAttribute(NameOID.COMMON_NAME, consensus_key.public_key.hex()),
                ]
            )
        )
        .issuer_name(validator_name(consensus_key.public_key))
        .public_key(tls_key.public_key())
        .serial_number(serial)
        .not_valid_before(NOT_BEFORE)
        .not_valid_after(NOT_AFTER)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    )
    # Built (and signed) with the TLS key only to get the TBSCertificate: its signature
    # algorithm is Ed25519 whichever Ed25519 key signs, and the consensus key signs it.
    tbs = builder.sign(tls_key, None).tbs_certificate_bytes
    signature = consensus_key.sign_x509(tbs)
    return _der_sequence(tbs + _ED25519_ALGORITHM + _der_bit_string(signature))


def fingerprint(der: bytes) -> bytes:
    """SHA-256 of a certificate's DER bytes (what the peer handshake signs)."""
    return hashlib.sha256(der).digest()


def peer_key(der: bytes, allowed: Container[bytes]) -> bytes:
    """The consensus key a peer's leaf certificate binds its TLS key to, checked: the
    issuer names an allowed key, the leaf is not a CA, and that key signed it."""
    try:
        cert = x509.load_der_x509_certificate(der)
    except ValueError as exc:
        raise LinkIdentityError(f"the peer's TLS certificate does not parse ({exc})") from None
    key = issuer_key(cert)
    if key not in allowed:
        raise LinkIdentityError(f"TLS certificate issued by {key.hex()[:16]}…, not an allowed key")
    if _is_ca(cert):
        raise LinkIdentityError("the peer's TLS certificate is a CA certificate, not a leaf")
    try:
        ed25519.Ed25519PublicKey.from_public_bytes(key).verify(
            cert.signature, cert.tbs_certificate_bytes
        )
    except InvalidSignature:
        raise LinkIdentityError(
            f"TLS certificate not signed by the key it names ({key.hex()[:16]}…)"
        ) from None
    return key


def issuer_key(cert: x509.Certificate) -> bytes:
    """The consensus key a certificate's issuer name stands for."""
    names = cert.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)
    text = str(names[0].value) if len(names) == 1 else ""
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) != PUBLIC_KEY_SIZE or cert.issuer != validator_name(key):
        raise LinkIdentityError("the TLS certificate's issuer is not a validator key name")
    return key


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def _der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _der_sequence(content: bytes) -> bytes:
    return b"\x30" + _der_length(len(content)) + content


def _der_bit_string(data: bytes) -> bytes:
    return b"\x03" + _der_length(len(data) + 1) + b"\x00" + data
