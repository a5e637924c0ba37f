"""One node process: store, executor, mempool, consensus, peers, sync and API.

Everything runs in one asyncio TaskGroup; SIGINT/SIGTERM stop accepting,
close links and the API, and close the store (every commit is already a synced
batch, so there is nothing else to flush).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections import OrderedDict
from collections.abc import Callable

from aiohttp import web

from contracts.engine import genesis_state
from ledger.block import Block
from ledger.crypto import PrivateKey
from ledger.encoding import Value
from ledger.errors import LedgerError, StorageError
from ledger.evidence import Evidence, describe_evidence
from ledger.genesis import Genesis
from ledger.keyfile import read_key_file
from ledger.state import StateTree
from ledger.storage import KVStore, open_leveldb
from ledger.tx import Transaction
from ledger.votes import CommitCertificate
from node.api.app import make_app
from node.api.metrics import Metrics
from node.chain import ChainStore
from node.config import Home, NodeConfig, split_host_port
from node.consensus.core import ConsensusCore
from node.consensus.effects import Rejected
from node.consensus.errors import BufferFull
from node.consensus.evidence import MAX_EVIDENCE_AGE, EvidenceError, EvidencePool
from node.consensus.signer import Signer, SignerStateFile, open_signer
from node.consensus.timeouts import TimeoutConfig
from node.driver import ConsensusDriver
from node.events import BlockCommitted, EventHub
from node.executor import Executor
from node.mempool import Mempool, MempoolError
from node.peers import MINOR, Peer, PeerManager
from node.service import Queries
from node.sigcache import SignatureCache, SignatureWorker
from node.sync import LocalStoreFault, Syncer
from node.wire import (
    EvidenceMsg,
    Message,
    ProposalMsg,
    StatusMsg,
    SyncRequest,
    SyncResponse,
    TxBatch,
    VoteMsg,
    encode_message,
)

log = logging.getLogger("cityledger.node")
STATUS_INTERVAL_S = 1.0
# F2: a validator signs nothing before it has heard its peers' heights and caught up.
STARTUP_STATUS_WAIT_S = 10.0  # at most this long for validators with f+1 power to report
STARTUP_STALL_S = 15.0  # start anyway when catch-up makes no progress for this long
# Gossiped evidence is kept from heights up to this far above the node's next height (a
# peer a little ahead); further ahead, the node is catching up and will sync the block
# that commits it.
EVIDENCE_FUTURE_HEIGHTS = 4


class Node:
    """A validator (or observer) node. Implements :class:`node.handle.NodeHandle`."""

    def __init__(
        self,
        config: NodeConfig,
        genesis: Genesis,
        key: PrivateKey,
        store: KVStore,
        *,
        clock: Callable[[], float] = time.time,
        signer_state: str | None = None,
        reset_signer_state: bool = False,
    ) -> None:
        """``signer_state``: a validator's signer state file (``Home.signer_state``);
        None keeps it in memory only (tests). See :func:`node.consensus.signer.open_signer`
        for the start-up rules and ``reset_signer_state``."""
        self.config = config
        self.genesis = genesis
        self.key = key
        self.store = store
        self.clock = clock
        self.chain = ChainStore(store, genesis)
        self.chain.initialise(genesis_state(genesis))
        self.sigs = SignatureCache()
        self.signature_worker = SignatureWorker(  # batches' signatures, on another core
            self.sigs, genesis.chain_id, processes=config.mempool.signature_processes
        )
        self.executor = Executor(self.chain, self.sigs)
        self.mempool = Mempool(
            genesis,
            self.sigs,
            self._latest_state,
            self._is_committed,
            max_txs=config.mempool.max_txs,
            max_gapped_per_sender=config.mempool.max_gapped_per_sender,
            max_pending_per_org=config.mempool.max_pending_per_org,
            ttl_s=config.mempool.pending_ttl_s,
        )
        self.queries = Queries(self.chain)
        self.events = EventHub()
        self.metrics = Metrics()
        names = {v.public_key: v.name for v in genesis.validators.validators}
        for hex_key in config.p2p.observers:
            names[bytes.fromhex(hex_key)] = f"observer-{hex_key[:8]}"
        self.peers = PeerManager(
            key,
            genesis.chain_id,
            names,
            config.p2p,
            self._on_message,
            self._on_connect,
            seen=self._frame_seen,
            known_tx=self.mempool.by_signature,
        )
        self.evidence_pool = EvidencePool(store)
        self.is_validator = key.public_key in genesis.validators
        self.signer: Signer | None = None
        if self.is_validator:
            committed = self._committed_height
            if signer_state is None:
                self.signer = Signer(key, genesis.chain_id, committed_height=committed)
            else:
                self.signer = open_signer(
                    key,
                    genesis.chain_id,
                    SignerStateFile(signer_state),
                    store,
                    chain_height=self.chain.head().height,
                    reset=reset_signer_state,
                    committed_height=committed,
                )
            self.signer.block_source = self._block_bytes
        self.core = self._new_core()
        self.consensus_started = False  # F2: not before the node has caught up
        self.fatal: str | None = None  # why the node stopped itself (F4)
        self._stop: asyncio.Event | None = None
        self._status_from: set[bytes] = set()  # peers that told us their height
        self.driver = ConsensusDriver(
            self.core,
            self.executor,
            self.mempool,
            self._broadcast_consensus,
            self._after_commit,
            self._sync_needed,
            clock=clock,
            on_store_failure=self._store_failed,
            on_evidence=self._evidence_found,
            pending_evidence=self._pending_evidence,
        )
        self.syncer = Syncer(
            self.executor,
            self._send,
            lambda: list(self.peers.peers.values()),
            self._after_sync_commit,
            self._on_synced,
            batch_blocks=config.sync.batch_blocks,
            on_local_fault=self._on_local_fault,
            deliver=self.peers.deliver,
        )
        self._outbox: list[Transaction] = []  # admitted from the API: gossip to every peer
        self._relay: dict[bytes, list[Transaction]] = {}  # from an observer: to all but it
        self._seen: OrderedDict[int, None] = OrderedDict()  # relayed consensus messages
        self.started_at = clock()

    # --- NodeHandle ---------------------------------------------------------------------

    async def submit(self, txs: list[Transaction]) -> list[MempoolError | None]:
        return await self._admit(txs, self._outbox)

    async def _admit(
        self, txs: list[Transaction], outbox: list[Transaction] | None
    ) -> list[MempoolError | None]:
        """Admit ``txs`` to the mempool; those admitted go to ``outbox`` for gossip.

        The cheap checks first (sender, nonce window, limits: ``Mempool.precheck_many``);
        only what passes them has its signature checked, in the worker; ``add`` then
        finds each verdict cached."""
        early = self.mempool.precheck_many(txs)
        await self.signature_worker.check([t for t, e in zip(txs, early, strict=True) if e is None])
        now = time.monotonic()  # the mempool's TTL clock
        results: list[MempoolError | None] = []
        for tx, error in zip(txs, early, strict=True):
            if error is not None:
                results.append(error)
                continue
            try:
                self.mempool.add(tx, now=now)
            except MempoolError as exc:
                results.append(exc)
                continue
            if outbox is not None:
                outbox.append(tx)
            results.append(None)
        if any(r is None for r in results):
            self.driver.tx_arrived.set()
        self.metrics.set_mempool(len(self.mempool))
        return results

    def status(self) -> dict[str, Value]:
        head = self.chain.head()
        p = self.syncer.progress
        return {
            "node": self.config.name,
            "chain_id": self.genesis.chain_id,
            "public_key": self.key.public_key,
            "validator": self.is_validator,
            "height": head.height,
            "block_hash": head.block_hash,
            "block_time_ms": head.time_ms,
            "log_size": head.log_size,
            "consensus": {
                "height": self.core.height,
                "round": self.core.round,
                "step": self.core.step.name.lower(),
            },
            "peers": [
                {"name": peer.name, "key": key, "height": peer.height}
                for key, peer in self.peers.peers.items()
            ],
            "mempool": len(self.mempool),
            "sync": {
                "syncing": p.syncing,
                "target_height": p.target_height,
                "blocks_per_s": int(p.blocks_per_s),
                "txs_per_s": int(p.txs_per_s),
                "eta_s": None if p.eta_s is None else int(p.eta_s),
            },
            "evidence": len(self.evidence_pool),
            "uptime_s": int(self.clock() - self.started_at),
        }

    @property
    def public_key(self) -> bytes:
        return self.key.public_key

    def evidence(self) -> list[dict[str, Value]]:
        """The pool's pending evidence (not committed yet); committed is in the chain."""
        return [
            e.to_obj() for e in self.evidence_pool.items() if not self.chain.evidence_committed(e)
        ]

    # --- wiring -------------------------------------------------------------------------

    def _latest_state(self) -> StateTree:
        return StateTree(self.store, self.chain.head().state_root)

    def _is_committed(self, tx_hash: bytes) -> bool:
        return self.chain.tx_location(tx_hash) is not None

    def _send(self, peer: Peer, msg: SyncRequest | SyncResponse) -> None:
        self.peers.send(peer, msg)

    def _broadcast_consensus(self, msg: ProposalMsg | VoteMsg) -> None:
        self._mark_seen(encode_message(msg))
        self.peers.broadcast(msg)

    def _frame_seen(self, frame: bytes) -> bool:
        """Whether a received frame was already handled (checked before decoding it)."""
        return hash(frame) in self._seen

    def _mark_seen(self, frame: bytes) -> bool:
        """True the first time ``frame`` is seen (gossip dedup by content)."""
        digest = hash(frame)
        if digest in self._seen:
            return False
        self._seen[digest] = None
        while len(self._seen) > 20_000:
            self._seen.popitem(last=False)
        return True

    def _sync_needed(self, height: int) -> None:
        # A validator signed a message at ``height``: the height below it is committed.
        self.syncer.behind(height - 1)

    def _after_commit(self, block: Block, block_time_s: float) -> None:
        done = self.driver.last_committed  # receipts in memory: no read-back
        if done is not None and done.block is block:
            receipts = done.receipts
        else:
            receipts = self.chain.receipts(block.height)
        self.events.publish(BlockCommitted(block, tuple(receipts)))
        self.metrics.observe_commit(
            block.height, len(block.txs), block_time_s, self.driver.rounds_at_commit
        )
        self.metrics.set_mempool(len(self.mempool))
        self.peers.broadcast(StatusMsg(block.height))
        self.mempool.after_block(block.txs)
        self.evidence_pool.committed(block.evidence)

    def _after_sync_commit(self, block: Block, cert: CommitCertificate) -> None:
        self.mempool.update(block.txs)
        self.evidence_pool.committed(block.evidence)
        receipts = self.chain.receipts(block.height)
        self.events.publish(BlockCommitted(block, tuple(receipts)))
        self.metrics.observe_commit(block.height, len(block.txs), 0.0, cert.round + 1)
        p = self.syncer.progress
        span = max(1, p.target_height - p.start_height)
        self.metrics.set_sync(min(1.0, (p.current_height - p.start_height) / span))

    async def _on_connect(self, peer: Peer) -> None:
        self.peers.send(peer, StatusMsg(self.chain.head().height))
        self.metrics.set_peers(len(self.peers.peers))
        for msg in self.driver.own_messages:
            self.peers.send(peer, msg)

    async def _on_message(self, peer: Peer, msg: Message) -> None:
        try:
            await self._handle_message(peer, msg)
        except StorageError as exc:  # our own disk, never the peer's fault (F4)
            self._store_failed(f"handling a {type(msg).__name__} from {peer.name}: {exc}")

    async def _handle_message(self, peer: Peer, msg: Message) -> None:
        if isinstance(msg, TxBatch):
            # Validators are a full mesh: a validator's batch reached every other validator
            # from it, so relaying it would only make each of them decode it again. What an
            # observer sends (it may be linked to us alone) goes on to everyone else.
            if peer.key in self.genesis.validators:
                outbox = None
            else:
                outbox = self._relay.setdefault(peer.key, [])
            results = await self._admit(list(msg.txs), outbox)
            if any(r is not None and r.code == "bad_signature" for r in results):
                self.peers.penalise(peer, "relayed a transaction with a bad signature")
        elif isinstance(msg, ProposalMsg | VoteMsg):
            if not self.consensus_started:
                # Catching up first (F2), or an observer: not marked as seen, so the copies
                # peers re-send each second are handled once consensus has started.
                return
            frame = encode_message(msg)  # the received bytes (msg.raw): nothing is re-encoded
            if not self._mark_seen(frame):
                return
            if isinstance(msg, ProposalMsg):
                effects = self.driver.on_proposal(msg)
                held = self.driver.core.holds(msg.proposal)
            else:
                effects = self.driver.on_vote(msg.vote)
                held = self.driver.core.holds(msg.vote)
            if not held:  # set aside for now (e.g. its proposal is not here): take it again
                self._seen.pop(hash(frame), None)
            message = msg.proposal if isinstance(msg, ProposalMsg) else msg.vote
            errors = [e.error for e in effects if isinstance(e, Rejected) and e.message == message]
            if any(error.misbehaviour for error in errors):
                self.peers.penalise(peer, "sent an invalid consensus message")
                return
            if any(isinstance(error, BufferFull) for error in errors):
                return  # no room for it (not marked seen): not relayed either
            origin = msg.proposal.proposer if isinstance(msg, ProposalMsg) else msg.vote.validator
            for other_key, other in self.peers.peers.items():
                if other_key != peer.key and other_key != origin:
                    other.send(frame)
        elif isinstance(msg, EvidenceMsg):
            self._receive_evidence(peer, msg)
        elif isinstance(msg, StatusMsg):
            peer.height = max(peer.height, msg.height)
            self._status_from.add(peer.key)
            self.syncer.behind(msg.height, backed=False)  # a claim: see Syncer.target
        elif isinstance(msg, SyncRequest):
            if not self.syncer.serve(peer, msg):  # one at a time per peer (issue 15, 5)
                self.peers.penalise(
                    peer,
                    "asked for blocks before its last request was answered",
                    MINOR,
                    close=False,
                )
        elif isinstance(msg, SyncResponse):
            if not self.syncer.solicited(peer):
                self.peers.penalise(peer, "sent blocks nobody asked for", MINOR, close=False)
            elif not await self.syncer.apply(peer, msg):
                self.peers.penalise(peer, "served a block that does not check out")

    # --- evidence: gossiped once, verified before relay ---------------------------------

    def _pending_evidence(self, height: int) -> list[Evidence]:
        """What the block at ``height`` this node proposes offers to commit."""
        return self.evidence_pool.pending(self.chain.evidence_committed, height)

    def _evidence_found(self, evidence: Evidence) -> None:
        """The core found an equivocation (and pooled it): every peer hears of it once."""
        msg = EvidenceMsg(evidence)
        self._mark_seen(encode_message(msg))
        self.peers.broadcast(msg)

    def _receive_evidence(self, peer: Peer, msg: EvidenceMsg) -> None:
        """A peer's evidence: the cheap checks first (seen, height window, known or
        committed offence, the offender's quota in the pool), then both signatures; a
        piece that does not verify costs the peer its score, a new one is pooled and
        relayed to every other peer."""
        evidence = msg.evidence
        if not self._mark_seen(encode_message(msg)):
            return
        next_height = self.chain.head().height + 1
        if not (
            next_height - MAX_EVIDENCE_AGE
            <= evidence.height
            <= next_height + EVIDENCE_FUTURE_HEIGHTS
        ):
            return  # too old to commit, or from heights this node has not reached
        if not self.evidence_pool.wants(evidence) or self.chain.evidence_committed(evidence):
            return
        try:
            evidence.verify(self.genesis.chain_id, self.genesis.validators)
        except EvidenceError as exc:
            self.peers.penalise(peer, f"sent evidence that does not verify: {exc}")
            return
        if self.evidence_pool.add(evidence):
            log.warning("equivocation evidence from %s: %s", peer.name, describe_evidence(evidence))
            self.peers.broadcast(msg, exclude=peer.key)

    # --- consensus start (F2) and local faults (F4) -------------------------------------

    def _committed_height(self) -> int:
        return self.chain.head().height

    def _block_bytes(self, block_hash: bytes) -> bytes | None:
        """For the signer: the bytes of a block we are about to lock on (F1b)."""
        block = self.driver.blocks.get(block_hash)
        return None if block is None else block.encode()

    def _new_core(self) -> ConsensusCore:
        return ConsensusCore(
            chain_id=self.genesis.chain_id,
            validators=self.genesis.validators,
            signer=self.signer,
            timeouts=TimeoutConfig.from_params(self.genesis.consensus),
            height=self.chain.head().height + 1,
            evidence=self.evidence_pool,
        )

    def _on_synced(self, height: int) -> None:
        if self.consensus_started:
            self.driver.on_synced(height)

    def _store_failed(self, message: str) -> None:
        """A read of our own store failed outside catch-up (F4): stop, as catch-up does."""
        log.error(
            "local store is damaged: %s; stopping. Restore the data directory from a backup, "
            "or empty it (cityledger node init-store) to resync from peers",
            message,
        )
        self._stop_on_fault(message)

    def _on_local_fault(self, height: int, message: str) -> None:
        """Catch-up met a fault of our own at ``height`` (F4; ``Syncer`` logged it)."""
        self._stop_on_fault(message)

    def _stop_on_fault(self, message: str) -> None:
        self.fatal = message
        if self._stop is not None:
            self._stop.set()

    async def _start_consensus(self) -> None:
        """Start signing only once caught up: first hear the heights of validators with
        f+1 power (at most ``STARTUP_STATUS_WAIT_S``), then sync up to the height they
        claim (``Syncer.target``) unless catch-up stalls for ``STARTUP_STALL_S``. A
        validator that lost its store must not propose or vote at heights the network
        decided long ago (finding F2); the signer state file refuses those anyway."""
        assert self.signer is not None
        loop = asyncio.get_running_loop()
        validators = self.genesis.validators
        need = min(
            validators.skip_power,
            validators.total_power - validators.power_of(self.key.public_key),
        )
        started = last_progress = loop.time()
        last_head = self.chain.head().height
        while True:
            now = loop.time()
            head = self.chain.head().height
            if head != last_head:
                last_head, last_progress = head, now
            heard = validators.power_of_set(self._status_from & self._validator_keys())
            if heard >= need or now - started >= STARTUP_STATUS_WAIT_S:
                target = self.syncer.target()
                if head + 1 >= target:
                    break
                if now - last_progress >= STARTUP_STALL_S:
                    log.warning(
                        "catch-up stalled at height %d of %d; starting consensus anyway",
                        head,
                        target,
                    )
                    break
            await asyncio.sleep(0.1)
        head = self.chain.head().height
        if self.signer.floor_pending:  # --reset-signer-state: skip the height we are at
            floor = max(head, self.syncer.target()) + 1
            self.signer.raise_floor(floor)
            log.warning(
                "signer state was reset: this validator signs nothing up to height %d", floor
            )
        self.core = self.driver.core = self._new_core()
        lock = self.signer.lock(self.core.height)
        raw = self.signer.lock_block(self.core.height)
        if lock is not None and raw is not None:  # F1b: the block we were locked on
            try:
                block = Block.decode(raw)
            except LedgerError as exc:
                log.warning("the locked block kept by the signer does not decode: %s", exc)
            else:
                if block.hash == lock.block_hash:
                    self.driver.blocks[block.hash] = block
        log.info(
            "consensus starts at height %d after %.1f s (heard validators with power %d)",
            self.core.height,
            loop.time() - started,
            heard,
        )
        self.consensus_started = True
        self.driver.start()

    def _validator_keys(self) -> set[bytes]:
        return {v.public_key for v in self.genesis.validators.validators}

    # --- background loops ---------------------------------------------------------------

    async def _gossip_txs(self) -> None:
        interval = self.config.mempool.gossip_interval_ms / 1000
        while True:
            await asyncio.sleep(interval)
            if self._outbox:
                batch, self._outbox = self._outbox, []
                for i in range(0, len(batch), 2000):
                    self.peers.broadcast(TxBatch(tuple(batch[i : i + 2000])))
            if self._relay:
                relay, self._relay = self._relay, {}
                for source, txs in relay.items():
                    for i in range(0, len(txs), 2000):
                        self.peers.broadcast(TxBatch(tuple(txs[i : i + 2000])), exclude=source)

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(STATUS_INTERVAL_S)
            self.peers.broadcast(StatusMsg(self.chain.head().height))
            if self.mempool.expire(time.monotonic()):  # pending past [mempool] pending_ttl_s
                self.metrics.set_mempool(len(self.mempool))
            if self.consensus_started:
                self.driver.resend_own()
            self.syncer.maybe_request()
            self.metrics.set_peers(len(self.peers.peers))

    async def run(self, stop: asyncio.Event) -> None:
        """Serve until ``stop`` is set (or the node stops itself: then ``fatal`` says why)."""
        self._stop = stop
        api = await _start_site(
            make_app(
                self, self.config.api, metrics=self.metrics, on_store_failure=self._store_failed
            ),
            self.config.api.listen,
        )
        p2p_app = web.Application(client_max_size=self.config.p2p.max_frame_bytes)
        p2p_app.router.add_get("/p2p", self.peers.handle)
        p2p = await _start_site(p2p_app, self.config.p2p.listen)
        log.info(
            "node %s: API on http://%s, p2p on %s, height %d",
            self.config.name,
            self.config.api.listen,
            self.config.p2p.listen,
            self.chain.head().height,
        )
        try:
            async with asyncio.TaskGroup() as tasks:
                for address in self.config.p2p.peers:
                    tasks.create_task(self.peers.dial_forever(address))
                tasks.create_task(self._gossip_txs())
                tasks.create_task(self._heartbeat())
                if self.is_validator:
                    tasks.create_task(self._start_consensus())
                await stop.wait()
                raise _Stop
        except* _Stop:
            pass
        finally:
            log.info("node %s stopping", self.config.name)
            self.signature_worker.close()
            self.syncer.close()
            await self.peers.close()
            await api.cleanup()
            await p2p.cleanup()


class _Stop(Exception):
    """Raised inside the TaskGroup to cancel every task on shutdown."""


async def _start_site(app: web.Application, listen: str) -> web.AppRunner:
    host, port = split_host_port(listen)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, host, port, reuse_address=True).start()
    return runner


def open_node(
    home_path: str, *, passphrase: str | None = None, reset_signer_state: bool = False
) -> Node:
    """Load a node home (config, genesis, key, store, signer state) into a :class:`Node`."""
    home = Home(home_path)
    config = home.load_config()
    genesis = Genesis.load(home.genesis)
    key = read_key_file(home.key, passphrase)
    store = open_leveldb(
        home.data,
        block_cache_mb=config.storage.block_cache_mb,
        write_buffer_mb=config.storage.write_buffer_mb,
    )
    try:
        return Node(
            config,
            genesis,
            key,
            store,
            signer_state=home.signer_state,
            reset_signer_state=reset_signer_state,
        )
    except BaseException:
        store.close()
        raise


async def serve(
    home_path: str, *, passphrase: str | None = None, reset_signer_state: bool = False
) -> None:
    """Run the node at ``home_path`` until SIGINT or SIGTERM; raise
    :class:`LocalStoreFault` if it stopped itself because its store is damaged."""
    node = open_node(home_path, passphrase=passphrase, reset_signer_state=reset_signer_state)
    home = Home(home_path)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    with open(home.pid, "w", encoding="ascii") as f:
        f.write(f"{os.getpid()}\n")
    try:
        await node.run(stop)
    finally:
        node.store.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(home.pid)
        if node.fatal is None:
            log.info("node stopped cleanly")
    if node.fatal is not None:
        raise LocalStoreFault("the node stopped: its local store is damaged (see the log)")
