"""Authenticated peer links over aiohttp WebSockets.

Handshake (both directions, before any other frame):

1. the acceptor sends ``{"challenge": c_a, "key": K_a}``;
2. the dialer answers ``{"challenge": c_d, "key": K_d, "sig": S_d}`` where ``S_d`` signs
   (Purpose.HANDSHAKE, chain id) ``handshake_message(c_a, K_d, K_a)``;
3. the acceptor checks that ``K_d`` is allowed (validator or configured observer) and
   ``S_d``, then answers ``{"sig": S_a}`` over ``handshake_message(c_d, K_a, K_d)``;
4. the dialer checks that ``K_a`` is allowed and ``S_a``.

Challenges are 32 fresh random bytes, so a recorded handshake cannot be replayed.
After it, each side sends canonical frames (:mod:`node.wire`); a malformed or
invalid frame closes the link and lowers the peer's score. Each link has a
bounded send queue: when it is full the frame is dropped and counted (consensus
messages are re-sent periodically, so nothing depends on one frame).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web

from ledger.crypto import PrivateKey, Purpose, is_valid_signature
from ledger.encoding import decode, encode, expect_bytes, expect_map
from ledger.errors import DecodeError, LedgerError
from node.config import P2PConfig
from node.wire import KnownTx, Message, decode_message, encode_message, handshake_message

log = logging.getLogger("cityledger.p2p")
HANDSHAKE_TIMEOUT_S = 5.0


class HandshakeError(LedgerError):
    code = "handshake"


@dataclass(eq=False)
class Peer:
    key: bytes
    name: str
    ws: web.WebSocketResponse | aiohttp.ClientWebSocketResponse
    dialed_by_us: bool
    queue: asyncio.Queue[bytes] = field(default_factory=lambda: asyncio.Queue(4096))
    height: int = 0
    dropped: int = 0

    def send(self, frame: bytes) -> bool:
        try:
            self.queue.put_nowait(frame)
            return True
        except asyncio.QueueFull:
            self.dropped += 1
            return False


OnMessage = Callable[[Peer, Message], Awaitable[None]]
OnConnect = Callable[[Peer], Awaitable[None]]
Seen = Callable[[bytes], bool]


class PeerManager:
    """All of a node's links: accept, dial with backoff, authenticate, route frames."""

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
    ) -> None:
        """``seen(frame)`` says a frame was already handled (a relayed copy, a re-send):
        it is dropped before it is decoded. ``known_tx`` is passed to
        :func:`node.wire.decode_message`."""
        self.key = key
        self.chain_id = chain_id
        self.names = names  # allowed keys -> display name
        self.config = config
        self.on_message = on_message
        self.on_connect = on_connect
        self.peers: dict[bytes, Peer] = {}
        self.scores: dict[bytes, int] = {}
        self.refused = 0
        self.bad_frames = 0
        self.duplicate_frames = 0
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
            log.warning("refused peer from %s: %s", request.remote, exc)
            await ws.close(code=aiohttp.WSCloseCode.POLICY_VIOLATION, message=b"refused")
            return ws
        await self._serve(self._peer(peer_key, ws, dialed_by_us=False))
        return ws

    async def _accept_handshake(self, ws: web.WebSocketResponse) -> bytes:
        challenge = os.urandom(32)
        await ws.send_bytes(encode({"challenge": challenge, "key": self.key.public_key}))
        m = expect_map(
            decode(await _receive(ws), max_size=4096), "hello", ("challenge", "key", "sig")
        )
        their_key = expect_bytes(m["key"], "hello.key", size=32)
        their_challenge = expect_bytes(m["challenge"], "hello.challenge", size=32)
        self._check_peer(their_key, challenge, m["sig"])
        message = handshake_message(their_challenge, self.key.public_key, their_key)
        await ws.send_bytes(
            encode({"sig": self.key.sign(Purpose.HANDSHAKE, self.chain_id, message)})
        )
        return their_key

    # --- dialing ------------------------------------------------------------------------

    async def dial_forever(self, address: str) -> None:
        """Keep a link to ``address`` up, reconnecting with jittered exponential backoff."""
        delay = self.config.reconnect_min_ms / 1000
        while True:
            known = self._address_keys.get(address)
            if known is not None and known in self.peers:
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
        m = expect_map(decode(await _receive(ws), max_size=4096), "hello", ("challenge", "key"))
        their_key = expect_bytes(m["key"], "hello.key", size=32)
        their_challenge = expect_bytes(m["challenge"], "hello.challenge", size=32)
        if their_key not in self.names:
            raise HandshakeError(f"peer key {their_key.hex()[:16]}… is not allowed")
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
        reply = expect_map(decode(await _receive(ws), max_size=4096), "hello reply", ("sig",))
        self._check_peer(their_key, challenge, reply["sig"])
        return their_key

    def _check_peer(self, their_key: bytes, our_challenge: bytes, sig: object) -> None:
        if their_key not in self.names:
            raise HandshakeError(f"peer key {their_key.hex()[:16]}… is not allowed")
        if their_key == self.key.public_key:
            raise HandshakeError("refusing a link to ourselves")
        signature = expect_bytes(sig, "handshake signature", size=64)
        message = handshake_message(our_challenge, their_key, self.key.public_key)
        if not is_valid_signature(their_key, Purpose.HANDSHAKE, self.chain_id, message, signature):
            raise HandshakeError("bad handshake signature")

    # --- a live link --------------------------------------------------------------------

    def _peer(
        self,
        key: bytes,
        ws: web.WebSocketResponse | aiohttp.ClientWebSocketResponse,
        *,
        dialed_by_us: bool,
    ) -> Peer:
        queue: asyncio.Queue[bytes] = asyncio.Queue(self.config.send_queue)
        return Peer(key, self.names[key], ws, dialed_by_us, queue)

    async def _serve(self, peer: Peer) -> None:
        existing = self.peers.get(peer.key)
        if existing is not None:
            # Two links to one peer: both sides keep the one dialed by the lower key.
            keep_new = peer.dialed_by_us == (self.key.public_key < peer.key)
            if not keep_new:
                return
            await existing.ws.close()
        self.peers[peer.key] = peer
        log.info("peer %s connected (%s)", peer.name, "out" if peer.dialed_by_us else "in")
        writer = asyncio.create_task(self._write(peer))
        try:
            await self.on_connect(peer)
            await self._read(peer)
        finally:
            writer.cancel()
            # The writer ends with the link: cancelled, or failed writing to a closed socket.
            with contextlib.suppress(asyncio.CancelledError, ConnectionError, aiohttp.ClientError):
                await writer
            if self.peers.get(peer.key) is peer:
                del self.peers[peer.key]
                log.info("peer %s disconnected", peer.name)

    async def _read(self, peer: Peer) -> None:
        async for msg in peer.ws:
            if msg.type != aiohttp.WSMsgType.BINARY:
                if msg.type in (aiohttp.WSMsgType.ERROR, aiohttp.WSMsgType.CLOSE):
                    return
                self._penalise(peer, "non-binary frame")
                return
            if self.seen is not None and self.seen(msg.data):
                self.duplicate_frames += 1
                continue
            try:
                message = decode_message(msg.data, self.config.max_frame_bytes, self.known_tx)
            except LedgerError as exc:
                self._penalise(peer, str(exc))
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

    def _penalise(self, peer: Peer, why: str) -> None:
        self.bad_frames += 1
        self.scores[peer.key] = self.scores.get(peer.key, 0) - 10
        log.warning("peer %s sent an invalid frame (%s); disconnecting", peer.name, why)
        task = asyncio.ensure_future(peer.ws.close())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    def penalise(self, peer: Peer, why: str) -> None:
        """Called by the node for frames that decode but are invalid (bad signature...)."""
        self._penalise(peer, why)

    # --- sending ------------------------------------------------------------------------

    def broadcast(self, msg: Message, *, exclude: bytes | None = None) -> None:
        frame = encode_message(msg)
        for key, peer in self.peers.items():
            if key != exclude:
                peer.send(frame)

    def send(self, peer: Peer, msg: Message) -> None:
        peer.send(encode_message(msg))

    async def close(self) -> None:
        for peer in list(self.peers.values()):
            await peer.ws.close()
        if self._session is not None:
            await self._session.close()


async def _receive(ws: web.WebSocketResponse | aiohttp.ClientWebSocketResponse) -> bytes:
    msg = await ws.receive()
    if msg.type != aiohttp.WSMsgType.BINARY:
        raise HandshakeError(f"expected a binary handshake frame, got {msg.type.name}")
    data: bytes = msg.data
    return data
