"""A fault-injecting relay between validators: works without root.

Every ordered pair of validators (i dials j) gets its own listening port in this
process; node i's ``[p2p] peers`` point at those ports instead of at its peers, so
every peer link crosses the relay. The relay understands just enough of the
protocol to act on whole messages: it passes the HTTP upgrade through, then cuts
the byte stream into WebSocket frames (RFC 6455 §5.2) and applies the link's
:class:`LinkPolicy` to each *data* frame — drop, duplicate, delay (with jitter, so
frames also overtake each other) and reorder. Control frames (ping, pong, close)
and the first two data frames of each direction (the peer handshake) are only
delayed, so a link stays a valid WebSocket stream and faults hit peer messages.

A *cut* link is a partition: ``"reset"`` closes the link's connections and closes
every new one at once (a network that answers with RST), ``"blackhole"`` keeps
them open and silently discards every byte both ways (a network that loses
everything; the nodes notice only by their WebSocket heartbeats and handshake
timeouts).

A TLS link (its first byte a TLS handshake record, 0x16) cannot be cut into
frames: its bytes are passed through in chunks as they come, delayed and cut like
control frames, never dropped, duplicated or reordered (TLS would take any of these
for an attack and close the link); what a frame-faulting policy could not act on is
counted (``LinkStats.unfaulted_bytes``), and scenarios that need frame faults run
plaintext links on loopback (``settings={"p2p.tls": False}``).

With ``capture=True`` the relay keeps every byte it passes, per link, up to
``CAPTURE_MAX`` bytes in all (:meth:`RelayMesh.captured`): what an on-path observer
would record.

The relay runs its own asyncio loop in a daemon thread; the test thread calls
:meth:`RelayMesh.set_policy`, :meth:`RelayMesh.partition` and :meth:`RelayMesh.heal`.
All randomness comes from one seeded :class:`random.Random`.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import random
import threading
import time
from collections.abc import Coroutine, Iterable
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

T = TypeVar("T")

HANDSHAKE_FRAMES = 2  # data frames per direction passed untouched (peer handshake)
MAX_QUEUED = 20_000  # frames waiting in one direction before the reader waits
TLS_RECORD_HANDSHAKE = 0x16  # the first byte of a TLS ClientHello
CAPTURE_MAX = 256 * 1024 * 1024  # bytes kept in all by a capturing relay


@dataclass(frozen=True, slots=True)
class LinkPolicy:
    drop: float = 0.0  # probability a data frame is lost
    duplicate: float = 0.0  # probability a data frame is sent twice
    reorder: float = 0.0  # probability a data frame is held back so later ones overtake it
    delay_ms: float = 0.0  # added to every frame
    jitter_ms: float = 0.0  # uniform 0..jitter added per frame (frames overtake each other)
    cut: str | None = None  # None, "reset" or "blackhole"

    @property
    def faults_frames(self) -> bool:
        """Whether the policy drops, duplicates or reorders frames (not TLS streams)."""
        return bool(self.drop or self.duplicate or self.reorder)

    def __post_init__(self) -> None:
        if self.cut not in (None, "reset", "blackhole"):
            raise ValueError(f"unknown cut mode {self.cut!r}")


CLEAN = LinkPolicy()


@dataclass(slots=True)
class LinkStats:
    connections: int = 0
    refused: int = 0
    frames: int = 0
    dropped: int = 0
    duplicated: int = 0
    reordered: int = 0
    discarded_bytes: int = 0
    tls_streams: int = 0  # directions passed through as bytes: no frame faults apply
    unfaulted_bytes: int = 0  # TLS bytes a frame-faulting policy could not act on


@dataclass(eq=False)
class _Link:
    src: str
    dst: str
    target: tuple[str, int]
    server: asyncio.Server | None = None
    port: int = 0
    policy: LinkPolicy = CLEAN
    stats: LinkStats = field(default_factory=LinkStats)
    conns: set[_Conn] = field(default_factory=set)


@dataclass(eq=False)
class _Conn:
    writers: list[asyncio.StreamWriter] = field(default_factory=list)

    def abort(self) -> None:
        for w in self.writers:
            with contextlib.suppress(Exception):
                w.transport.abort()


class RelayMesh:
    """Relays for every ordered pair of nodes; one background event loop."""

    def __init__(self, seed: int, host: str = "127.0.0.1", *, capture: bool = False) -> None:
        self.seed = seed
        self.capture = capture
        self._captured: dict[tuple[str, str], bytearray] = {}
        self._captured_bytes = 0
        self.host = host
        self.rng = random.Random(seed)
        self.links: dict[tuple[str, str], _Link] = {}
        self._seq = itertools.count()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name="relay")
        self._thread.start()
        self._closed = False

    # --- setup and control (called from the test thread) -------------------------------

    def add_link(self, src: str, dst: str, target_host: str, target_port: int) -> int:
        """Listen for ``src``'s dials to ``dst``; returns the port to put in ``src``'s peers."""
        link = _Link(src, dst, (target_host, target_port))
        self._call(self._listen(link))
        self.links[(src, dst)] = link
        return link.port

    def address(self, src: str, dst: str) -> str:
        return f"{self.host}:{self.links[(src, dst)].port}"

    def set_policy(
        self, policy: LinkPolicy, links: Iterable[tuple[str, str]] | None = None
    ) -> None:
        chosen = list(self.links) if links is None else list(links)
        self._call(self._set(chosen, policy))

    def partition(self, groups: list[set[str]], mode: str = "reset") -> None:
        """Cut every link between nodes of different groups (both directions)."""
        where = {name: i for i, group in enumerate(groups) for name in group}
        cut = [
            pair
            for pair in self.links
            if pair[0] in where and pair[1] in where and where[pair[0]] != where[pair[1]]
        ]
        self._call(self._cut(cut, mode))

    def isolate(self, name: str, mode: str = "reset") -> None:
        others = {s for s, _ in self.links} - {name}
        self.partition([{name}, others], mode)

    def heal(self) -> None:
        """Every link clean again (policies and cuts removed)."""
        self._call(self._set(list(self.links), CLEAN))

    def captured(self) -> bytes:
        """Every byte the relay passed on every link so far (``capture=True``)."""
        return self._call(self._join_captured())

    async def _join_captured(self) -> bytes:
        return b"".join(bytes(b) for b in self._captured.values())

    def _keep(self, link: _Link, data: bytes) -> None:
        if not self.capture or self._captured_bytes + len(data) > CAPTURE_MAX:
            return
        self._captured.setdefault((link.src, link.dst), bytearray()).extend(data)
        self._captured_bytes += len(data)

    def stats(self) -> LinkStats:
        total = LinkStats()
        for link in self.links.values():
            for name in total.__dataclass_fields__:
                setattr(total, name, getattr(total, name) + getattr(link.stats, name))
        return total

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):
            self._call(self._shutdown(), timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        if not self._loop.is_running():
            self._loop.close()

    def _call(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    # --- inside the loop ----------------------------------------------------------------

    async def _listen(self, link: _Link) -> None:
        async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await self._relay(link, reader, writer)

        link.server = await asyncio.start_server(accept, self.host, 0)
        link.port = int(link.server.sockets[0].getsockname()[1])

    async def _set(self, pairs: list[tuple[str, str]], policy: LinkPolicy) -> None:
        for pair in pairs:
            self.links[pair].policy = policy

    async def _cut(self, pairs: list[tuple[str, str]], mode: str) -> None:
        for pair in pairs:
            link = self.links[pair]
            link.policy = replace(link.policy, cut=mode)
            if mode == "reset":
                for conn in list(link.conns):
                    conn.abort()

    async def _shutdown(self) -> None:
        for link in self.links.values():
            if link.server is not None:
                link.server.close()
            for conn in list(link.conns):
                conn.abort()
        await _cancel([t for t in asyncio.all_tasks() if t is not asyncio.current_task()])

    async def _relay(
        self, link: _Link, c_reader: asyncio.StreamReader, c_writer: asyncio.StreamWriter
    ) -> None:
        if link.policy.cut == "reset":
            link.stats.refused += 1
            c_writer.transport.abort()
            return
        try:
            s_reader, s_writer = await asyncio.wait_for(asyncio.open_connection(*link.target), 3)
        except (OSError, TimeoutError):
            c_writer.transport.abort()
            return
        link.stats.connections += 1
        conn = _Conn([c_writer, s_writer])
        link.conns.add(conn)
        tasks = [
            asyncio.create_task(self._pump(link, c_reader, s_writer)),
            asyncio.create_task(self._pump(link, s_reader, c_writer)),
        ]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            link.conns.discard(conn)
            conn.abort()
            await _cancel(tasks)

    async def _pump(
        self, link: _Link, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """One direction: HTTP upgrade, then frame by frame through the policy (a TLS
        link: chunk by chunk, see the module docstring)."""
        out = _Scheduler(writer)
        sender = asyncio.create_task(out.run())
        try:
            first = await reader.readexactly(1)
            if first[0] == TLS_RECORD_HANDSHAKE:
                link.stats.tls_streams += 1
                await self._emit(link, out, first, control=True)
                while chunk := await reader.read(65536):
                    if link.policy.faults_frames:
                        link.stats.unfaulted_bytes += len(chunk)
                    await self._emit(link, out, chunk, control=True)
                return
            head = first + await reader.readuntil(b"\r\n\r\n")
            await self._emit(link, out, head, control=True)
            data_frames = 0
            while True:
                frame, opcode, fin = await _read_frame(reader)
                is_data = opcode < 8
                if is_data:
                    data_frames += 1
                exempt = not is_data or not fin or opcode == 0 or data_frames <= HANDSHAKE_FRAMES
                await self._emit(link, out, frame, control=exempt)
        finally:
            out.close()
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await sender
            writer.transport.abort()

    async def _emit(self, link: _Link, out: _Scheduler, frame: bytes, *, control: bool) -> None:
        self._keep(link, frame)
        p = link.policy
        if p.cut is not None:
            link.stats.discarded_bytes += len(frame)
            if p.cut == "reset":
                raise OSError("link cut")
            return
        rng = self.rng
        if not control:
            link.stats.frames += 1
            if p.drop and rng.random() < p.drop:
                link.stats.dropped += 1
                return
        now = time.monotonic()
        delay = p.delay_ms + (rng.uniform(0, p.jitter_ms) if p.jitter_ms else 0.0)
        copies = 1
        if not control:
            if p.reorder and rng.random() < p.reorder:
                link.stats.reordered += 1
                delay += 20 + rng.uniform(0, 30)  # held back: the next frames overtake it
            if p.duplicate and rng.random() < p.duplicate:
                link.stats.duplicated += 1
                copies = 2
        for i in range(copies):
            await out.put(now + (delay + i * rng.uniform(0, 10)) / 1000, next(self._seq), frame)


class _Scheduler:
    """Frames of one direction, written in release-time order."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.heap: list[tuple[float, int, bytes]] = []
        self.changed = asyncio.Event()
        self.room = asyncio.Event()
        self.room.set()
        self.closed = False

    async def put(self, at: float, seq: int, frame: bytes) -> None:
        while len(self.heap) >= MAX_QUEUED and not self.closed:
            self.room.clear()
            await self.room.wait()
        heapq.heappush(self.heap, (at, seq, frame))
        self.changed.set()

    def close(self) -> None:
        self.closed = True
        self.room.set()
        self.changed.set()

    async def run(self) -> None:
        while not self.closed:
            if not self.heap:
                self.changed.clear()
                await self.changed.wait()
                continue
            at, _, _ = self.heap[0]
            wait = at - time.monotonic()
            if wait > 0:
                self.changed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.changed.wait(), wait)
                continue
            _, _, frame = heapq.heappop(self.heap)
            self.room.set()
            self.writer.write(frame)
            await self.writer.drain()


async def _read_frame(reader: asyncio.StreamReader) -> tuple[bytes, int, bool]:
    """One raw WebSocket frame (header and payload, masked as it came), opcode, FIN."""
    head = await reader.readexactly(2)
    fin = bool(head[0] & 0x80)
    opcode = head[0] & 0x0F
    masked = bool(head[1] & 0x80)
    length = head[1] & 0x7F
    ext = b""
    if length == 126:
        ext = await reader.readexactly(2)
        length = int.from_bytes(ext, "big")
    elif length == 127:
        ext = await reader.readexactly(8)
        length = int.from_bytes(ext, "big")
    if length > 64 * 1024 * 1024:
        raise OSError(f"frame of {length} bytes: not a peer link")
    mask = await reader.readexactly(4) if masked else b""
    payload = await reader.readexactly(length)
    return head + ext + mask + payload, opcode, fin


async def _cancel(tasks: list[asyncio.Task[Any]]) -> None:
    """Cancel ``tasks`` and wait until every one has finished."""
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
