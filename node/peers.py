"""Authenticated peer links: aiohttp WebSockets inside mutual TLS 1.3.

With :class:`node.tls.LinkTLS` (every node started from a home), a link is first a TLS
1.3 session in which each side's certificate must be issued by an allowed consensus key
(:mod:`node.link_identity`); the acceptor checks the dialer's certificate again before
the WebSocket upgrade, the dialer the acceptor's before its first frame. Then, on the
WebSocket (both directions, before any other frame):

1. the acceptor sends ``{"challenge": c_a, "genesis": G, "key": K_a, "version": 2}``;
2. the dialer checks version, genesis hash and ``K_a`` (allowed, not banned, the key
   the TLS certificate binds), then answers ``{"challenge": c_d, "genesis": G, "key":
   K_d, "sig": S_d, "version": 2}`` where ``S_d`` signs (Purpose.HANDSHAKE, chain id)
   ``handshake_message(c_a, K_d, K_a, fp_server, fp_client)``;
3. the acceptor checks the same of ``K_d`` and ``S_d``, then answers ``{"sig": S_a}``
   over ``handshake_message(c_d, K_a, K_d, fp_server, fp_client)``;
4. the dialer checks ``S_a``.

``fp_server`` and ``fp_client`` are the SHA-256 fingerprints of the TLS certificates
as the signer sees them (empty without TLS), so a signature only verifies in the very
session it was made for. Challenges are 32 fresh random bytes, so a recorded handshake
cannot be replayed. After it, each side sends canonical frames (:mod:`node.wire`).

Before a peer is authenticated: a connection must finish its TLS handshake within
``handshake_timeout_ms`` (:mod:`node.listen`); then at most ``max_pending_handshakes``
links are in the peer handshake (:attr:`PeerManager.pending`), ``max_pending_per_address``
from one address, each for at most ``handshake_timeout_ms``; handshake frames are read
up to 4 KiB. Without TLS (a
loopback-only setting, :mod:`node.config`) WebSocket frames up to ``max_frame_bytes``
are buffered before the handshake: TLS is what keeps them from unauthenticated
senders. A refused link is not blamed on anyone (no score changes): its reason is
logged once per back-off step on the dialing side and at most once per
``reconnect_max_ms`` and reason on the accepting side.

Sending: each link has a send queue bounded in bytes
(``send_queue_bytes``) and in frames (``send_queue``). A frame that does not fit is
dropped and counted (``Peer.dropped``, ``Peer.dropped_bytes``): consensus messages and
statuses are re-sent every second and transactions are gossiped again by others, so
nothing depends on one frame. Into an empty queue any frame goes, so one frame larger
than the budget (up to ``max_frame_bytes``) is never starved. A sync response does not
drop: its sender waits for room (:meth:`PeerManager.deliver`, off the read loop), and
gives up when the link closes or the wait outlasts the asker's timeout.

Scores and bans: every peer key has a score, 0 when nothing is known against it, that
recovers ``SCORE_RECOVERY_PER_S`` points a second up to 0. Misbehaviour costs points
(:meth:`PeerManager.penalise`): ``SEVERE`` for a malformed, non-binary or oversize frame,
a bad signature or a block that does not check out — the link is closed too; ``MINOR``
for an unsolicited sync response or a sync request while one is being served — the
frame is dropped and the link kept. A score at or below ``ban_threshold`` closes the
link and bans the key: it is refused at the handshake (and not dialed) for
``ban_min_ms``, doubled for each earlier ban of the key, at most ``ban_max_ms``; the
score starts again from 0. The ban is logged once with its reason, refusals meanwhile
only at debug level.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import ssl
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from ledger.crypto import PrivateKey, Purpose, is_valid_signature
from ledger.encoding import Value, decode, encode
from ledger.errors import DecodeError, LedgerError
from ledger.schema import HASH, PUBLIC_KEY, SIGNATURE, AnyValue, Int, Struct, read
from node.config import P2PConfig
from node.link_identity import LinkIdentityError, fingerprint
from node.listen import PendingCount
from node.tls import LinkTLS
from node.wire import (
    PROTOCOL_VERSION,
    SYNC_RESP_TAIL,
    KnownTx,
    WireMessage,
    decode_message,
    encode_message,
    handshake_message,
)

log = logging.getLogger("cityledger.p2p")
HANDSHAKE_FRAME_BYTES = 4096  # a handshake frame is decoded up to this size
NO_GENESIS = bytes(32)
CLOSE_REASON_BYTES = 120  # a WebSocket close reason holds at most 123
# The handshake's messages: the listener's hello, the dialer's with the signature
# (read after the cheaper checks), and the reply that carries only a signature.
_HELLO_FIELDS = {"challenge": HASH, "genesis": HASH, "key": PUBLIC_KEY, "version": Int()}
_HELLO = Struct(_HELLO_FIELDS)
_SIGNED_HELLO = Struct(_HELLO_FIELDS | {"sig": AnyValue()})
_REPLY = Struct({"sig": AnyValue()})
SEVERE = 20  # points: malformed / oversize frame, bad signature, bad block (link closed)
MINOR = 5  # points: unsolicited sync response, excess sync request (frame dropped)
SCORE_RECOVERY_PER_S = 1.0  # a score recovers this much per second, up to 0
DEFAULT_QUEUE_BYTES = P2PConfig().send_queue_bytes
DEFAULT_QUEUE_FRAMES = P2PConfig().send_queue
# aiohttp reports these as an ERROR message: the peer broke the protocol (an oversize
# frame is MESSAGE_TOO_BIG), unlike a reset connection.
_PROTOCOL_CLOSE_CODES = frozenset(
    {
        aiohttp.WSCloseCode.MESSAGE_TOO_BIG,
        aiohttp.WSCloseCode.PROTOCOL_ERROR,
        aiohttp.WSCloseCode.INVALID_TEXT,
        aiohttp.WSCloseCode.UNSUPPORTED_DATA,
    }
)


class HandshakeError(LedgerError):
    code = "handshake"


class Banned(HandshakeError):
    """The peer's key is banned for misbehaviour (see the module docstring)."""

    code = "banned"


@dataclass(frozen=True, slots=True)
class Session:
    """What a link's handshake is bound to: the SHA-256 fingerprints of the TLS
    session's server and client certificates, and the consensus key the peer's
    certificate is issued by (all empty on a plaintext link)."""

    server_cert: bytes = b""
    client_cert: bytes = b""
    tls_key: bytes | None = None


class SendQueue:
    """Frames waiting to be written to one peer, bounded in bytes and in frames.

    ``bytes`` counts the frames queued, not the one being written (at most one more)."""

    def __init__(
        self, max_bytes: int = DEFAULT_QUEUE_BYTES, max_frames: int = DEFAULT_QUEUE_FRAMES
    ) -> None:
        self.max_bytes = max_bytes
        self.max_frames = max_frames
        self.bytes = 0
        self._frames: deque[bytes] = deque()
        self._readable = asyncio.Event()
        self._room = asyncio.Event()

    def fits(self, size: int) -> bool:
        """Whether a frame of ``size`` bytes may be queued now (always into an empty queue)."""
        if not self._frames:
            return True
        return len(self._frames) < self.max_frames and self.bytes + size <= self.max_bytes

    def put_nowait(self, frame: bytes) -> bool:
        """Queue ``frame`` if it fits; False (nothing queued) if not."""
        if not self.fits(len(frame)):
            return False
        self._frames.append(frame)
        self.bytes += len(frame)
        self._readable.set()
        return True

    async def put(self, frame: bytes) -> None:
        """Queue ``frame`` once it fits (cancelled while waiting, it queued nothing)."""
        while not self.fits(len(frame)):
            self._room.clear()
            await self._room.wait()
        self.put_nowait(frame)

    async def get(self) -> bytes:
        while not self._frames:
            self._readable.clear()
            await self._readable.wait()
        return self.get_nowait()

    def get_nowait(self) -> bytes:
        if not self._frames:
            raise asyncio.QueueEmpty
        frame = self._frames.popleft()
        self.bytes -= len(frame)
        self._room.set()
        return frame

    def empty(self) -> bool:
        return not self._frames

    def qsize(self) -> int:
        return len(self._frames)


@dataclass(eq=False)
class Peer:
    key: bytes
    name: str
    ws: web.WebSocketResponse | aiohttp.ClientWebSocketResponse
    dialed_by_us: bool
    queue: SendQueue = field(default_factory=SendQueue)
    height: int = 0
    dropped: int = 0  # frames refused by a full send queue
    dropped_bytes: int = 0
    serving: bool = False  # a sync request of this peer is being answered (node.sync)
    sync_owed: int = 0  # our sync requests to this peer not answered yet (node.sync)
    closing: bool = False  # we are closing the link: its further frames are ignored

    def send(self, frame: bytes) -> bool:
        if self.queue.put_nowait(frame):
            return True
        self.dropped += 1
        self.dropped_bytes += len(frame)
        return False


OnMessage = Callable[[Peer, WireMessage], Awaitable[None]]
OnConnect = Callable[[Peer], Awaitable[None]]
Seen = Callable[[bytes], bool]


class PeerManager:
    """All of a node's links: accept, dial with backoff, authenticate, route frames,
    score peers and keep banned ones out."""

    def __init__(
        self,
        key: PrivateKey,
        chain_id: str,
        names: dict[bytes, str],
        config: P2PConfig,
        on_message: OnMessage,
        on_connect: OnConnect,
        *,
        seen: Seen | None = None,
        known_tx: KnownTx | None = None,
        clock: Callable[[], float] = time.monotonic,
        tls: LinkTLS | None = None,
        genesis_hash: bytes = NO_GENESIS,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        """``seen(frame)`` says a frame was already handled (a relayed copy, a re-send):
        it is dropped before it is decoded. ``known_tx`` is passed to
        :func:`node.wire.decode_message`. ``clock`` times scores and bans. ``tls``:
        the links' TLS (None: plaintext links). ``genesis_hash``: both sides of a link
        must have the same. ``wall_clock`` dates :attr:`missing_since`."""
        self.key = key
        self.chain_id = chain_id
        self.names = names  # allowed keys -> display name
        self.config = config
        self.on_message = on_message
        self.on_connect = on_connect
        self.clock = clock
        self.tls = tls
        self.genesis_hash = genesis_hash
        self.wall_clock = wall_clock
        self.peers: dict[bytes, Peer] = {}
        self.scores: dict[bytes, float] = {}  # by key: as of _scored_at
        self._scored_at: dict[bytes, float] = {}
        self.bans: dict[bytes, int] = {}  # by key: how many times it was banned
        self.banned_until: dict[bytes, float] = {}
        self.refused = 0
        self.bad_frames = 0
        self.duplicate_frames = 0
        self.unsolicited_frames = 0
        self.seen = seen
        self.known_tx = known_tx
        self.missing_since: dict[bytes, float] = {}  # allowed key -> wall time we lost it
        self.dial_failures: dict[str, str] = {}  # address -> why the last dial failed
        # links in the peer handshake, capped per source address and in all
        self.pending = PendingCount(config.max_pending_handshakes, config.max_pending_per_address)
        self._refusals_logged: dict[tuple[str, str], float] = {}
        self._address_keys: dict[str, bytes] = {}
        self._session: aiohttp.ClientSession | None = None
        self._closing: set[asyncio.Future[bool]] = set()

    def expect(self, keys: list[bytes]) -> None:
        """Count ``keys`` (the other validators) as missing from now until they connect."""
        now = self.wall_clock()
        for key in keys:
            if key not in self.peers and key != self.key.public_key:
                self.missing_since.setdefault(key, now)

    @property
    def handshake_timeout_s(self) -> float:
        return self.config.handshake_timeout_ms / 1000

    # --- accepting ----------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """aiohttp handler for ``GET /p2p``."""
        remote = request.remote or "unknown"
        if not self.pending.take(remote):
            self.refused += 1
            self._log_refusal(remote, "too many links in the handshake from it or in all")
            return web.Response(status=503, text="too many pending handshakes")
        ws = web.WebSocketResponse(max_msg_size=self.config.max_frame_bytes, heartbeat=10.0)
        try:
            async with asyncio.timeout(self.handshake_timeout_s):
                session = self._tls_session(request.transport, server_side=True)
                await ws.prepare(request)
                peer_key = await self._accept_handshake(ws, session)
        except (HandshakeError, DecodeError, TimeoutError, aiohttp.ClientError) as exc:
            self.refused += 1
            self._log_refusal(remote, str(exc), debug=isinstance(exc, Banned))
            if not ws.prepared:
                return web.Response(status=403, text=_close_reason(exc).decode())
            await ws.close(code=aiohttp.WSCloseCode.POLICY_VIOLATION, message=_close_reason(exc))
            return ws
        finally:
            self.pending.release(remote)
        await self._serve(self._peer(peer_key, ws, dialed_by_us=False))
        return ws

    def _tls_session(
        self, transport: asyncio.BaseTransport | None, *, server_side: bool
    ) -> Session:
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

    async def _accept_handshake(self, ws: web.WebSocketResponse, session: Session) -> bytes:
        challenge = os.urandom(32)
        await ws.send_bytes(encode(self._hello(challenge)))
        m = read(_SIGNED_HELLO, _handshake_obj(await _receive(ws)), "hello")
        their_key: bytes = m["key"]
        self._check_hello(m, session)
        self._check_signature(their_key, challenge, m["sig"], session)
        message = handshake_message(
            m["challenge"], self.key.public_key, their_key, session.server_cert, session.client_cert
        )
        await ws.send_bytes(
            encode({"sig": self.key.sign(Purpose.HANDSHAKE, self.chain_id, message)})
        )
        return their_key

    def _hello(self, challenge: bytes) -> dict[str, Value]:
        return {
            "challenge": challenge,
            "genesis": self.genesis_hash,
            "key": self.key.public_key,
            "version": PROTOCOL_VERSION,
        }

    def _log_refusal(self, remote: str, why: str, *, debug: bool = False) -> None:
        """Log a refused incoming link, at most once per ``reconnect_max_ms`` for one
        source address and reason (a misconfigured peer retries for ever)."""
        now = self.clock()
        last = self._refusals_logged.get((remote, why))
        if debug or (last is not None and now - last < self.config.reconnect_max_ms / 1000):
            log.debug("refused peer from %s: %s", remote, why)
            return
        if len(self._refusals_logged) > 4096:
            self._refusals_logged.clear()
        self._refusals_logged[(remote, why)] = now
        log.warning("refused peer from %s: %s", remote, why)

    # --- dialing ------------------------------------------------------------------------

    async def dial_forever(self, address: str) -> None:
        """Keep a link to ``address`` up, reconnecting with jittered exponential backoff;
        not while the key last seen there is banned. Why a dial failed is logged when
        the reason changes or the back-off grows, and kept in :attr:`dial_failures`."""
        delay = self.config.reconnect_min_ms / 1000
        last_reason = ""
        while True:
            known = self._address_keys.get(address)
            if known is not None and (known in self.peers or self.ban_left(known) > 0):
                await asyncio.sleep(1.0)
                continue
            try:
                await self._dial(address)
                delay = self.config.reconnect_min_ms / 1000
                last_reason = ""
            except (OSError, aiohttp.ClientError, HandshakeError, DecodeError, TimeoutError) as exc:
                reason = _failure(exc)
                grows = delay < self.config.reconnect_max_ms / 1000
                level = logging.WARNING if reason != last_reason or grows else logging.DEBUG
                log.log(level, "link to %s failed: %s; retrying in %.1f s", address, reason, delay)
                self.dial_failures[address] = reason
                last_reason = reason
            await asyncio.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, self.config.reconnect_max_ms / 1000)

    async def _dial(self, address: str) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        scheme = "http" if self.tls is None else "https"
        # Bounded like the handshake: a peer behind a partition must not hold this dial
        # (and so the link) for the session's default 5 minutes once the network heals.
        async with asyncio.timeout(self.handshake_timeout_s):
            ws = await self._session.ws_connect(
                f"{scheme}://{address}/p2p",
                max_msg_size=self.config.max_frame_bytes,
                heartbeat=10.0,
                timeout=aiohttp.ClientWSTimeout(ws_close=2.0),
                ssl=False if self.tls is None else self.tls.client,
            )
        async with ws:
            try:
                async with asyncio.timeout(self.handshake_timeout_s):
                    session = self._tls_session(_transport_of(ws), server_side=False)
                    peer_key = await self._dial_handshake(ws, session)
            except (HandshakeError, DecodeError) as exc:  # the acceptor learns why too
                await ws.close(
                    code=aiohttp.WSCloseCode.POLICY_VIOLATION, message=_close_reason(exc)
                )
                raise
            self._address_keys[address] = peer_key
            self.dial_failures.pop(address, None)
            await self._serve(self._peer(peer_key, ws, dialed_by_us=True))

    async def _dial_handshake(self, ws: aiohttp.ClientWebSocketResponse, session: Session) -> bytes:
        m = read(_HELLO, _handshake_obj(await _receive(ws)), "hello")
        their_key: bytes = m["key"]
        self._check_hello(m, session)  # before signing anything for it
        challenge = os.urandom(32)
        message = handshake_message(
            m["challenge"], self.key.public_key, their_key, session.server_cert, session.client_cert
        )
        signed = self._hello(challenge) | {
            "sig": self.key.sign(Purpose.HANDSHAKE, self.chain_id, message)
        }
        await ws.send_bytes(encode(signed))
        reply = read(_REPLY, _handshake_obj(await _receive(ws)), "hello reply")
        self._check_signature(their_key, challenge, reply["sig"], session)
        return their_key

    def _check_hello(self, m: dict[str, Any], session: Session) -> None:
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
        self._check_ban(their_key)

    def _check_signature(
        self, their_key: bytes, our_challenge: bytes, sig: object, session: Session
    ) -> None:
        signature = read(SIGNATURE, sig, "handshake signature")
        message = handshake_message(
            our_challenge, their_key, self.key.public_key, session.server_cert, session.client_cert
        )
        if not is_valid_signature(their_key, Purpose.HANDSHAKE, self.chain_id, message, signature):
            raise HandshakeError("bad handshake signature (not made for this TLS session?)")

    def _check_ban(self, their_key: bytes) -> None:
        left = self.ban_left(their_key)
        if left > 0:
            raise Banned(f"peer {self.names[their_key]} is banned for another {left:.0f} s")

    # --- a live link --------------------------------------------------------------------

    def _peer(
        self,
        key: bytes,
        ws: web.WebSocketResponse | aiohttp.ClientWebSocketResponse,
        *,
        dialed_by_us: bool,
    ) -> Peer:
        queue = SendQueue(self.config.send_queue_bytes, self.config.send_queue)
        return Peer(key, self.names[key], ws, dialed_by_us, queue)

    async def _serve(self, peer: Peer) -> None:
        existing = self.peers.get(peer.key)
        if existing is not None:
            # Two links to one peer: both sides keep the one dialed by the lower key.
            keep_new = peer.dialed_by_us == (self.key.public_key < peer.key)
            if not keep_new:
                return
            existing.closing = True
            await existing.ws.close()
        self.peers[peer.key] = peer
        self.missing_since.pop(peer.key, None)
        log.info("peer %s connected (%s)", peer.name, "out" if peer.dialed_by_us else "in")
        writer = asyncio.create_task(self._write(peer))
        try:
            await self.on_connect(peer)
            await self._read(peer)
        finally:
            peer.closing = True
            writer.cancel()
            # The writer ends with the link: cancelled, or failed writing to a closed socket.
            with contextlib.suppress(asyncio.CancelledError, ConnectionError, aiohttp.ClientError):
                await writer
            if self.peers.get(peer.key) is peer:
                del self.peers[peer.key]
                self.missing_since[peer.key] = self.wall_clock()
                log.info("peer %s disconnected", peer.name)

    async def _read(self, peer: Peer) -> None:
        async for msg in peer.ws:
            if peer.closing:  # penalised or banned meanwhile: what is in flight is not read
                return
            if msg.type != aiohttp.WSMsgType.BINARY:
                if msg.type == aiohttp.WSMsgType.ERROR and _protocol_error(msg.data):
                    self.bad_frames += 1
                    self.penalise(peer, f"broke the WebSocket protocol ({msg.data})")
                    return
                if msg.type in (aiohttp.WSMsgType.ERROR, aiohttp.WSMsgType.CLOSE):
                    return
                self.bad_frames += 1
                self.penalise(peer, "sent a non-binary frame")
                return
            if self.seen is not None and self.seen(msg.data):
                self.duplicate_frames += 1
                continue
            if peer.sync_owed <= 0 and msg.data.endswith(SYNC_RESP_TAIL):
                # Blocks nobody asked for (up to max_frame_bytes): not worth decoding.
                self.unsolicited_frames += 1
                self.penalise(peer, "sent blocks nobody asked for", MINOR, close=False)
                continue
            try:
                message = decode_message(msg.data, self.config.max_frame_bytes, self.known_tx)
            except LedgerError as exc:
                self.bad_frames += 1
                self.penalise(peer, f"sent an invalid frame ({exc})")
                return
            try:
                await self.on_message(peer, message)
            except Exception:  # our own bug: keep the node up, drop this link, say so loudly
                log.exception(
                    "internal error handling a %s from %s", type(message).__name__, peer.name
                )
                return

    async def _write(self, peer: Peer) -> None:
        while True:
            frame = await peer.queue.get()
            await peer.ws.send_bytes(frame)

    # --- scores and bans ----------------------------------------------------------------

    def score(self, key: bytes) -> float:
        """The key's score now: what it lost, less what it has recovered since."""
        score = self.scores.get(key, 0.0)
        if score >= 0:
            return 0.0
        elapsed = max(0.0, self.clock() - self._scored_at.get(key, 0.0))
        return min(0.0, score + elapsed * SCORE_RECOVERY_PER_S)

    def ban_left(self, key: bytes) -> float:
        """Seconds the key stays banned (0: not banned)."""
        until = self.banned_until.get(key)
        return 0.0 if until is None else max(0.0, until - self.clock())

    def penalise(self, peer: Peer, why: str, points: int = SEVERE, *, close: bool = True) -> None:
        """``peer`` misbehaved (``why`` completes "peer NAME …"): lower its score by
        ``points``; close the link if ``close``; at or below ``ban_threshold``, close it
        and ban the key. Called by the link for frames that do not decode, and by the
        node for frames that decode but are invalid or unwanted."""
        score = self.score(peer.key) - points
        self.scores[peer.key] = score
        self._scored_at[peer.key] = self.clock()
        if score <= self.config.ban_threshold:
            self._ban(peer, why, score)
        elif close:
            log.warning("peer %s %s; disconnecting (score %.0f)", peer.name, why, score)
            self._close(peer)
        else:
            log.info("peer %s %s; dropped (score %.0f)", peer.name, why, score)

    def _ban(self, peer: Peer, why: str, score: float) -> None:
        n = self.bans[peer.key] = self.bans.get(peer.key, 0) + 1
        wait_ms = min(self.config.ban_max_ms, self.config.ban_min_ms * 2 ** min(n - 1, 62))
        self.banned_until[peer.key] = self.clock() + wait_ms / 1000
        self.scores[peer.key] = 0.0  # a fresh start after the ban; the count of bans stays
        log.warning(
            "peer %s %s; score %.0f reached the ban threshold %d: disconnected and banned "
            "for %.0f s (ban %d)",
            peer.name,
            why,
            score,
            self.config.ban_threshold,
            wait_ms / 1000,
            n,
        )
        self._close(peer)

    def _close(self, peer: Peer) -> None:
        if peer.closing:
            return
        peer.closing = True
        task = asyncio.ensure_future(peer.ws.close())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    # --- sending ------------------------------------------------------------------------

    def broadcast(self, msg: WireMessage, *, exclude: bytes | None = None) -> None:
        frame = encode_message(msg)
        for key, peer in self.peers.items():
            if key != exclude:
                peer.send(frame)

    def send(self, peer: Peer, msg: WireMessage) -> None:
        peer.send(encode_message(msg))

    async def deliver(self, peer: Peer, frame: bytes, timeout_s: float) -> bool:
        """Queue ``frame`` for ``peer``, waiting up to ``timeout_s`` for room in its send
        queue (a sync response: the one frame that waits instead of being dropped).
        False, and counted as dropped, if it was not queued: the link closed, or there
        was no room in time."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        if not peer.closing and peer.queue.put_nowait(frame):
            return True
        while not peer.closing and (left := deadline - loop.time()) > 0:
            try:  # wake each second: has the link closed?
                await asyncio.wait_for(peer.queue.put(frame), min(1.0, left))
            except TimeoutError:
                continue
            return True
        peer.dropped += 1
        peer.dropped_bytes += len(frame)
        return False

    async def close(self) -> None:
        for peer in list(self.peers.values()):
            peer.closing = True
            await peer.ws.close()
        if self._session is not None:
            await self._session.close()


def _protocol_error(data: object) -> bool:
    return isinstance(data, aiohttp.WebSocketError) and data.code in _PROTOCOL_CLOSE_CODES


def _transport_of(ws: aiohttp.ClientWebSocketResponse) -> asyncio.BaseTransport | None:
    connection = ws._response.connection  # the TLS session of a dialed link
    return None if connection is None else connection.transport


def _handshake_obj(data: bytes) -> Value:
    """A handshake frame decoded (at most :data:`HANDSHAKE_FRAME_BYTES`); a hello of
    protocol version 1 (no version field) is named as such."""
    obj = decode(data, max_size=HANDSHAKE_FRAME_BYTES)
    if isinstance(obj, dict) and "key" in obj and "version" not in obj:
        raise HandshakeError(f"protocol version differs: ours {PROTOCOL_VERSION}, theirs 1")
    return obj


def _close_reason(exc: BaseException) -> bytes:
    """Why a handshake is refused, for the other side (a WebSocket close reason)."""
    cut = str(exc).encode()[:CLOSE_REASON_BYTES]
    return cut.decode(errors="ignore").encode()  # whole UTF-8 characters only


def _failure(exc: BaseException) -> str:
    """Why a dial failed, in one line."""
    if isinstance(exc, TimeoutError):
        return "no answer within the handshake deadline"
    if isinstance(exc, ssl.SSLError) or isinstance(exc.__cause__, ssl.SSLError):
        return f"TLS refused ({exc})"
    return str(exc) or type(exc).__name__


async def _receive(ws: web.WebSocketResponse | aiohttp.ClientWebSocketResponse) -> bytes:
    msg = await ws.receive()
    if msg.type == aiohttp.WSMsgType.CLOSE and msg.extra:
        said = "".join(c for c in str(msg.extra) if c.isprintable())[:CLOSE_REASON_BYTES]
        raise HandshakeError(f"the peer refused the link, saying: {said}")
    if msg.type != aiohttp.WSMsgType.BINARY:
        raise HandshakeError(f"expected a binary handshake frame, got {msg.type.name}")
    data: bytes = msg.data
    return data
