"""A node: store, executor, mempool, consensus, peers, sync and API, wired together.

Everything runs in one asyncio TaskGroup; when told to stop it closes the links and
the API (the caller closes the store: every commit is already a synced batch, so
there is nothing else to flush). Opening a node home and running it as a process,
with its signals: :mod:`node.process`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence

from contracts.engine import genesis_state
from ledger.block import Block, Receipt
from ledger.crypto import PrivateKey
from ledger.encoding import Value
from ledger.evidence import Evidence
from ledger.genesis import Genesis
from ledger.head import HeadStatement
from ledger.storage import KVStore
from ledger.tx import Transaction
from ledger.votes import CommitCertificate
from node import parts
from node.admission import Admission
from node.api.metrics import Metrics
from node.background import keep_in_touch, sign_heads, watch_rotation
from node.bounded import BoundedPart
from node.chain import ChainStore
from node.commits import CommitFanout
from node.config import NodeConfig
from node.consensus.evidence import EvidencePool
from node.consensus.signer import Signer
from node.driver import ConsensusDriver
from node.events import EventHub
from node.gossip import Gossip
from node.head_book import HeadBook
from node.heartbeat import log_heartbeats
from node.membership import follow_validator_set
from node.memory import node_parts
from node.mempool import MempoolError
from node.peers import Peer
from node.service import Queries
from node.signer_setup import SignerStart, attach_signer
from node.sites import start_sites
from node.snapshots import SnapshotBook
from node.startup import start_consensus
from node.statesync import Progress
from node.status import node_status
from node.tls import LinkTLS
from node.validator_peers import is_or_becomes_validator
from node.waiting_room import WaitingRoom
from node.wire import SnapRequest
from node.write_behind import WriteBehind

log = logging.getLogger("cityledger.node")


class Node:
    """A validator (or observer) node: the composition root that builds its parts and
    wires each to the small interface it talks to. Implements
    :class:`node.handle.NodeHandle` (the API), :class:`node.gossip.GossipHost`,
    :class:`node.driver.DriverHost` and :class:`node.sync_interfaces.SyncHost`."""

    state_synced: Progress | None = None  # how this life's state sync went (/v1/status)
    consensus_started = False  # not before the node has caught up
    fatal: str | None = None  # why the node stopped itself
    _stop: asyncio.Event | None = None

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
        link_tls: LinkTLS | None = None,
        next_key: PrivateKey | None = None,
        snapshot_dir: str | None = None,
    ) -> None:
        """``signer_state``: the signer state file (None: in memory; start-up rules and
        ``reset_signer_state``: :func:`node.consensus.signer.open_signer`); ``link_tls``:
        :func:`node.parts.wanted_tls`; ``next_key``: the key a rotation hands the seat to;
        ``snapshot_dir``: where state snapshots are kept (None: none taken or served)."""
        self.config = config
        self.genesis = genesis
        self.key = key
        self.next_key = next_key
        self.rotating = False  # stopped itself to reopen under next_key (node.rotation)
        self.store = store
        self.clock = clock
        self.chain = ChainStore(WriteBehind(store), genesis)  # catch-up writes behind
        self.chain.initialise(genesis_state(genesis))
        self.sigs, self.signature_worker = parts.signature_checks(genesis, config)
        self.executor = parts.executor(self.chain, self.sigs, config)
        self.mempool = parts.mempool(config, genesis, self.sigs, self.chain)
        self.queries = Queries(self.chain)
        self.events = EventHub()
        self.metrics = Metrics()
        self.evidence_pool = EvidencePool(store)
        self.heads = HeadBook(self.chain, clock)  # head statements: memory only
        # gossip's host is this node; the peers hand every message to the gossip
        self.gossip = Gossip(self, genesis, self.chain, self.evidence_pool, self.metrics)
        self.link_tls = parts.wanted_tls(key, genesis, config, link_tls, self.chain)
        self.peers = parts.peer_manager(
            key, self.chain, config, self.gossip, self.mempool, self.link_tls
        )
        self.commits = CommitFanout(
            self.chain, self.mempool, self.evidence_pool, self.events, self.metrics, self.peers
        )
        self.is_validator = is_or_becomes_validator(self.chain, key.public_key)
        self.signer_start = SignerStart(signer_state, reset_signer_state, self.chain.head().height)
        self.signer: Signer | None = None
        if self.is_validator:
            attach_signer(self)
        self.core = parts.consensus_core(self.chain, self.signer, self.evidence_pool, config)
        # the driver sends through the gossip, the syncer through the peers; both report here
        self.driver = ConsensusDriver(
            self.core,
            self.executor,
            self.mempool,
            self.gossip,
            self,
            clock=clock,
            speculate=config.consensus.speculate,
        )
        self.admission = Admission(
            self.mempool, self.signature_worker, self.metrics, self.driver.txs_arrived
        )
        self.waiting_room = WaitingRoom(
            self.admission.client_room,
            max_wait_s=config.mempool.waiting_room_ms / 1000,
            observe=lambda outcome: self.metrics.admission_waited.labels(outcome).inc(),
        )
        self.syncer = parts.syncer(self.executor, self.peers, self, config, self.signature_worker)
        self.started_at = clock()
        self.snapshots = SnapshotBook.of(snapshot_dir, config.snapshots, genesis, self.chain.store)

    # --- NodeHandle ---------------------------------------------------------------------

    async def submit(self, txs: list[Transaction]) -> list[MempoolError | None]:
        return await self.admission.admit(txs, self.gossip.send_soon, client=True)

    def client_room(self) -> int:
        return self.admission.client_room()

    def refuse_over_budget(self, count: int) -> MempoolError:
        return self.admission.refuse_over_budget(count)

    def status(self) -> dict[str, Value]:
        return node_status(self)

    @property
    def public_key(self) -> bytes:
        return self.key.public_key

    def head_statements(self, height: int) -> list[HeadStatement]:
        return self.heads.statements(height)

    def bounded_parts(self) -> list[BoundedPart]:
        return node_parts(self)

    def evidence(self) -> list[dict[str, Value]]:
        """The pool's pending evidence (not committed yet); committed is in the chain."""
        return [
            e.to_obj() for e in self.evidence_pool.items() if not self.chain.evidence_committed(e)
        ]

    # --- DriverHost and SyncHost --------------------------------------------------------

    def committed(self, block: Block, block_time_s: float) -> None:
        driver = self.driver
        self.commits.by_consensus(
            block,
            block_time_s,
            driver.last_committed,
            driver.rounds_at_commit,
            driver.last_phases,
            driver.last_stalls,
        )
        self.waiting_room.opened()
        self.snapshots.committed(self.chain.store, block.height)

    def snapshot_request(self, peer: Peer, msg: SnapRequest) -> bool:
        """A peer asks for a snapshot part (node/snapshots.py); False: refused."""
        return self.snapshots.serve(peer, msg, self.peers.deliver)

    def sync_needed(self, height: int) -> None:
        # A validator signed a message at ``height``: the height below it is committed.
        self.syncer.behind(height - 1)

    def pending_evidence(self, height: int) -> list[Evidence]:
        """What the block at ``height`` this node proposes offers to commit."""
        return self.evidence_pool.pending(self.chain.evidence_committed, height)

    def synced(self, block: Block, cert: CommitCertificate, receipts: Sequence[Receipt]) -> None:
        self.commits.by_sync(block, cert, receipts, self.syncer.progress)
        self.waiting_room.opened()
        self.snapshots.committed(self.chain.store, block.height)

    def sync_advanced(self, height: int) -> None:
        if self.consensus_started:
            self.driver.on_synced(height)

    # --- local faults ------------------------------------------------------------------

    def store_failed(self, message: str) -> None:
        """A read of our own store failed outside catch-up: stop, as catch-up does."""
        log.error(
            "local store is damaged: %s; stopping. Restore the data directory from a backup, "
            "or empty it (cityledger node init-store) to resync from peers",
            message,
        )
        self.local_fault(None, message)

    def local_fault(self, height: int | None, message: str) -> None:
        """Our own store failed (catch-up logged it, or :meth:`store_failed`): stop."""
        self.fatal = message
        if self._stop is not None:
            self._stop.set()

    # --- consensus ----------------------------------------------------------------------

    async def become_validator(self) -> None:
        """A set change added this observer's key: open its signer, start consensus (it
        signs from the height the set gives it power: node/consensus)."""
        self.is_validator = True
        attach_signer(self)
        await start_consensus(self)

    def stop_to_rotate(self) -> None:
        """Stop, to reopen under ``next_key`` (:func:`node.background.watch_rotation`)."""
        self.rotating = True
        if self._stop is not None:
            self._stop.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Serve until ``stop`` is set (or the node stops itself: then ``fatal`` says why)."""
        self._stop = stop
        api, p2p = await start_sites(self)
        self.peers.expect([v.public_key for v in self.genesis.validators.validators])
        try:
            async with asyncio.TaskGroup() as tasks:
                for address in self.config.p2p.peers:
                    tasks.create_task(self.peers.dial_forever(address))
                tasks.create_task(
                    self.gossip.gossip_txs(self.config.mempool.gossip_interval_ms / 1000)
                )
                tasks.create_task(keep_in_touch(self))
                tasks.create_task(sign_heads(self))
                tasks.create_task(log_heartbeats(self, self.clock))
                tasks.create_task(follow_validator_set(self))
                if self.is_validator:
                    tasks.create_task(start_consensus(self))
                tasks.create_task(watch_rotation(self))
                await stop.wait()
                raise _Stop
        except* _Stop:
            pass
        finally:
            log.info("node %s stopping", self.config.name)
            self.snapshots.closing = True  # a snapshot being written stops at its next chunk
            self.signature_worker.close()
            self.syncer.close()
            await self.peers.close()
            await api.cleanup()
            await p2p.cleanup()


class _Stop(Exception):
    """Raised inside the TaskGroup to cancel every task on shutdown."""
