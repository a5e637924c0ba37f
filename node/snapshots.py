"""State snapshots a node takes every ``[snapshots] interval`` heights, keeps and serves.

Taking one must not stall consensus: right after block H is committed (H a multiple of
the interval) the node opens a read view of its store (a LevelDB snapshot: every
committed block is one write batch, so the view is exactly height H) and a worker thread
cuts the state under H's root into chunks (:mod:`ledger.state_snapshot`) and writes them
to ``<home>/snapshots/<H>/`` while blocks go on being committed. A snapshot appears
(its directory renamed into place) only once complete; the newest ``keep`` are kept.

Each snapshot directory holds ``part-0`` (the *description*: header and certificate of H,
the certified validator-set changes up to H, the Merkle log's right border at H, and the
state manifest) and ``part-<i>`` for chunk ``i - 1``. Parts are served as stored (a
file read, off the event loop), one request per peer at a time, at most
``serve_per_s`` per peer on average (a token bucket): a peer asking for more is refused
and scored down. Only peers allowed on the link (validators, configured observers) can
ask at all.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace

from ledger.block_prune import oldest_block_height
from ledger.encoding import decode, encode
from ledger.errors import LedgerError
from ledger.genesis import Genesis
from ledger.log import MerkleLog
from ledger.state_snapshot import Manifest, plan_snapshot, snapshot_chunks
from ledger.storage import KVStore
from ledger.storage.protocol import KVReader
from node.api.validator_history import history
from node.chain import ChainStore
from node.config import SnapshotConfig
from node.peers import Peer
from node.wire import MAX_SNAP_PART, SnapRequest, SnapResponse, encode_message

log = logging.getLogger("cityledger.snapshots")
DESCRIPTION_FORMAT = 1
BUCKET_BURST = 8  # parts a peer may ask for at once after being quiet
SEND_TIMEOUT_S = 10.0
MAX_LISTED = 16


@dataclass(frozen=True, slots=True)
class Held:
    """A complete snapshot on disk."""

    height: int
    chunks: int
    size: int


def part_name(index: int) -> str:
    return f"part-{index}"


class SnapshotBook:
    """The snapshots in one directory: taking, pruning, listing and serving them."""

    def __init__(
        self,
        directory: str,
        config: SnapshotConfig,
        genesis: Genesis,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.directory = directory
        self.config = config
        self.genesis = genesis
        self.clock = clock
        self.taking: asyncio.Task[None] | None = None
        self._answers: set[asyncio.Task[None]] = set()
        self.closing = False  # the node is stopping: a snapshot being written is abandoned
        self.pacer: Pacer | None = None  # of the last snapshot taken
        self._serving: set[bytes] = set()
        self._tokens: dict[bytes, tuple[float, float]] = {}  # key -> (tokens, as of)
        self.held: list[Held] = self._scan()
        # The oldest height whose block this node still holds (ledger/block_prune.py):
        # a snapshot is served only while every block after it is here to fetch.
        self.blocks_from: Callable[[], int] = lambda: 1

    @classmethod
    def of(
        cls,
        directory: str | None,
        config: SnapshotConfig,
        genesis: Genesis,
        store: KVReader | None = None,
    ) -> SnapshotBook:
        """The book of a node home's ``directory``; without one (in-process nodes) none
        is taken and the list served is empty. ``store``: the node's, whose oldest kept
        block decides which snapshots can be served (:meth:`servable`)."""
        if directory is None:
            book = cls("", replace(config, interval=0), genesis)
        else:
            book = cls(directory, config, genesis)
        if store is not None:
            book.blocks_from = lambda: oldest_block_height(store)
        return book

    # --- taking -------------------------------------------------------------------------

    def committed(self, store: KVStore, height: int) -> None:
        """Block ``height`` was just committed: take a snapshot if it is due and none is
        being taken (a snapshot still running when the next is due skips that one)."""
        interval = self.config.interval
        if not interval or height % interval or self.taking is not None:
            return
        view_of = getattr(store, "read_view", None)
        if view_of is None:
            return  # a store without views (memory, in tests): no snapshots
        view = view_of()
        if view is None:
            return
        self.taking = asyncio.get_running_loop().create_task(self._take(view, height))

    async def _take(self, view: KVReader, height: int) -> None:
        started = time.monotonic()
        try:
            held = await asyncio.to_thread(self.write, view, height)
        except Exception as exc:  # the node goes on without this snapshot (logged)
            if self.closing:
                log.info("snapshot of height %d abandoned: the node is stopping", height)
            else:
                log.error("snapshot of height %d not taken: %s", height, exc)
            return
        finally:
            self.taking = None
            close = getattr(view, "close", None)
            if close is not None:
                close()
        log.info(
            "snapshot of height %d taken: %d chunks, %.1f MB in %.1f s (%.1f s of it paused, "
            "to keep to %d %% of a core)",
            height,
            held.chunks,
            held.size / 1e6,
            time.monotonic() - started,
            0.0 if self.pacer is None else self.pacer.slept,
            self.config.cpu_percent,
        )

    def write(self, view: KVReader, height: int) -> Held:
        """Write the snapshot of ``view`` (a view of the store at ``height``); runs in a
        worker thread. A partial directory left by a crash is replaced."""
        partial = os.path.join(self.directory, f".{height}.partial")
        os.makedirs(self.directory, mode=0o700, exist_ok=True)  # the whole state: owner only
        shutil.rmtree(partial, ignore_errors=True)
        os.makedirs(partial, mode=0o700)
        pace = self.pacer = Pacer(self.config.cpu_percent / 100)
        description, manifest = describe(view, self.genesis, height, pace)
        size = _write_part(partial, 0, description)
        for i, chunk in enumerate(snapshot_chunks(view, manifest, pace), start=1):
            if self.closing:
                raise LedgerError("the node is stopping")
            size += _write_part(partial, i, chunk)
        final = os.path.join(self.directory, str(height))
        shutil.rmtree(final, ignore_errors=True)
        os.rename(partial, final)
        held = Held(height, len(manifest.chunks), size)
        self.held = sorted(
            [*(h for h in self.held if h.height != height), held], key=lambda h: -h.height
        )
        for old in self.held[self.config.keep :]:
            shutil.rmtree(os.path.join(self.directory, str(old.height)), ignore_errors=True)
        self.held = self.held[: self.config.keep]
        return held

    def _scan(self) -> list[Held]:
        """The complete snapshots already on disk (from an earlier run), newest first."""
        out: list[Held] = []
        if not os.path.isdir(self.directory):
            return out
        for name in os.listdir(self.directory):
            path = os.path.join(self.directory, name)
            if name.startswith("."):
                shutil.rmtree(path, ignore_errors=True)  # a partial one: never complete
            elif name.isdigit():
                parts = [p for p in os.listdir(path) if p.startswith("part-")]
                size = sum(os.path.getsize(os.path.join(path, p)) for p in parts)
                out.append(Held(int(name), len(parts) - 1, size))
        return sorted(out, key=lambda h: -h.height)[: self.config.keep]

    # --- serving ------------------------------------------------------------------------

    def admit(self, peer: Peer) -> bool:
        """Whether ``peer`` may be answered now: no answer of ours to it is under way and
        its token bucket has a token (``serve_per_s`` a second, ``BUCKET_BURST`` at most)."""
        if peer.key in self._serving:
            return False
        now = self.clock()
        tokens, since = self._tokens.get(peer.key, (float(BUCKET_BURST), now))
        tokens = min(float(BUCKET_BURST), tokens + (now - since) * self.config.serve_per_s)
        if tokens < 1:
            self._tokens[peer.key] = (tokens, now)
            return False
        self._tokens[peer.key] = (tokens - 1, now)
        self._serving.add(peer.key)
        return True

    def serve(
        self, peer: Peer, req: SnapRequest, deliver: Callable[[Peer, bytes, float], Awaitable[bool]]
    ) -> bool:
        """Answer ``req`` in a task of its own if :meth:`admit` lets it; False if not."""
        if not self.admit(peer):
            return False
        task = asyncio.get_running_loop().create_task(self.answer(peer, req, deliver))
        self._answers.add(task)
        task.add_done_callback(self._answers.discard)
        return True

    async def answer(
        self, peer: Peer, req: SnapRequest, deliver: Callable[[Peer, bytes, float], Awaitable[bool]]
    ) -> None:
        """Send ``peer`` the part it asked for (admitted by :meth:`admit`)."""
        try:
            data = await asyncio.to_thread(self.part, req.height, req.index)
            frame = encode_message(SnapResponse(req.height, req.index, data))
            await deliver(peer, frame, SEND_TIMEOUT_S)
        finally:
            self._serving.discard(peer.key)

    def servable(self) -> list[Held]:
        """The snapshots a node can join from here: those whose following blocks this
        node still holds (block pruning may have passed an old one; config.py's rule
        keeps that rare)."""
        first = self.blocks_from()
        return [h for h in self.held if h.height + 1 >= first]

    def part(self, height: int, index: int) -> bytes:
        """A stored part (b"" if not held); height 0: the list of snapshots held."""
        servable = self.servable()
        if height == 0:
            return encode(
                [
                    {"height": h.height, "chunks": h.chunks, "size": h.size}
                    for h in servable[:MAX_LISTED]
                ]
            )
        if all(h.height != height for h in servable):
            return b""
        try:
            with open(os.path.join(self.directory, str(height), part_name(index)), "rb") as f:
                data = f.read(MAX_SNAP_PART + 1)
        except OSError:
            return b""  # deleted meanwhile, or no such chunk
        return data if len(data) <= MAX_SNAP_PART else b""


class Pacer:
    """Keeps a worker thread to ``share`` of one core: after each stretch of
    :data:`STRETCH_S` of work it sleeps ``stretch × (1/share − 1)``. Sleeping also hands
    the GIL to the event loop at once, instead of at the interpreter's switch interval."""

    STRETCH_S = 0.01

    def __init__(self, share: float) -> None:
        self.share = share
        self.mark = time.monotonic()
        self.slept = 0.0

    def __call__(self) -> None:
        busy = time.monotonic() - self.mark
        if busy >= self.STRETCH_S:
            if self.share < 1:
                pause = busy * (1 / self.share - 1)
                time.sleep(pause)
                self.slept += pause
            self.mark = time.monotonic()


def describe(
    view: KVReader, genesis: Genesis, height: int, pace: Callable[[], None] | None = None
) -> tuple[bytes, Manifest]:
    """The description of the snapshot of ``view`` (the store at ``height``) and its
    manifest: what a joining node checks from genesis before it asks for a chunk."""
    chain = ChainStore(view, genesis)  # type: ignore[arg-type]
    header = chain.header(height)
    cert = chain.certificate(height)
    if header is None or cert is None or chain.head().height != height:
        raise LedgerError(f"the store holds no certified block {height} at its head")
    manifest = plan_snapshot(view, header.state_root, pace or (lambda: None))
    log_border = MerkleLog(view).border(header.log_size)
    changes = [c for c in history(chain, 0) if isinstance(c, dict) and c["height"] <= height]
    description = encode(
        {
            "format": DESCRIPTION_FORMAT,
            "height": height,
            "header": header.to_obj(),
            "certificate": cert.to_obj(),
            "history": changes,
            "log": [[level, h] for level, h in log_border],
            "manifest": manifest.encode(),
            "chunks": len(manifest.chunks),
        }
    )
    if len(description) > MAX_SNAP_PART:
        raise LedgerError(f"the snapshot's description is {len(description)} bytes, too big")
    return description, manifest


def _write_part(directory: str, index: int, data: bytes) -> int:
    with open(os.path.join(directory, part_name(index)), "wb") as f:
        f.write(data)
    return len(data)


def decode_list(data: bytes) -> list[Held]:
    """A peer's list of snapshots (its answer to height 0), malformed entries dropped."""
    try:
        items = decode(data, max_size=MAX_SNAP_PART)
    except LedgerError:
        return []
    out: list[Held] = []
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict):
            h, n, s = item.get("height"), item.get("chunks"), item.get("size")
            if isinstance(h, int) and isinstance(n, int) and isinstance(s, int) and h > 0:
                out.append(Held(h, n, s))
    return out[:MAX_LISTED]
