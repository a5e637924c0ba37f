"""The peer handshake: who is at the other end of a link, proven before any frame.

With :class:`node.tls.LinkTLS` (every node started from a home), a link is first a TLS
1.3 session in which each side's certificate must be issued by an allowed consensus key
(:mod:`node.link_identity`); the acceptor checks the dialer's certificate again before
the WebSocket upgrade, the dialer the acceptor's before its first frame. Then, on the
WebSocket (both directions, before any other frame):

1. the acceptor sends ``{"challenge": c_a, "genesis": G, "key": K_a, "version": 3}``;
2. the dialer checks version, genesis hash and ``K_a`` (allowed, not banned, the key
   the TLS certificate binds), then answers ``{"challenge": c_d, "genesis": G, "key":
   K_d, "sig": S_d, "version": 3}`` where ``S_d`` signs (Purpose.HANDSHAKE, chain id)
   ``handshake_message(c_a, K_d, K_a, fp_server, fp_client)``;
3. the acceptor checks the same of ``K_d`` and ``S_d``, then answers ``{"sig": S_a}``
   over ``handshake_message(c_d, K_a, K_d, fp_server, fp_client)``;
4. the dialer checks ``S_a``.

``fp_server`` and ``fp_client`` are the SHA-256 fingerprints of the TLS certificates
as the signer sees them (empty without TLS), so a signature only verifies in the very
session it was made for. Challenges are 32 fresh random bytes, so a recorded handshake
cannot be replayed. Handshake frames are read up to :data:`HANDSHAKE_FRAME_BYTES`.
After it, each side sends canonical frames (:mod:`node.wire`, :mod:`node.peers`).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web

from ledger.crypto import PrivateKey, Purpose, is_valid_signature
from ledger.encoding import Value, decode, encode
from ledger.errors import LedgerError
from ledger.schema import HASH, PUBLIC_KEY, SIGNATURE, AnyValue, Int, Struct, read
from node.link_identity import LinkIdentityError, fingerprint
from node.tls import LinkTLS
from node.wire import PROTOCOL_VERSION, handshake_message

HANDSHAKE_FRAME_BYTES = 4096  # a handshake frame is decoded up to this size
NO_GENESIS = bytes(32)
CLOSE_REASON_BYTES = 120  # a WebSocket close reason holds at most 123
# The handshake's messages: the listener's hello, the dialer's with the signature
# (read after the cheaper checks), and the reply that carries only a signature.
_HELLO_FIELDS = {"challenge": HASH, "genesis": HASH, "key": PUBLIC_KEY, "version": Int()}
_HELLO = Struct(_HELLO_FIELDS)
_SIGNED_HELLO = Struct(_HELLO_FIELDS | {"sig": AnyValue()})
_REPLY = Struct({"sig": AnyValue()})

WebSocket = web.WebSocketResponse | aiohttp.ClientWebSocketResponse


class HandshakeError(LedgerError):
    code = "handshake"


class Banned(HandshakeError):
    """The peer's key is banned for misbehaviour (see :mod:`node.peers`)."""

    code = "banned"


@dataclass(frozen=True, slots=True)
class Session:
    """What a link's handshake is bound to: the SHA-256 fingerprints of the TLS
    session's server and client certificates, and the consensus key the peer's
    certificate is issued by (all empty on a plaintext link)."""

    server_cert: bytes = b""
    client_cert: bytes = b""
    tls_key: bytes | None = None


def _not_banned(_key: bytes) -> float:
    return 0.0


@dataclass(slots=True)
class Handshake:
    """One node's side of the handshake: its key, the chain and genesis it is on, the
    keys it lets in (``names``: allowed key -> display name), its links' TLS (None:
    plaintext links), and ``ban_left(key)``: seconds a key stays banned."""

    key: PrivateKey
    chain_id: str
    names: dict[bytes, str]
    tls: LinkTLS | None = None
    genesis_hash: bytes = NO_GENESIS
    ban_left: Callable[[bytes], float] = _not_banned

    def session(self, transport: asyncio.BaseTransport | None, *, server_side: bool) -> Session:
        """The link's :class:`Session`, its peer's certificate checked; a plain
        :class:`Session` when this node runs plaintext links."""
        if self.tls is None:
            return Session()
        ssl_object = None if transport is None else transport.get_extra_info("ssl_object")
        try:
            tls_key, der = self.tls.peer(ssl_object)
        except LinkIdentityError as exc:
            raise HandshakeError(f"TLS binding invalid: {exc}") from None
        ours, theirs = fingerprint(self.tls.cert), fingerprint(der)
        if server_side:
            return Session(ours, theirs, tls_key)
        return Session(theirs, ours, tls_key)

    async def accept(self, ws: web.WebSocketResponse, session: Session) -> bytes:
        """The acceptor's side (steps 1 and 3): the dialer's key, proven."""
        challenge = os.urandom(32)
        await ws.send_bytes(encode(self._hello(challenge)))
        m = read(_SIGNED_HELLO, _handshake_obj(await _receive(ws)), "hello")
        their_key: bytes = m["key"]
        self.check_hello(m, session)
        self._check_signature(their_key, challenge, m["sig"], session)
        await ws.send_bytes(encode({"sig": self._sign(m["challenge"], their_key, session)}))
        return their_key

    async def dial(self, ws: aiohttp.ClientWebSocketResponse, session: Session) -> bytes:
        """The dialer's side (steps 2 and 4): the acceptor's key, proven."""
        m = read(_HELLO, _handshake_obj(await _receive(ws)), "hello")
        their_key: bytes = m["key"]
        self.check_hello(m, session)  # before signing anything for it
        challenge = os.urandom(32)
        signed = self._hello(challenge) | {"sig": self._sign(m["challenge"], their_key, session)}
        await ws.send_bytes(encode(signed))
        reply = read(_REPLY, _handshake_obj(await _receive(ws)), "hello reply")
        self._check_signature(their_key, challenge, reply["sig"], session)
        return their_key

    def _hello(self, challenge: bytes) -> dict[str, Value]:
        return {
            "challenge": challenge,
            "genesis": self.genesis_hash,
            "key": self.key.public_key,
            "version": PROTOCOL_VERSION,
        }

    def _sign(self, their_challenge: bytes, their_key: bytes, session: Session) -> bytes:
        message = handshake_message(
            their_challenge,
            self.key.public_key,
            their_key,
            session.server_cert,
            session.client_cert,
        )
        return self.key.sign(Purpose.HANDSHAKE, self.chain_id, message)

    def check_hello(self, m: dict[str, Any], session: Session) -> None:
        """Everything about a peer's hello short of its signature (cheap checks)."""
        their_key: bytes = m["key"]
        if m["version"] != PROTOCOL_VERSION:
            raise HandshakeError(
                f"protocol version differs: ours {PROTOCOL_VERSION}, theirs {m['version']}"
            )
        if m["genesis"] != self.genesis_hash:
            raise HandshakeError(
                f"genesis hash differs: ours {self.genesis_hash.hex()[:16]}…, "
                f"theirs {m['genesis'].hex()[:16]}…"
            )
        if their_key not in self.names:
            raise HandshakeError(f"key {their_key.hex()[:16]}… is not in the validator set")
        if their_key == self.key.public_key:
            raise HandshakeError("refusing a link to ourselves")
        if session.tls_key is not None and session.tls_key != their_key:
            raise HandshakeError(
                f"TLS binding invalid: certificate of {self.names.get(session.tls_key, '?')}, "
                f"handshake key of {self.names[their_key]}"
            )
        left = self.ban_left(their_key)
        if left > 0:
            raise Banned(f"peer {self.names[their_key]} is banned for another {left:.0f} s")

    def _check_signature(
        self, their_key: bytes, our_challenge: bytes, sig: object, session: Session
    ) -> None:
        signature = read(SIGNATURE, sig, "handshake signature")
        message = handshake_message(
            our_challenge, their_key, self.key.public_key, session.server_cert, session.client_cert
        )
        if not is_valid_signature(their_key, Purpose.HANDSHAKE, self.chain_id, message, signature):
            raise HandshakeError("bad handshake signature (not made for this TLS session?)")


def transport_of(ws: aiohttp.ClientWebSocketResponse) -> asyncio.BaseTransport | None:
    """The transport (so the TLS session) of a dialed link."""
    connection = ws._response.connection
    return None if connection is None else connection.transport


def close_reason(exc: BaseException) -> bytes:
    """Why a handshake is refused, for the other side (a WebSocket close reason)."""
    cut = str(exc).encode()[:CLOSE_REASON_BYTES]
    return cut.decode(errors="ignore").encode()  # whole UTF-8 characters only


def _handshake_obj(data: bytes) -> Value:
    """A handshake frame decoded (at most :data:`HANDSHAKE_FRAME_BYTES`); a hello of
    protocol version 1 (no version field) is named as such."""
    obj = decode(data, max_size=HANDSHAKE_FRAME_BYTES)
    if isinstance(obj, dict) and "key" in obj and "version" not in obj:
        raise HandshakeError(f"protocol version differs: ours {PROTOCOL_VERSION}, theirs 1")
    return obj


async def _receive(ws: WebSocket) -> bytes:
    msg = await ws.receive()
    if msg.type == aiohttp.WSMsgType.CLOSE and msg.extra:
        said = "".join(c for c in str(msg.extra) if c.isprintable())[:CLOSE_REASON_BYTES]
        raise HandshakeError(f"the peer refused the link, saying: {said}")
    if msg.type != aiohttp.WSMsgType.BINARY:
        raise HandshakeError(f"expected a binary handshake frame, got {msg.type.name}")
    data: bytes = msg.data
    return data
