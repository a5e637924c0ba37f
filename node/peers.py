"""Authenticated peer links over aiohttp WebSockets.

Handshake (both directions, before any other frame):

1. the acceptor sends ``{"challenge": c_a, "key": K_a}``;
2. the dialer answers ``{"challenge": c_d, "key": K_d, "sig": S_d}`` where ``S_d`` signs
   (Purpose.HANDSHAKE, chain id) ``handshake_message(c_a, K_d, K_a)``;
3. the acceptor checks that ``K_d`` is allowed (validator or configured observer), not
   banned, and ``S_d``, then answers ``{"sig": S_a}`` over ``handshake_message(c_d, K_a, K_d)``;
4. the dialer checks that ``K_a`` is allowed, not banned, and ``S_a``.

Challenges are 32 fresh random bytes, so a recorded handshake cannot be replayed.
After it, each side sends canonical frames (:mod:`node.wire`).

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
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web

from ledger.crypto import PrivateKey, Purpose, is_valid_signature
from ledger.encoding import decode, encode
from ledger.errors import DecodeError, LedgerError
from ledger.schema import HASH, PUBLIC_KEY, SIGNATURE, AnyValue, Struct, read
from node.config import P2PConfig
from node.wire import (
    SYNC_RESP_TAIL,
    KnownTx,
    WireMessage,
    decode_message,
    encode_message,
    handshake_message,
)

log = logging.getLogger("cityledger.p2p")
HANDSHAKE_TIMEOUT_S = 5.0
# The handshake's messages: the dialer's hello and the listener's, with the signature
# (read after the cheaper checks), and the reply that carries only a signature.
_HELLO = Struct({"challenge": HASH, "key": PUBLIC_KEY})
_SIGNED_HELLO = Struct({"challenge": HASH, "key": PUBLIC_KEY, "sig": AnyValue()})
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
    ) -> None:
        """``seen(frame)`` says a frame was already handled (a relayed copy, a re-send):
        it is dropped before it is decoded. ``known_tx`` is passed to
        :func:`node.wire.decode_message`. ``clock`` times scores and bans."""
        self.key = key
        self.chain_id = chain_id
        self.names = names  # allowed keys -> display name
        self.config = config
        self.on_message = on_message
        self.on_connect = on_connect
        self.clock = clock
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
        self._address_keys: dict[str, bytes] = {}
        self._session: aiohttp.ClientSession | None = None
        self._closing: set[asyncio.Future[bool]] = set()

    # --- accepting ----------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """aiohttp handler for ``GET /p2p``."""
        ws = web.WebSocketResponse(max_msg_size=self.config.max_frame_bytes, heartbeat=10.0)
        await ws.prepare(request)
        try:
            async with asyncio.timeout(HANDSHAKE_TIMEOUT_S):
                peer_key = await self._accept_handshake(ws)
        except (HandshakeError, DecodeError, TimeoutError, aiohttp.ClientError) as exc:
            self.refused += 1
            level = logging.DEBUG if isinstance(exc, Banned) else logging.WARNING
            log.log(level, "refused peer from %s: %s", request.remote, exc)
            await ws.close(code=aiohttp.WSCloseCode.POLICY_VIOLATION, message=b"refused")
            return ws
        await self._serve(self._peer(peer_key, ws, dialed_by_us=False))
        return ws

    async def _accept_handshake(self, ws: web.WebSocketResponse) -> bytes:
        challenge = os.urandom(32)
        await ws.send_bytes(encode({"challenge": challenge, "key": self.key.public_key}))
        m = read(_SIGNED_HELLO, decode(await _receive(ws), max_size=4096), "hello")
        their_key: bytes = m["key"]
        their_challenge: bytes = m["challenge"]
        self._check_peer(their_key, challenge, m["sig"])
        message = handshake_message(their_challenge, self.key.public_key, their_key)
        await ws.send_bytes(
            encode({"sig": self.key.sign(Purpose.HANDSHAKE, self.chain_id, message)})
        )
        return their_key

    # --- dialing ------------------------------------------------------------------------

    async def dial_forever(self, address: str) -> None:
        """Keep a link to ``address`` up, reconnecting with jittered exponential backoff;
        not while the key last seen there is banned."""
        delay = self.config.reconnect_min_ms / 1000
        while True:
            known = self._address_keys.get(address)
            if known is not None and (known in self.peers or self.ban_left(known) > 0):
                await asyncio.sleep(1.0)
                continue
            try:
                await self._dial(address)
                delay = self.config.reconnect_min_ms / 1000
            except (OSError, aiohttp.ClientError, HandshakeError, DecodeError, TimeoutError) as exc:
                log.debug("dial %s failed: %s", address, exc)
            await asyncio.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, self.config.reconnect_max_ms / 1000)

    async def _dial(self, address: str) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        # Bounded like the handshake: a peer behind a partition must not hold this dial
        # (and so the link) for the session's default 5 minutes once the network heals.
        async with asyncio.timeout(HANDSHAKE_TIMEOUT_S):
            ws = await self._session.ws_connect(
                f"http://{address}/p2p",
                max_msg_size=self.config.max_frame_bytes,
                heartbeat=10.0,
                timeout=aiohttp.ClientWSTimeout(ws_close=2.0),
            )
        async with ws:
            async with asyncio.timeout(HANDSHAKE_TIMEOUT_S):
                peer_key = await self._dial_handshake(ws)
            self._address_keys[address] = peer_key
            await self._serve(self._peer(peer_key, ws, dialed_by_us=True))

    async def _dial_handshake(self, ws: aiohttp.ClientWebSocketResponse) -> bytes:
        m = read(_HELLO, decode(await _receive(ws), max_size=4096), "hello")
        their_key: bytes = m["key"]
        their_challenge: bytes = m["challenge"]
        if their_key not in self.names:
            raise HandshakeError(f"peer key {their_key.hex()[:16]}… is not allowed")
        self._check_ban(their_key)  # before signing anything for it
        challenge = os.urandom(32)
        message = handshake_message(their_challenge, self.key.public_key, their_key)
        await ws.send_bytes(
            encode(
                {
                    "challenge": challenge,
                    "key": self.key.public_key,
                    "sig": self.key.sign(Purpose.HANDSHAKE, self.chain_id, message),
                }
            )
        )
        reply = read(_REPLY, decode(await _receive(ws), max_size=4096), "hello reply")
        self._check_peer(their_key, challenge, reply["sig"])
        return their_key

    def _check_peer(self, their_key: bytes, our_challenge: bytes, sig: object) -> None:
        if their_key not in self.names:
            raise HandshakeError(f"peer key {their_key.hex()[:16]}… is not allowed")
        if their_key == self.key.public_key:
            raise HandshakeError("refusing a link to ourselves")
        self._check_ban(their_key)  # before the signature: the cheap check first
        signature = read(SIGNATURE, sig, "handshake signature")
        message = handshake_message(our_challenge, their_key, self.key.public_key)
        if not is_valid_signature(their_key, Purpose.HANDSHAKE, self.chain_id, message, signature):
            raise HandshakeError("bad handshake signature")

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


async def _receive(ws: web.WebSocketResponse | aiohttp.ClientWebSocketResponse) -> bytes:
    msg = await ws.receive()
    if msg.type != aiohttp.WSMsgType.BINARY:
        raise HandshakeError(f"expected a binary handshake frame, got {msg.type.name}")
    data: bytes = msg.data
    return data
