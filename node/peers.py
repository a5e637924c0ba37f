"""Authenticated peer links: aiohttp WebSockets inside mutual TLS 1.3.

Accepting and dialing links, each proven by :mod:`node.handshake` (TLS bound to an
allowed consensus key, then a signed challenge, genesis and protocol version) before
any other frame; then each side sends canonical frames (:mod:`node.wire`).

Before a peer is authenticated: a connection must finish its TLS handshake within
``handshake_timeout_ms`` (:mod:`node.listen`); then at most ``max_pending_handshakes``
links are in the peer handshake (:attr:`PeerManager.pending`), ``max_pending_per_address``
from one address, each for at most ``handshake_timeout_ms``; handshake frames are read
up to 4 KiB. Without TLS (a loopback-only setting, :mod:`node.config`) WebSocket frames
up to ``max_frame_bytes`` are buffered before the handshake: TLS is what keeps them
from unauthenticated senders. A refused link is not blamed on anyone (no score
changes): its reason is logged once per back-off step on the dialing side and at most
once per ``reconnect_max_ms`` and reason on the accepting side.

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
import logging
import random
import ssl
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web

from ledger.crypto import PrivateKey
from ledger.errors import DecodeError, LedgerError
from node.config import P2PConfig
from node.handshake import (
    NO_GENESIS,
    Banned,
    Handshake,
    HandshakeError,
    close_reason,
    transport_of,
)
from node.listen import PendingCount
from node.reap import reap
from node.tls import LinkTLS
from node.wire import SYNC_RESP_TAIL, KnownTx, WireMessage, decode_message, encode_message

log = logging.getLogger("cityledger.p2p")
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
        self.names = names  # allowed keys -> display name
        self.observers: set[bytes] = set()  # allowed keys a set change never retires
        self.config = config
        self.on_message = on_message
        self.on_connect = on_connect
        self.clock = clock
        self.wall_clock = wall_clock
        self.handshake = Handshake(key, chain_id, names, tls, genesis_hash, self.ban_left)
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

    def withdraw(self, keys: set[bytes]) -> list[str]:
        """Allow ``keys`` no more: new handshakes refuse them, their open links close.
        Returns their names."""
        gone = [self.names.pop(key) for key in sorted(keys) if key in self.names]
        for key in keys:
            self.missing_since.pop(key, None)
            peer = self.peers.get(key)
            if peer is not None:
                self._close(peer)
        return gone

    @property
    def tls(self) -> LinkTLS | None:
        """The links' TLS (None: plaintext links), as the handshake checks it."""
        return self.handshake.tls

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
                session = self.handshake.session(request.transport, server_side=True)
                await ws.prepare(request)
                peer_key = await self.handshake.accept(ws, session)
        except (HandshakeError, DecodeError, TimeoutError, aiohttp.ClientError) as exc:
            self.refused += 1
            self._log_refusal(remote, str(exc), debug=isinstance(exc, Banned))
            if not ws.prepared:
                return web.Response(status=403, text=close_reason(exc).decode())
            await ws.close(code=aiohttp.WSCloseCode.POLICY_VIOLATION, message=close_reason(exc))
            return ws
        finally:
            self.pending.release(remote)
        await self._serve(self._peer(peer_key, ws, dialed_by_us=False))
        return ws

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
                    session = self.handshake.session(transport_of(ws), server_side=False)
                    peer_key = await self.handshake.dial(ws, session)
            except (HandshakeError, DecodeError) as exc:  # the acceptor learns why too
                await ws.close(code=aiohttp.WSCloseCode.POLICY_VIOLATION, message=close_reason(exc))
                raise
            self._address_keys[address] = peer_key
            self.dial_failures.pop(address, None)
            await self._serve(self._peer(peer_key, ws, dialed_by_us=True))

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
            if self.peers.get(peer.key) is peer:
                del self.peers[peer.key]
                self.missing_since[peer.key] = self.wall_clock()
                log.info("peer %s disconnected", peer.name)
            # The writer ends with the link: cancelled, or failed writing to a closed socket.
            await reap(writer, ConnectionError, aiohttp.ClientError)

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


def _failure(exc: BaseException) -> str:
    """Why a dial failed, in one line."""
    if isinstance(exc, TimeoutError):
        return "no answer within the handshake deadline"
    if isinstance(exc, ssl.SSLError) or isinstance(exc.__cause__, ssl.SSLError):
        return f"TLS refused ({exc})"
    return str(exc) or type(exc).__name__
