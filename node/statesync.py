"""Joining by state sync (``cityledger node start --state-sync``): a snapshot from peers.

Runs before the node proper, on an empty store, with links of its own (the same
authenticated peer links, :class:`node.peers.PeerManager`):

1. ask every linked peer which snapshots it holds; take the newest height;
2. fetch its description from a peer offering it and check it from genesis
   (:mod:`node.statesync_check`); a description that does not check out blames its peer,
   and when no peer's does, the next older height is tried;
3. fetch the chunks from every peer offering that height at once, each peer one request
   at a time; check every chunk on arrival against the manifest and write it. A chunk that
   does not check out blames its peer (one warning line naming it; it is not asked again)
   and goes back in the queue for another peer; so does a chunk a peer no longer holds
   (deleted since it listed it) or did not send within ``CHUNK_TIMEOUT_S`` (gone);
4. write the head, the log border and the validator sets of that height in one batch.

The node then starts as usual and block sync fetches the blocks after the snapshot.
If no snapshot can be had, the rows written so far are deleted and the node starts from
genesis, catching up by blocks: a failed state sync never stops the node. Progress (chunks,
bytes, rate, ETA) is logged every few seconds and kept in :class:`Progress`, which
``/v1/status`` shows as ``state_sync``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ledger.crypto import PrivateKey
from ledger.errors import LedgerError
from ledger.genesis import Genesis
from ledger.state_snapshot import SnapshotError, read_chunk
from ledger.storage import KVStore, WriteBatch
from node.config import NodeConfig
from node.peers import Peer, PeerManager
from node.snapshots import Held, decode_list
from node.statesync_check import (
    Description,
    base_rows,
    check_description,
    start_rows,
    wipe,
)
from node.tls import LinkTLS
from node.wire import SnapRequest, SnapResponse, WireMessage

log = logging.getLogger("cityledger.statesync")
CONNECT_WAIT_S = 30.0  # for the first peer link
GATHER_S = 2.0  # after the first link, for the others (less once all are linked)
LIST_TIMEOUT_S = 5.0
CHUNK_TIMEOUT_S = 15.0
PROGRESS_EVERY_S = 1.0


@dataclass(slots=True)
class Progress:
    """Where a state sync stands (``/v1/status`` ``state_sync``)."""

    phase: str = "waiting for peers"
    height: int = 0
    chunks: int = 0
    chunks_done: int = 0
    bytes_done: int = 0
    started: float = field(default_factory=time.monotonic)
    blamed: list[str] = field(default_factory=list)

    def eta_s(self) -> float | None:
        if not self.chunks_done or self.chunks <= self.chunks_done:
            return None
        elapsed = time.monotonic() - self.started
        return elapsed / self.chunks_done * (self.chunks - self.chunks_done)

    def to_obj(self) -> dict[str, object]:
        eta = self.eta_s()
        return {
            "phase": self.phase,
            "height": self.height,
            "chunks": self.chunks,
            "chunks_done": self.chunks_done,
            "bytes": self.bytes_done,
            "eta_s": None if eta is None else int(eta),
            "blamed": list(self.blamed),
        }


class _Fetcher:
    """Requests and their answers over the links of a :class:`PeerManager`."""

    def __init__(self) -> None:
        self.links: PeerManager | None = None
        self.waiting: dict[tuple[bytes, int, int], asyncio.Future[bytes]] = {}
        self.connected = asyncio.Event()

    async def on_connect(self, peer: Peer) -> None:
        self.connected.set()

    async def on_message(self, peer: Peer, msg: WireMessage) -> None:
        if isinstance(msg, SnapResponse):
            fut = self.waiting.pop((peer.key, msg.height, msg.index), None)
            if fut is not None and not fut.done():
                fut.set_result(msg.data)
        # anything else (statuses, votes, transactions) waits for the node proper

    async def ask(self, peer: Peer, height: int, index: int, timeout_s: float) -> bytes | None:
        """The part asked for; None if the link closed or the answer did not come."""
        assert self.links is not None
        key = (peer.key, height, index)
        fut: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self.waiting[key] = fut
        self.links.send(peer, SnapRequest(height, index))
        deadline = time.monotonic() + timeout_s
        try:
            while time.monotonic() < deadline:
                if self.links.peers.get(peer.key) is not peer:
                    return None  # the link closed: the peer is gone
                with contextlib.suppress(TimeoutError):
                    return await asyncio.wait_for(asyncio.shield(fut), 0.5)
            return None
        finally:
            self.waiting.pop(key, None)


class StateSync:
    """One state sync into ``store`` (empty, or holding an unfinished one's rows)."""

    def __init__(
        self, store: KVStore, genesis: Genesis, fetcher: _Fetcher, expected_peers: int = 0
    ) -> None:
        self.expected_peers = expected_peers  # links to wait for (up to GATHER_S) before asking
        self.store = store
        self.genesis = genesis
        self.fetcher = fetcher
        self.progress = Progress()
        self.blamed: set[bytes] = set()
        self.in_flight = 0  # chunk requests awaiting an answer

    @property
    def links(self) -> PeerManager:
        assert self.fetcher.links is not None
        return self.fetcher.links

    def blame(self, peer: Peer, what: str) -> None:
        """One line naming ``peer``; it is not asked again, and its link is closed."""
        log.warning("state sync: peer %s %s; not asking it again", peer.name, what)
        self.blamed.add(peer.key)
        self.progress.blamed.append(f"{peer.name}: {what}")
        self.links.penalise(peer, f"served a bad snapshot part ({what})")

    async def run(self) -> int | None:
        """The height synced to, or None (nothing written is left behind)."""
        try:
            async with asyncio.timeout(CONNECT_WAIT_S):
                await self.fetcher.connected.wait()
        except TimeoutError:
            log.warning(
                "state sync: no peer linked in %.0f s; catching up by blocks", CONNECT_WAIT_S
            )
            return None
        gather_until = time.monotonic() + GATHER_S
        while len(self.links.peers) < self.expected_peers and time.monotonic() < gather_until:
            await asyncio.sleep(0.05)
        offers = await self.gather_offers()
        for height in sorted(offers, reverse=True):
            description, sources = await self.describe(height, offers[height])
            if description is None:
                continue
            if await self.fetch_chunks(description, sources):
                self.store.write(base_rows(self.store, description, self.genesis), sync=True)
                self.progress.phase = "done"
                return height
            log.warning(
                "state sync: snapshot %d could not be completed; trying an older one", height
            )
            wipe(self.store)  # its flat-table rows must not outlive it into an older state
        log.warning("state sync: no snapshot could be had from peers; catching up by blocks")
        if wipe(self.store):
            self.store.write(WriteBatch(), sync=True)
        return None

    async def gather_offers(self) -> dict[int, list[Peer]]:
        """Height -> the peers that list a snapshot of it."""
        self.progress.phase = "listing snapshots"
        peers = list(self.links.peers.values())
        answers = await asyncio.gather(*(self.fetcher.ask(p, 0, 0, LIST_TIMEOUT_S) for p in peers))
        offers: dict[int, list[Peer]] = {}
        for peer, data in zip(peers, answers, strict=True):
            held: list[Held] = decode_list(data) if data else []
            for h in held:
                offers.setdefault(h.height, []).append(peer)
        log.info(
            "state sync: %d peers linked; snapshots offered at heights %s",
            len(peers),
            sorted(offers, reverse=True) or "none",
        )
        return offers

    async def describe(
        self, height: int, peers: list[Peer]
    ) -> tuple[Description | None, list[Peer]]:
        """The description of ``height`` checked from genesis, and the peers whose own
        description of it checked out and matches (they serve the chunks). Every peer
        offering it is asked (a description is small): one that lies is blamed before it
        can serve a chunk."""
        self.progress.phase = "checking a snapshot's certificate"
        asked = [p for p in peers if p.key not in self.blamed]
        answers = await asyncio.gather(
            *(self.fetcher.ask(p, height, 0, CHUNK_TIMEOUT_S) for p in asked)
        )
        found: Description | None = None
        sources: list[Peer] = []
        for peer, data in zip(asked, answers, strict=True):
            description = self.check(peer, height, data)
            if description is None:
                continue
            if found is None:
                found = description
            if description.manifest.encode() == found.manifest.encode():
                sources.append(peer)
        return found, sources

    def check(self, peer: Peer, height: int, data: bytes | None) -> Description | None:
        """``peer``'s description of ``height`` if it checks out (else said why)."""
        if data is None:
            log.warning("state sync: peer %s did not describe snapshot %d", peer.name, height)
            return None
        if not data:
            log.warning(
                "state sync: peer %s no longer holds snapshot %d (deleted since it listed "
                "it, or pruned)",
                peer.name,
                height,
            )
            return None
        try:
            return check_description(data, self.genesis, height)
        except SnapshotError as exc:
            self.blame(peer, f"described snapshot {height} wrongly: {exc}")
            return None

    async def fetch_chunks(self, d: Description, peers: list[Peer]) -> bool:
        """Every chunk of ``d``, checked and written; False if peers ran out first."""
        p = self.progress
        p.phase, p.height, p.chunks, p.chunks_done, p.bytes_done = (
            "fetching chunks",
            d.height,
            len(d.manifest.chunks),
            0,
            0,
        )
        p.started = time.monotonic()
        self.store.write(start_rows(d.height), sync=True)
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(len(d.manifest.chunks)):
            queue.put_nowait(i)
        log.info(
            "state sync: snapshot of height %d checked from genesis; fetching %d chunks from %s",
            d.height,
            p.chunks,
            ", ".join(peer.name for peer in peers if peer.key not in self.blamed),
        )
        workers = [self.worker(peer, d, queue) for peer in peers if peer.key not in self.blamed]
        reporter = asyncio.create_task(self.report())
        try:
            await asyncio.gather(*workers)
        finally:
            reporter.cancel()
        return p.chunks_done == p.chunks

    async def worker(self, peer: Peer, d: Description, queue: asyncio.Queue[int]) -> None:
        """Fetch chunks from ``peer`` until all are written, or it fails once. While other
        peers hold the last chunks it waits: one may come back into the queue."""
        while self.progress.chunks_done < self.progress.chunks and peer.key not in self.blamed:
            try:
                i = queue.get_nowait()
            except asyncio.QueueEmpty:
                if not self.in_flight:
                    return
                await asyncio.sleep(0.05)
                continue
            self.in_flight += 1
            try:
                ok = await self.fetch_one(peer, d, i)
            finally:
                self.in_flight -= 1
            if not ok:
                queue.put_nowait(i)
                return

    async def fetch_one(self, peer: Peer, d: Description, i: int) -> bool:
        """Chunk ``i`` from ``peer``, checked and written; False (said why) if not."""
        data = await self.fetcher.ask(peer, d.height, i + 1, CHUNK_TIMEOUT_S)
        if not data:
            why = "did not send" if data is None else "no longer holds"
            log.warning(
                "state sync: peer %s %s chunk %d of snapshot %d (gone, timed out or deleted "
                "since listed); asking another peer",
                peer.name,
                why,
                i,
                d.height,
            )
            return False
        try:
            rows = read_chunk(data, d.manifest.chunks[i], d.height)
        except SnapshotError as exc:
            self.blame(
                peer, f"served chunk {i} of snapshot {d.height} that does not check out: {exc}"
            )
            return False
        batch = WriteBatch()
        for key, value in rows:
            batch.put(key, value)
        self.store.write(batch, sync=False)
        self.progress.chunks_done += 1
        self.progress.bytes_done += len(data)
        return True

    async def report(self) -> None:
        while True:
            await asyncio.sleep(PROGRESS_EVERY_S)
            p = self.progress
            elapsed = max(0.001, time.monotonic() - p.started)
            eta = p.eta_s()
            log.info(
                "state sync: height %d, chunk %d/%d (%.0f %%), %.1f MB at %.1f MB/s, ETA %s",
                p.height,
                p.chunks_done,
                p.chunks,
                100 * p.chunks_done / max(1, p.chunks),
                p.bytes_done / 1e6,
                p.bytes_done / 1e6 / elapsed,
                "?" if eta is None else f"{eta:.0f} s",
            )


async def _stop_dialing(dials: list[asyncio.Task[None]]) -> None:
    """Cancel the dial tasks and wait (at most 10 s) until they have ended."""
    for task in dials:
        task.cancel()
    if not dials:
        return
    _, pending = await asyncio.wait(dials, timeout=10)
    if pending:
        log.error("state sync: %d dial tasks would not stop", len(pending))


async def state_sync(
    config: NodeConfig,
    genesis: Genesis,
    key: PrivateKey,
    store: KVStore,
    *,
    link_tls: LinkTLS | None,
    names: dict[bytes, str],
    on_progress: Callable[[Progress], None] | None = None,
) -> int | None:
    """Run one state sync over links of its own (closed at the end): the height reached,
    or None (then the store is as empty as it was)."""
    fetcher = _Fetcher()
    links = PeerManager(
        key,
        genesis.chain_id,
        names,
        config.p2p,
        fetcher.on_message,
        fetcher.on_connect,
        tls=link_tls if config.p2p.tls else None,
        genesis_hash=genesis.hash,
    )
    fetcher.links = links
    sync = StateSync(store, genesis, fetcher, expected_peers=len(config.p2p.peers))
    if on_progress is not None:
        on_progress(sync.progress)
    dials = [asyncio.create_task(links.dial_forever(a)) for a in config.p2p.peers]
    started = time.monotonic()
    try:
        height = await sync.run()
    except LedgerError as exc:
        log.error("state sync failed: %s; catching up by blocks", exc)
        wipe(store)
        height = None
    finally:
        await _stop_dialing(dials)
        await links.close()
    if height is not None:
        log.info(
            "state sync: state of height %d written (%d chunks, %.1f MB) in %.1f s; "
            "catching up the blocks after it",
            height,
            sync.progress.chunks,
            sync.progress.bytes_done / 1e6,
            time.monotonic() - started,
        )
    return height
