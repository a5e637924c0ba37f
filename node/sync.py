"""Catch-up: fetch committed blocks and certificates from peers, check, execute, commit.

A node that is behind (it hears a status or a signed message for a higher
height) asks one peer for a batch of blocks from its next height. Each block's
certificate is the next block's ``last_cert`` (or, for the last block of the
batch, the certificate sent with it); it must carry >2/3 of the validator set's
power for exactly that block. The block is then re-executed and must produce
the identical header before it is committed. Progress (height, rate, ETA) is
logged and exposed in ``/v1/status``.

Whom to ask: a status is an unsigned claim, so
no single peer's claim decides anything. The *target* height is the highest one
that validators with more than 1/3 of the power (f+1, so at least one honest)
claim to have reached, or that a signed consensus message proves; the peer asked
is drawn at random among those ahead of us with the fewest failures. A peer that
lets a request time out, answers with nothing, or serves a block that does not
check out is demoted: its failures count against it and it is not asked again
until an exponential backoff has passed. A successful batch clears its record.

Whose fault: a block whose certificate verifies and whose transactions
match its certified header is the chain's block. If re-executing or storing it
fails, the fault is this node's — a damaged or diverged store — not the peer's: the
node logs one error naming the height and stops (``SyncHost.local_fault``) instead of
disconnecting honest peers one after the other.

Fewer fsyncs: a batch's blocks are committed unsynced but for the last one, or, when the
batch stops early for any reason, one synced empty write. Each write is atomic and a synced
one makes every earlier one durable (``LevelDBStore.write``), so a power cut can only leave
a lower height, whose certified blocks are fetched again; the signer's state is a file of its
own (it never signs twice), and a block announced to subscribers is the chain's all the same.

Serving (the frame is assembled in :mod:`node.sync_serve`): a sync request is a few
bytes, its answer up to ``MAX_RESPONSE_BYTES`` (plus one block). It is answered in a task
of its own, one stored block at a time with the event loop free in between, from the
blocks' stored bytes (no decoding, no re-encoding); the frame then waits for room in the
peer's byte-bounded send queue (``SyncLinks.deliver``) instead of being dropped. A peer
has at most one request being answered: another one meanwhile is refused
(:meth:`Syncer.serve` returns False and the node scores the peer down), so one link holds
at most one response in memory. On the asking side a response is taken only from a peer
we asked (``Peer.sync_owed``, which a late answer after a timeout still matches); an
unsolicited one is refused (:meth:`Syncer.solicited`) and scores its sender down.

The syncer talks to two small interfaces (:mod:`node.sync_interfaces`): :class:`SyncLinks`,
the links it asks and answers through (``PeerManager``), and :class:`SyncHost`, what it
tells the node (a block committed, the new head, a local fault).

Pipelining: when the answer to our request arrives, the next batch (from the height after
its last block) is asked for before this one is applied, so that a peer reads and sends it
while we execute. Time spent applying does not count against that request's timeout; an
answer that starts above our next height, because the batch before it stopped short, is
dropped without blame and asked for again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ledger.block import Block
from ledger.block_prune import oldest_block_height
from ledger.errors import LedgerError, StorageError
from ledger.votes import CommitCertificate
from node import sync_serve
from node.executor import Executor
from node.peers import Peer
from node.sync_interfaces import Precheck, SyncHost, SyncLinks
from node.wire import SyncRequest, SyncResponse
from node.write_behind import WriteBehind

log = logging.getLogger("cityledger.sync")
REQUEST_TIMEOUT_S = 10.0
RETRY_BASE_S = 2.0  # a demoted peer waits 2, 4, 8 ... s before it is asked again
RETRY_MAX_S = 120.0
MAX_OWED = 4  # answers awaited from one peer at most (late ones after a timeout included)
PRECHECK_WAIT_S = 0.05  # a block waits this long at most for its payload signatures


@dataclass(slots=True)
class _Outstanding:
    """The one sync request we await an answer to."""

    peer: Peer
    sent_at: float  # pushed later by the time spent applying (:meth:`Syncer._waited`)
    from_height: int


class LocalStoreFault(StorageError):
    """A block certified by the validators does not apply on this node's store."""

    code = "local_store_fault"


@dataclass(slots=True)
class SyncProgress:
    syncing: bool = False
    start_height: int = 0
    target_height: int = 0
    current_height: int = 0
    started_at: float = 0.0
    blocks_per_s: float = 0.0
    txs_per_s: float = 0.0
    txs_applied: int = 0

    @property
    def eta_s(self) -> float | None:
        if not self.syncing or self.blocks_per_s <= 0:
            return None
        return max(0, self.target_height - self.current_height) / self.blocks_per_s


class Syncer:
    def __init__(
        self,
        executor: Executor,
        links: SyncLinks,
        host: SyncHost,
        *,
        batch_blocks: int = 200,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        precheck: Precheck | None = None,
    ) -> None:
        """``precheck``: checks a block's payload signatures on another core (the
        signature worker) while the blocks before it execute (:meth:`_checked_ahead`)."""
        self.executor = executor
        self.precheck = precheck
        self.links = links
        self.host = host
        self.batch_blocks = batch_blocks
        self.clock = clock
        self.rng = rng or random.Random()
        self.progress = SyncProgress()
        self._outstanding: _Outstanding | None = None
        self._backed = 0  # the highest height a signed message proves committed
        self._failures: dict[bytes, int] = {}  # by peer key: consecutive failures
        self._retry_at: dict[bytes, float] = {}  # by peer key: not asked before this time
        self._applying = asyncio.Lock()
        self._unsynced = False  # a block was committed without sync since the last synced write
        self._last_checked: bytes | None = None  # hash of the last certificate we verified
        self.rejected_batches = 0
        self.refused_requests = 0  # a second request from a peer while one is served
        self.unsolicited = 0  # responses from peers we had not asked
        self.below_oldest = 0  # requests for blocks this node no longer holds (pruned)
        self._serving: set[asyncio.Task[None]] = set()
        self.failed: str | None = None  # set when our own store failed : sync stops

    @property
    def height(self) -> int:
        return self.executor.chain.head().height

    def peers(self) -> list[Peer]:
        return list(self.links.peers.values())

    # --- asking -------------------------------------------------------------------------

    def behind(self, height: int, *, backed: bool = True) -> None:
        """Some peer has committed ``height``: catch up if we are behind.

        ``backed``: a signed consensus message proves it (the layer checked the
        signature); a peer's status is only a claim (``backed=False``), which counts
        through :meth:`target` and the peer's ``height``. One block behind is usually
        a race we win by ourselves a moment later, so only a bigger gap asks at once;
        the heartbeat's :meth:`maybe_request` covers the rest.
        """
        if backed and height > self._backed:
            self._backed = height
        if height > self.height + 1:
            self.maybe_request()

    def target(self) -> int:
        """The height to catch up to: proven by a signed message, or claimed by
        validators with f+1 power (if fewer are connected: the lowest of their
        claims). Peers in backoff and observers do not count; one liar cannot raise it."""
        validators = self.executor.validators(self.height + 1)
        now = self.clock()
        claims = sorted(
            (
                (p.height, validators.power_of(p.key))
                for p in self.peers()
                if p.key in validators and self._retry_at.get(p.key, 0.0) <= now
            ),
            reverse=True,
        )
        need = min(validators.skip_power, sum(power for _, power in claims))
        claimed = 0
        power = 0
        for height, p in claims:
            power += p
            if power >= need:
                claimed = height
                break
        return max(self._backed, claimed)

    def maybe_request(self) -> None:
        """Ask for the next batch, unless one is being applied: its end asks (and the
        outstanding request's answer cannot be handled before, so it cannot time out)."""
        if self._applying.locked():
            return
        self._request_next()

    def _request_next(self) -> None:
        if self.failed is not None:
            return
        head = self.height
        now = self.clock()
        if self._outstanding is not None:
            peer = self._outstanding.peer
            connected = peer in self.peers()
            if now - self._outstanding.sent_at < REQUEST_TIMEOUT_S and connected:
                return
            self._outstanding = None
            if connected:
                self._demote(peer, f"no answer to a sync request within {REQUEST_TIMEOUT_S:.0f} s")
        target = self.progress.target_height = self.target()
        chosen = self._pick(head + 1)
        if chosen is None:
            if self.progress.syncing and self.progress.target_height <= head:
                self._finish()
            return
        if not self.progress.syncing:
            self.progress = SyncProgress(True, head, max(target, head + 1), head, now)
            log.info("catching up from height %d to %d", head, self.progress.target_height)
        self._ask(chosen, head + 1)

    def _pick(self, from_height: int) -> Peer | None:
        """A peer that claims ``from_height`` and is not in backoff (:meth:`choose`)."""
        now = self.clock()
        candidates = [
            p
            for p in self.peers()
            if p.height >= from_height and self._retry_at.get(p.key, 0.0) <= now
        ]
        return self.choose(candidates) if candidates else None

    def _ask(self, peer: Peer, from_height: int) -> None:
        self._outstanding = _Outstanding(peer, self.clock(), from_height)
        peer.sync_owed = min(MAX_OWED, peer.sync_owed + 1)
        self.links.send(peer, SyncRequest(from_height, self.batch_blocks))

    def solicited(self, peer: Peer) -> bool:
        """Whether a response from ``peer`` answers a request of ours (then it is taken
        as that answer); False for one nobody asked for: to be dropped and scored."""
        if peer.sync_owed <= 0:
            self.unsolicited += 1
            return False
        peer.sync_owed -= 1
        return True

    def _ask_ahead(self, resp: SyncResponse) -> None:
        """Ask for the batch after ``resp`` before applying it (the one request allowed
        beyond the batch being applied). Only for an answer that goes on from our head
        with as many heights as blocks: the height asked from is then at most one batch
        above our head, so a made-up height cannot get an honest peer asked for blocks it
        does not have and demoted for its empty answer."""
        if self._outstanding is not None or not resp.blocks:
            return
        try:
            head = self.height
        except StorageError:  # the batch's first block reports it
            return
        first, last = resp.blocks[0].height, resp.blocks[-1].height
        if last - first != len(resp.blocks) - 1 or not first <= head + 1 <= last:
            return
        peer = self._pick(last + 1)
        if peer is not None:
            self._ask(peer, last + 1)

    def _waited(self, began: float) -> None:
        """Time spent applying since ``began`` does not count against the outstanding
        request: its answer waited behind the batch (same peer) or for the lock."""
        asked = self._outstanding
        if asked is None:
            return
        asked.sent_at += max(0.0, self.clock() - max(began, asked.sent_at))

    def choose(self, candidates: list[Peer]) -> Peer:
        """At random among the peers ahead of us with the fewest failures."""
        fewest = min(self._failures.get(p.key, 0) for p in candidates)
        return self.rng.choice([p for p in candidates if self._failures.get(p.key, 0) == fewest])

    def failures(self, peer: Peer) -> int:
        return self._failures.get(peer.key, 0)

    def _demote(self, peer: Peer, why: str) -> None:
        n = self._failures.get(peer.key, 0) + 1
        self._failures[peer.key] = n
        wait = min(RETRY_MAX_S, RETRY_BASE_S * 2 ** (n - 1))
        self._retry_at[peer.key] = self.clock() + wait
        log.info("sync: %s %s; not asked again for %.0f s", peer.name, why, wait)

    def _credit(self, peer: Peer) -> None:
        self._failures.pop(peer.key, None)
        self._retry_at.pop(peer.key, None)

    def _finish(self) -> None:
        p = self.progress
        elapsed = max(1e-9, self.clock() - p.started_at)
        log.info(
            "caught up at height %d: %d blocks, %d txs in %.1f s (%.0f tx/s)",
            p.current_height,
            p.current_height - p.start_height,
            p.txs_applied,
            elapsed,
            p.txs_applied / elapsed,
        )
        p.syncing = False

    # --- answering ----------------------------------------------------------------------

    def serve(self, peer: Peer, req: SyncRequest) -> bool:
        """Answer ``req`` in a task of its own; False (nothing done) if a request of
        ``peer`` is still being answered: one at a time per peer."""
        if peer.serving:
            self.refused_requests += 1
            return False
        peer.serving = True
        task = asyncio.ensure_future(self._serve(peer, req))
        self._serving.add(task)
        task.add_done_callback(self._serving.discard)
        return True

    async def _serve(self, peer: Peer, req: SyncRequest) -> None:
        try:
            frame = await self.response_frame(req, lambda: not peer.closing)
            if frame is None:
                return
            await self.links.deliver(peer, frame, REQUEST_TIMEOUT_S)
        except StorageError as exc:  # our own store: the node stops
            self._local_fault(req.from_height, exc, serving=True)
        except Exception:  # our own bug: keep the node up, say so loudly
            log.exception("internal error answering a sync request from %s", peer.name)
        finally:
            peer.serving = False  # after queueing: the asker cannot have the answer before

    async def response_frame(
        self, req: SyncRequest, alive: Callable[[], bool] = lambda: True
    ) -> bytes | None:
        """The ``sync_resp`` frame answering ``req`` (:func:`node.sync_serve.response_frame`:
        committed blocks from ``req.from_height``, at most ``req.max_blocks`` of them, read
        one at a time); None if ``alive()`` turns false. A request for blocks pruned here
        is counted and logged, and answered with none."""
        chain = self.executor.chain
        head = chain.head().height
        oldest = oldest_block_height(chain.store)
        if req.from_height < oldest <= head:
            # Pruned here (or before a state sync's base): the empty answer says "not
            # held"; the asker is not blamed, and asks another peer (:meth:`_judge`).
            self.below_oldest += 1
            log.info(
                "sync: asked for blocks from %d; this node keeps blocks from %d on "
                "(pruned or joined by state sync): answered with none",
                req.from_height,
                oldest,
            )
        return await sync_serve.response_frame(chain, req, head, alive)

    def close(self) -> None:
        """Stop answering requests and writing behind (the node is stopping)."""
        for task in list(self._serving):
            task.cancel()
        store = self.executor.chain.store
        if isinstance(store, WriteBehind):
            try:
                store.finish()
            except StorageError as exc:  # already reported, or the store is going anyway
                log.error("a block written behind failed as the node stopped: %s", exc)

    # --- applying -----------------------------------------------------------------------

    async def apply(self, peer: Peer, resp: SyncResponse) -> bool:
        """Apply a batch, yielding to the event loop between blocks; False (and nothing
        more applied) at the first block the peer is to blame for. However it ends
        (cancelled too), what it committed is synced before it returns; then the next
        batch is asked for unless it already is."""
        async with self._applying:
            began = self.clock()
            try:
                with self._written_behind():
                    ok = await self._apply(peer, resp)
            finally:
                self._flush()  # a synced write: every block written behind is written first
            self._waited(began)
            self._request_next()
            return ok

    def _written_behind(self) -> contextlib.AbstractContextManager[None]:
        """The batch's unsynced block writes made on a writer thread while the next block
        executes, where the chain's store allows it (:mod:`node.write_behind`); the
        batch's last block, or :meth:`_flush`, is a synced write that waits for them."""
        store = self.executor.chain.store
        return store.deferring() if isinstance(store, WriteBehind) else contextlib.nullcontext()

    async def _apply(self, peer: Peer, resp: SyncResponse) -> bool:
        asked = self._answered(peer)
        if self.failed is not None:
            return True
        if asked is not None:
            self._ask_ahead(resp)
        ahead = self._checked_ahead(resp.blocks)
        try:
            return await self._apply_blocks(peer, resp, asked, ahead)
        finally:
            for job in ahead:
                job.cancel()
                if job.done() and not job.cancelled() and job.exception() is not None:
                    log.warning("sync: a precheck failed (execution checks): %s", job.exception())

    def _checked_ahead(self, blocks: Sequence[Block]) -> list[asyncio.Future[None]]:
        """One precheck job per block, all queued at once: the worker checks block i+1's
        payload signatures while block i executes, and block i waits only for its own."""
        if self.precheck is None:
            return []
        return [asyncio.ensure_future(self.precheck(block.txs)) for block in blocks]

    async def _apply_blocks(
        self,
        peer: Peer,
        resp: SyncResponse,
        asked: _Outstanding | None,
        ahead: list[asyncio.Future[None]],
    ) -> bool:
        applied = 0
        for i, block in enumerate(resp.blocks):
            try:
                head = self.height
            except StorageError as exc:  # our head record does not read back
                self._local_fault(block.height, exc)
                return True
            if block.height <= head:
                continue
            if asked is not None and block.height == asked.from_height > head + 1:
                log.info(
                    "sync: the batch from %s starts at %d, above our next height %d (the "
                    "batch before it stopped short); asking again",
                    peer.name,
                    block.height,
                    head + 1,
                )
                break
            cert = resp.blocks[i + 1].last_cert if i + 1 < len(resp.blocks) else resp.tip_cert
            try:
                cert = self._certified(block, cert, head)
            except LedgerError as exc:
                self._reject(peer, block, exc)
                return False
            if ahead:  # its verdicts; a worker that lags (starting, starved) is not waited
                await asyncio.wait([ahead[i]], timeout=PRECHECK_WAIT_S)  # for: execution checks
            if not self._commit(block, cert, last=i == len(resp.blocks) - 1):
                return True
            applied += 1
            await asyncio.sleep(0)  # let consensus, peers and the API breathe
            if self.failed is not None:
                return True
        self._judge(peer, resp, asked, applied)
        return True

    def _answered(self, peer: Peer) -> _Outstanding | None:
        """Our request that a response from ``peer`` answers (no longer awaited), if any."""
        asked = self._outstanding
        if asked is None or asked.peer is not peer:
            return None
        self._outstanding = None
        return asked

    def _reject(self, peer: Peer, block: Block, exc: LedgerError) -> None:
        """``peer`` served a block that does not check out: demote it."""
        self.rejected_batches += 1
        log.warning("sync from %s: block %d rejected: %s", peer.name, block.height, exc)
        self._demote(peer, "served a block that does not check out")
        if self._outstanding is not None and self._outstanding.peer is peer:
            self._outstanding = None  # nor is its next batch awaited

    def _commit(self, block: Block, cert: CommitCertificate, *, last: bool) -> bool:
        """Re-execute and commit a certified block; False if our own store failed.

        The last block of a batch is committed synced: that write makes the batch's
        durable. Only ledger and storage errors are the store's fault; any other
        exception is a bug of ours and propagates."""
        # The certificate of the block before, which this block carries, was checked
        # when that block was applied (the same certificate: equal hashes).
        known = block.last_cert is not None and block.last_cert.hash == self._last_checked
        try:
            executed = self.executor.validate_block(
                block, None, certified=True, last_cert_checked=known
            )
            self.executor.commit(executed, cert, sync=last)
        except LedgerError as exc:  # a certified block: the fault is ours
            self._local_fault(block.height, exc)
            return False
        self._unsynced = not last
        self._last_checked = cert.hash
        self.host.synced(block, cert, executed.receipts)
        self._note(block)
        self.host.sync_advanced(self.height)
        return True

    def _judge(
        self, peer: Peer, resp: SyncResponse, asked: _Outstanding | None, applied: int
    ) -> None:
        """A batch applied to its end: credit a peer whose blocks we took; demote one
        that claimed blocks above our head and sent none of them."""
        if applied:
            self._credit(peer)
        elif asked is not None and not any(b.height >= asked.from_height for b in resp.blocks):
            # An honest peer may no longer hold the block (it prunes blocks, or joined by
            # state sync): another peer is asked next; if none holds it, state sync it is.
            self._demote(
                peer,
                f"claimed height {peer.height} but served nothing from {asked.from_height} "
                "(it may prune blocks or have joined by state sync; if no peer keeps block "
                f"{asked.from_height}, join by state sync: docs/operations.md, 'Pruning')",
            )
            peer.height = self.height

    def _flush(self) -> None:
        """Sync what a batch that ended before its last block committed unsynced (a
        rejected block, a local fault, the node stopping, a skipped last block)."""
        if not self._unsynced:
            return
        self._unsynced = False
        try:
            self.executor.chain.flush()
        except StorageError as exc:  # our own store: the node stops
            if self.failed is None:
                self._local_fault(self.progress.current_height, exc)

    def _certified(
        self, block: Block, cert: CommitCertificate | None, head: int
    ) -> CommitCertificate:
        """Everything about ``block`` a peer answers for: that it is the next block, that
        >2/3 of the validators certified exactly it, and that its body is the body of
        that header (``last_cert`` is checked against the header when a block is decoded)."""
        if block.height != head + 1:
            raise LedgerError(f"block {block.height} does not follow our head {head}")
        if cert is None:
            raise LedgerError(f"no certificate for block {block.height}")
        # The set of block h is known once h-2 is committed (a change is in force two
        # heights after the block that made it), and blocks are applied in order.
        cert.verify(
            self.executor.validators(block.height),
            self.executor.genesis.chain_id,
            height=block.height,
            block_hash=block.hash,
        )
        block.check_tx_root()
        return cert

    def _local_fault(self, height: int, exc: BaseException, *, serving: bool = False) -> None:
        cause = str(exc) or type(exc).__name__
        what = (
            "it cannot be read to answer a peer"
            if serving
            else "a block certified by the validators does not apply on it"
        )
        self.failed = (
            f"local store is damaged or diverged at height {height}: {cause}; {what}. Stop the "
            "node and restore the data directory from a backup, or empty it to resync from peers"
        )
        log.error("%s", self.failed)
        self.host.local_fault(height, self.failed)

    def _note(self, block: Block) -> None:
        p = self.progress
        p.current_height = block.height
        p.txs_applied += len(block.txs)
        elapsed = max(1e-9, self.clock() - p.started_at)
        p.blocks_per_s = (p.current_height - p.start_height) / elapsed
        p.txs_per_s = p.txs_applied / elapsed
        if block.height % 500 == 0:
            log.info(
                "catch-up at height %d of %d (%.0f blocks/s, %.0f tx/s, ETA %.0f s)",
                block.height,
                p.target_height,
                p.blocks_per_s,
                p.txs_per_s,
                p.eta_s or 0,
            )
