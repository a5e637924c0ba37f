"""A node's TLS key files and the TLS 1.3 contexts of its peer links.

Files in the node's home (:class:`node.config.Home`): ``tls_key.pem`` (the TLS key,
Ed25519, PKCS#8, mode 0600) and ``tls_cert.pem`` (its certificate, issued by the node's
consensus key: :mod:`node.link_identity`). Neither is secret to the rest of the network
and nobody else needs to know them: peers check the certificate against the consensus
key they already know. :func:`rotate_tls_key` replaces both; a running node loads them
into its contexts again on SIGHUP (:meth:`LinkTLS.reload`): new links use the new key,
open links keep theirs.

Both contexts are TLS 1.3 only, ``CERT_REQUIRED``, without host-name checks, and trust
exactly one anchor per allowed consensus key.
"""

from __future__ import annotations

import logging
import os
import ssl
import tempfile
from collections.abc import Iterable

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)

from ledger.crypto import PrivateKey
from ledger.errors import LedgerError
from ledger.keyfile import write_private_file
from node.link_identity import (
    LinkIdentityError,
    fingerprint,
    leaf_certificate,
    peer_key,
    trust_anchor,
)

log = logging.getLogger("cityledger.p2p")


class TLSFileError(LedgerError):
    code = "tls_files"


def anchors_pem(allowed: Iterable[bytes]) -> str:
    """The trust anchors of ``allowed`` consensus keys, PEM, one after the other."""
    return "".join(
        x509.load_der_x509_certificate(trust_anchor(key)).public_bytes(Encoding.PEM).decode()
        for key in sorted(set(allowed))
    )


def tls_context(*, server_side: bool, anchors: str) -> ssl.SSLContext:
    """A TLS 1.3-only, mutually authenticated context trusting ``anchors`` only."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if server_side else ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.maximum_version = ssl.TLSVersion.TLSv1_3
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_REQUIRED
    if anchors:
        ctx.load_verify_locations(cadata=anchors)
    return ctx


def api_context() -> ssl.SSLContext:
    """The API's HTTPS context: TLS 1.3 with the node's certificate, no client
    certificate asked for (API clients sign their requests: node/api/auth.py)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    return ctx


def key_pem(tls_key: ed25519.Ed25519PrivateKey) -> bytes:
    return tls_key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())


def cert_pem(der: bytes) -> bytes:
    return x509.load_der_x509_certificate(der).public_bytes(Encoding.PEM)


def load_identity(ctx: ssl.SSLContext, tls_key: ed25519.Ed25519PrivateKey, der: bytes) -> None:
    """Load a TLS key and its certificate into ``ctx`` (through a private temporary
    directory: ``ssl`` reads them from files only), for new connections."""
    with tempfile.TemporaryDirectory(prefix="cityledger-tls-") as directory:
        key_path = os.path.join(directory, "key.pem")
        cert_path = os.path.join(directory, "cert.pem")
        write_private_file(key_path, key_pem(tls_key))
        write_private_file(cert_path, cert_pem(der))
        ctx.load_cert_chain(cert_path, key_path)


def new_identity(consensus_key: PrivateKey) -> tuple[ed25519.Ed25519PrivateKey, bytes]:
    """A fresh TLS key and its certificate issued by ``consensus_key``."""
    tls_key = ed25519.Ed25519PrivateKey.generate()
    return tls_key, leaf_certificate(consensus_key, tls_key)


def read_identity(
    key_path: str, cert_path: str, consensus_key: PrivateKey
) -> tuple[ed25519.Ed25519PrivateKey, bytes]:
    """The TLS key and certificate in these files, checked: the key is an Ed25519 key,
    the certificate carries it and is issued by ``consensus_key``."""
    tls_key = _read_key(key_path)
    try:
        with open(cert_path, "rb") as f:
            der = x509.load_pem_x509_certificate(f.read()).public_bytes(Encoding.DER)
    except (OSError, ValueError) as exc:
        raise TLSFileError(
            f"{cert_path}: not a readable PEM certificate ({_first_line(exc)})"
        ) from None
    try:
        peer_key(der, {consensus_key.public_key})
    except LinkIdentityError as exc:
        raise TLSFileError(f"{cert_path}: not issued by this node's key ({exc})") from None
    if x509.load_der_x509_certificate(der).public_key() != tls_key.public_key():
        raise TLSFileError(f"{cert_path} does not carry the key in {key_path}")
    return tls_key, der


def write_identity(
    key_path: str, cert_path: str, tls_key: ed25519.Ed25519PrivateKey, der: bytes
) -> None:
    """Write (or replace) the two files, each created mode 0600 and renamed into place."""
    for path, data in ((key_path, key_pem(tls_key)), (cert_path, cert_pem(der))):
        staged = f"{path}.new"
        if os.path.lexists(staged):
            os.unlink(staged)
        write_private_file(staged, data)
        os.replace(staged, path)


def ensure_identity(key_path: str, cert_path: str, consensus_key: PrivateKey) -> bool:
    """Create the TLS key and certificate where there is no key file yet (True if
    created); an existing key without a certificate gets one."""
    if not os.path.lexists(key_path):
        write_identity(key_path, cert_path, *new_identity(consensus_key))
        return True
    if not os.path.lexists(cert_path):
        tls_key = _read_key(key_path)
        write_identity(key_path, cert_path, tls_key, leaf_certificate(consensus_key, tls_key))
        return True
    return False


def rotate_tls_key(key_path: str, cert_path: str, consensus_key: PrivateKey) -> bytes:
    """Replace the TLS key and certificate with new ones; the new certificate's
    SHA-256 fingerprint."""
    tls_key, der = new_identity(consensus_key)
    write_identity(key_path, cert_path, tls_key, der)
    return fingerprint(der)


def _read_key(key_path: str) -> ed25519.Ed25519PrivateKey:
    try:
        with open(key_path, "rb") as f:
            tls_key = load_pem_private_key(f.read(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise TLSFileError(
            f"{key_path}: not a readable PEM private key ({_first_line(exc)})"
        ) from None
    if not isinstance(tls_key, ed25519.Ed25519PrivateKey):
        raise TLSFileError(f"{key_path}: not an Ed25519 key")
    return tls_key


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


class LinkTLS:
    """The TLS side of a node's peer links: its two contexts (and the API's, with the
    same certificate), its certificate, and the consensus keys it accepts (validators
    and configured observers)."""

    def __init__(
        self,
        consensus_key: PrivateKey,
        allowed: Iterable[bytes],
        tls_key: ed25519.Ed25519PrivateKey,
        der: bytes,
        *,
        files: tuple[str, str] | None = None,
    ) -> None:
        """``files``: (key path, cert path) that :meth:`reload` reads again."""
        self.consensus_key = consensus_key
        self.allowed = frozenset(allowed)
        self.files = files
        anchors = anchors_pem(self.allowed)
        self.server = tls_context(server_side=True, anchors=anchors)
        self.client = tls_context(server_side=False, anchors=anchors)
        self.api = api_context()
        self.cert = b""
        self._use(tls_key, der)

    @classmethod
    def from_files(
        cls, consensus_key: PrivateKey, allowed: Iterable[bytes], key_path: str, cert_path: str
    ) -> LinkTLS:
        tls_key, der = read_identity(key_path, cert_path, consensus_key)
        return cls(consensus_key, allowed, tls_key, der, files=(key_path, cert_path))

    @classmethod
    def ephemeral(cls, consensus_key: PrivateKey, allowed: Iterable[bytes]) -> LinkTLS:
        """A TLS key that lives in memory only (in-process nodes and test tools)."""
        return cls(consensus_key, allowed, *new_identity(consensus_key))

    def _use(self, tls_key: ed25519.Ed25519PrivateKey, der: bytes) -> None:
        for ctx in (self.server, self.client, self.api):
            load_identity(ctx, tls_key, der)
        self.cert = der

    def allow(self, keys: Iterable[bytes]) -> None:
        """Trust ``keys`` too, from the next TLS handshake on (a validator a set change
        added, an observer newly configured)."""
        new = frozenset(keys) - self.allowed
        if not new:
            return
        self.allowed = self.allowed | new
        anchors = anchors_pem(new)
        for ctx in (self.server, self.client):
            ctx.load_verify_locations(cadata=anchors)  # adds to the trusted anchors

    def withdraw(self, keys: Iterable[bytes]) -> None:
        """Trust ``keys`` no more (a retired validator key). An SSL context cannot drop
        an anchor, so the TLS handshake may still complete; the link's identity check
        (:func:`node.link_identity.peer_key` against :attr:`allowed`) then refuses it."""
        self.allowed = self.allowed - frozenset(keys)

    def reload(self) -> bool:
        """Read the key files again and use them for new links (open links keep
        theirs); False, with the reason logged, if they are unusable."""
        if self.files is None:
            return False
        try:
            tls_key, der = read_identity(*self.files, self.consensus_key)
        except TLSFileError as exc:
            log.error("TLS key not reloaded, new links keep the current one: %s", exc)
            return False
        self._use(tls_key, der)
        log.info("TLS key reloaded: new links use certificate sha256:%s", fingerprint(der).hex())
        return True

    def peer(self, ssl_object: ssl.SSLObject | ssl.SSLSocket | None) -> tuple[bytes, bytes]:
        """The consensus key and DER certificate of the peer of a TLS session, checked
        again here (:func:`node.link_identity.peer_key`)."""
        der = None if ssl_object is None else ssl_object.getpeercert(binary_form=True)
        if not der:
            raise LinkIdentityError("the link has no TLS session or no peer certificate")
        return peer_key(der, self.allowed), der
