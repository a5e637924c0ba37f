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
from collections.abc import Callable
from dataclasses import replace

from aiohttp import web

from contracts.engine import genesis_state
from ledger.block import Block
from ledger.crypto import PrivateKey
from ledger.encoding import Value
from ledger.errors import LedgerError
from ledger.evidence import Evidence
from ledger.genesis import Genesis
from ledger.head import HeadStatement
from ledger.keyfile import read_key_file
from ledger.state import StateTree
from ledger.storage import KVStore, open_leveldb
from ledger.storage.leveldb import LevelDBStore
from ledger.tx import Transaction
from ledger.votes import CommitCertificate
from node.admission import Admission
from node.api.app import make_app
from node.api.metrics import Metrics
from node.background import keep_in_touch, sign_heads, watch_rotation
from node.backup import BACKUP_SIGNAL, BackupWorker
from node.chain import ChainStore
from node.collector import settle_after_start
from node.commits import CommitFanout
from node.config import ConfigError, Home, NodeConfig, plaintext_problem
from node.consensus.core import ConsensusCore
from node.consensus.evidence import EvidencePool
from node.consensus.signer import Signer, SignerStateFile, open_signer
from node.consensus.timeouts import TimeoutConfig
from node.driver import ConsensusDriver
from node.events import EventHub
from node.executor import Executor
from node.gossip import Gossip
from node.head_book import HeadBook
from node.heartbeat import log_heartbeats
from node.latency_budget import LatencyBudget
from node.listen import PendingCount, start_site
from node.membership import follow_validator_set, reload_links
from node.mempool import Mempool, MempoolError
from node.peers import PeerManager
from node.rotation import finish_interrupted, read_next_key, switch
from node.service import Queries
from node.sigcache import SignatureCache, SignatureWorker
from node.startup import raise_reset_floor, restore_locked_block, wait_until_caught_up
from node.sync import LocalStoreFault, Syncer
from node.tls import LinkTLS, ensure_identity
from node.validator_peers import MAX_CHANGES_READ, validator_names

log = logging.getLogger("cityledger.node")


class Node:
    """A validator (or observer) node: the composition root that builds its parts and
    wires each to the small interface it talks to. Implements
    :class:`node.handle.NodeHandle` (the API), :class:`node.gossip.GossipHost`,
    :class:`node.driver.DriverHost` and :class:`node.sync.SyncHost`."""

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
    ) -> None:
        """``signer_state``: the signer state file (None: in memory; start-up rules and
        ``reset_signer_state``: :func:`node.consensus.signer.open_signer`); ``link_tls``:
        :func:`_wanted_tls`; ``next_key``: the key a rotation hands the seat to."""
        self.config = config
        self.genesis = genesis
        self.key = key
        self.next_key = next_key
        self.rotating = False  # stopped itself to reopen under next_key (node.rotation)
        self.store = store
        self.clock = clock
        self.chain = ChainStore(store, genesis)
        self.chain.initialise(genesis_state(genesis))
        self.sigs, self.signature_worker = _signature_checks(genesis, config)
        self.executor = Executor(self.chain, self.sigs)
        self.executor.prune_state(config.storage.state_keep_heights)
        self.mempool = _mempool(config, genesis, self.sigs, self.chain)
        self.queries = Queries(self.chain)
        self.events = EventHub()
        self.metrics = Metrics()
        self.evidence_pool = EvidencePool(store)
        self.heads = HeadBook(self.chain, clock)  # head statements: memory only
        # gossip's host is this node; the peers hand every message to the gossip
        self.gossip = Gossip(self, genesis, self.chain, self.evidence_pool, self.metrics)
        self.link_tls = _wanted_tls(key, genesis, config, link_tls, self.chain)
        self.peers = _peer_manager(
            key, self.chain, config, self.gossip, self.mempool, self.link_tls
        )
        self.commits = CommitFanout(
            self.chain, self.mempool, self.evidence_pool, self.events, self.metrics, self.peers
        )
        self.is_validator = is_or_becomes_validator(self.chain, key.public_key)
        self._signer_state = (signer_state, reset_signer_state, self.chain.head().height)
        self.signer: Signer | None = None
        if self.is_validator:
            _attach_signer(self)
        self.core = _core(genesis, self.signer, self.chain, self.evidence_pool, config)
        self.consensus_started = False  # not before the node has caught up
        self.fatal: str | None = None  # why the node stopped itself
        self._stop: asyncio.Event | None = None
        # the driver sends through the gossip, the syncer through the peers; both report here
        self.driver = ConsensusDriver(
            self.core, self.executor, self.mempool, self.gossip, self, clock=clock
        )
        self.admission = Admission(
            self.mempool, self.signature_worker, self.metrics, self.driver.txs_arrived
        )
        self.syncer = Syncer(self.executor, self.peers, self, batch_blocks=config.sync.batch_blocks)
        self.started_at = clock()

    # --- NodeHandle ---------------------------------------------------------------------

    async def submit(self, txs: list[Transaction]) -> list[MempoolError | None]:
        return await self.admission.admit(txs, self.gossip.outbox, client=True)

    def status(self) -> dict[str, Value]:
        return node_status(self)

    @property
    def public_key(self) -> bytes:
        return self.key.public_key

    def head_statements(self, height: int) -> list[HeadStatement]:
        return self.heads.statements(height)

    def evidence(self) -> list[dict[str, Value]]:
        """The pool's pending evidence (not committed yet); committed is in the chain."""
        return [
            e.to_obj() for e in self.evidence_pool.items() if not self.chain.evidence_committed(e)
        ]

    # --- DriverHost and SyncHost --------------------------------------------------------

    def committed(self, block: Block, block_time_s: float) -> None:
        driver = self.driver
        self.commits.by_consensus(
            block, block_time_s, driver.last_committed, driver.rounds_at_commit
        )

    def sync_needed(self, height: int) -> None:
        # A validator signed a message at ``height``: the height below it is committed.
        self.syncer.behind(height - 1)

    def pending_evidence(self, height: int) -> list[Evidence]:
        """What the block at ``height`` this node proposes offers to commit."""
        return self.evidence_pool.pending(self.chain.evidence_committed, height)

    def synced(self, block: Block, cert: CommitCertificate) -> None:
        self.commits.by_sync(block, cert, self.syncer.progress)

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
        _attach_signer(self)
        await self._start_consensus()

    async def _start_consensus(self) -> None:
        """Start signing only once caught up (:mod:`node.startup`)."""
        assert self.signer is not None
        loop = asyncio.get_running_loop()
        started = loop.time()
        heard = await wait_until_caught_up(
            self.chain,
            self.syncer,
            self.gossip.status_from,
            self.chain.validators_at(self.chain.head().height + 1),
            self.key.public_key,
        )
        raise_reset_floor(self.signer, self.chain.head().height, self.syncer.target())
        self.core = _core(self.genesis, self.signer, self.chain, self.evidence_pool, self.config)
        self.driver.core = self.core
        restore_locked_block(self.signer, self.driver, self.core.height)
        log.info(
            "consensus starts at height %d after %.1f s (heard validators with power %d)",
            self.core.height,
            loop.time() - started,
            heard,
        )
        self.consensus_started = True
        self.driver.start()

    def stop_to_rotate(self) -> None:
        """Stop, to reopen under ``next_key`` (:func:`node.background.watch_rotation`)."""
        self.rotating = True
        if self._stop is not None:
            self._stop.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Serve until ``stop`` is set (or the node stops itself: then ``fatal`` says why)."""
        self._stop = stop
        api, p2p = await _start_sites(self)
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
                    tasks.create_task(self._start_consensus())
                tasks.create_task(watch_rotation(self))
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


def _signature_checks(
    genesis: Genesis, config: NodeConfig
) -> tuple[SignatureCache, SignatureWorker]:
    """The signature cache, and the worker that checks batches' signatures on another core."""
    sigs = SignatureCache()
    return sigs, SignatureWorker(
        sigs, genesis.chain_id, processes=config.mempool.signature_processes
    )


def _attach_signer(node: Node) -> None:
    """Open the node's signer (its state file's start-up rules: :func:`_open_signer`);
    it reads a block it is about to lock on from the driver."""
    path, reset, head_at_start = node._signer_state
    validated = _heights_validated(node.chain, node.key.public_key, head_at_start)
    signer = _open_signer(node.key, node.genesis, node.store, node.chain, path, reset, validated)

    def block_bytes(block_hash: bytes) -> bytes | None:
        block = node.driver.blocks.get(block_hash)
        return None if block is None else block.encode()

    signer.block_source = block_bytes
    node.signer = signer


def _open_signer(
    key: PrivateKey,
    genesis: Genesis,
    store: KVStore,
    chain: ChainStore,
    signer_state: str | None,
    reset: bool,
    validated: int,
) -> Signer:
    """A validator's signer: from its state file (:func:`open_signer`), or in memory only
    (``signer_state`` None: tests). It never signs at or below the committed head.
    ``validated``: :func:`_heights_validated`."""

    def committed() -> int:
        return chain.head().height

    if signer_state is None:
        return Signer(key, genesis.chain_id, committed_height=committed)
    return open_signer(
        key,
        genesis.chain_id,
        SignerStateFile(signer_state),
        store,
        chain_height=validated,
        reset=reset,
        committed_height=committed,
    )


def _heights_validated(chain: ChainStore, public_key: bytes, head_at_start: int) -> int:
    """The committed head if ``public_key`` could have signed a vote that counts on this
    chain before this node opens its signer, else 0 (open_signer: a missing signer state
    is then a new validator's, not a lost record). It could if it was in a validator set
    at or below the head the node had when it *started*: a node that started as an
    observer and is voted in while it runs has signed nothing here, however far its head
    has moved past the change by the time it notices."""
    if public_key in chain.genesis.validators:
        return chain.head().height
    for effective, validators in chain.validator_changes(0, limit=MAX_CHANGES_READ):
        if effective > head_at_start:
            break
        if public_key in validators:
            return chain.head().height
    return 0


def _core(
    genesis: Genesis,
    signer: Signer | None,
    chain: ChainStore,
    evidence_pool: EvidencePool,
    config: NodeConfig,
) -> ConsensusCore:
    """A consensus core at the height after our head (an observer's has no signer), with
    the validator sets in force there (node/chain.py): the genesis file's round timeouts,
    the node's idle heartbeat (``[consensus] empty_block_interval_ms``)."""
    height = chain.head().height + 1
    timeouts = replace(
        TimeoutConfig.from_params(genesis.consensus),
        empty_block_interval_ms=config.consensus.empty_block_interval_ms,
    )
    return ConsensusCore(
        chain_id=genesis.chain_id,
        validators=chain.validators_at(height),
        upcoming=chain.validators_at(height + 1),
        signer=signer,
        timeouts=timeouts,
        height=height,
        evidence=evidence_pool,
    )


def _mempool(
    config: NodeConfig, genesis: Genesis, sigs: SignatureCache, chain: ChainStore
) -> Mempool:
    return Mempool(
        genesis,
        sigs,
        lambda: StateTree(chain.store, chain.head().state_root),
        lambda tx_hash: chain.tx_location(tx_hash) is not None,
        max_txs=config.mempool.max_txs,
        max_bytes=config.mempool.max_bytes,
        max_gapped_per_sender=config.mempool.max_gapped_per_sender,
        max_pending_per_org=config.mempool.max_pending_per_org,
        ttl_s=config.mempool.pending_ttl_s,
        budget=LatencyBudget(
            config.mempool.latency_budget_ms / 1000, genesis.consensus.max_block_txs
        ),
    )


def _peer_manager(
    key: PrivateKey,
    chain: ChainStore,
    config: NodeConfig,
    gossip: Gossip,
    mempool: Mempool,
    link_tls: LinkTLS | None,
) -> PeerManager:
    """The links to validators and configured observers; each message goes to ``gossip``."""
    genesis = chain.genesis
    return PeerManager(
        key,
        genesis.chain_id,
        allowed_peers(genesis, config, chain),
        config.p2p,
        gossip.on_message,
        gossip.on_connect,
        seen=gossip.frame_seen,
        known_tx=mempool.by_signature,
        tls=link_tls if config.p2p.tls else None,
        genesis_hash=genesis.hash,
    )


def _wanted_tls(
    key: PrivateKey,
    genesis: Genesis,
    config: NodeConfig,
    link_tls: LinkTLS | None,
    chain: ChainStore | None = None,
) -> LinkTLS | None:
    """The TLS of the peer links and the API: ``link_tls`` (from the home's files), or,
    where ``[p2p] tls`` or ``[api] tls`` wants one and none is given (in-process
    nodes), a TLS key kept in memory only."""
    if link_tls is None and (config.p2p.tls or config.api.tls):
        return LinkTLS.ephemeral(key, allowed_peers(genesis, config, chain))
    return link_tls


def is_or_becomes_validator(chain: ChainStore, key: bytes) -> bool:
    """Whether ``key`` votes in the genesis set or in a set the chain has put in force
    (or will, within two heights). A node whose key is in none follows as an observer;
    one added later signs from the height it is added at, once restarted or sooner if
    it was a validator before (the core counts a signer without power as an observer)."""
    head = chain.head().height
    sets = [chain.genesis.validators, chain.validators_at(head + 2)]
    sets.extend(s for _, s in chain.validator_changes(0, limit=1000))
    return any(key in s for s in sets)


def allowed_peers(
    genesis: Genesis, config: NodeConfig, chain: ChainStore | None = None
) -> dict[bytes, str]:
    """The keys a node links with, and their names: validators (of genesis, and of the
    set changes on ``chain`` when given) and configured observers."""
    if chain is None:
        names = {v.public_key: v.name for v in genesis.validators.validators}
    else:
        names = validator_names(chain)
    for hex_key in config.p2p.observers:
        names[bytes.fromhex(hex_key)] = f"observer-{hex_key[:8]}"
    return names


def node_status(node: Node) -> dict[str, Value]:
    """``GET /v1/status``: head, consensus position, peers, mempool, sync, evidence."""
    head = node.chain.head()
    p = node.syncer.progress
    return {
        "node": node.config.name,
        "chain_id": node.genesis.chain_id,
        "public_key": node.key.public_key,
        "validator": node.is_validator,
        "height": head.height,
        "block_hash": head.block_hash,
        "block_time_ms": head.time_ms,
        "log_size": head.log_size,
        "consensus": {
            "height": node.core.height,
            "round": node.core.round,
            "step": node.core.step.name.lower(),
        },
        "peers": [
            {"name": peer.name, "key": key, "height": peer.height}
            for key, peer in node.peers.peers.items()
        ],
        "missing": missing_peers(node),
        "mempool": len(node.mempool),
        "sync": {
            "syncing": p.syncing,
            "target_height": p.target_height,
            "blocks_per_s": int(p.blocks_per_s),
            "txs_per_s": int(p.txs_per_s),
            "eta_s": None if p.eta_s is None else int(p.eta_s),
        },
        "evidence": len(node.evidence_pool),
        "uptime_s": int(node.clock() - node.started_at),
    }


def missing_peers(node: Node) -> dict[str, Value]:
    """The validators this node has no link to, since when, and why the last dial to
    an address failed (the address is not tied to a key until a link succeeded)."""
    names = node.peers.names
    validators = node.chain.validators_at(node.chain.head().height + 1)
    missing: list[Value] = [
        {"name": names.get(key, "?"), "key": key, "since_ms": int(since * 1000)}
        for key, since in sorted(node.peers.missing_since.items(), key=lambda kv: kv[1])
        if key in validators
    ]
    failures: list[Value] = [
        {"address": address, "reason": reason}
        for address, reason in sorted(node.peers.dial_failures.items())
    ]
    return {"validators": missing, "dial_failures": failures}


async def _start_sites(node: Node) -> tuple[web.AppRunner, web.AppRunner]:
    """The API and the p2p listener, started (logged once both are up)."""
    config = node.config
    tls = node.peers.tls
    deadline_s = config.p2p.handshake_timeout_ms / 1000
    api_tls = node.link_tls.api if config.api.tls and node.link_tls is not None else None
    api = await start_site(
        make_app(node, config.api, metrics=node.metrics, on_store_failure=node.store_failed),
        config.api.listen,
        ssl_context=api_tls,
        handshake_timeout_s=deadline_s,
    )
    p2p_app = web.Application(client_max_size=config.p2p.max_frame_bytes)
    p2p_app.router.add_get("/p2p", node.peers.handle)
    p2p = await start_site(
        p2p_app,
        config.p2p.listen,
        ssl_context=None if tls is None else tls.server,
        handshake_timeout_s=deadline_s,
        # connections still in the TLS handshake, counted apart from node.peers.pending
        tls_pending=PendingCount(
            config.p2p.max_pending_handshakes, config.p2p.max_pending_per_address
        ),
    )
    log.info(
        "node %s: API on %s://%s, p2p on %s (%s), height %d",
        config.name,
        "http" if api_tls is None else "https",
        config.api.listen,
        config.p2p.listen,
        "plaintext" if tls is None else "TLS 1.3",
        node.chain.head().height,
    )
    return api, p2p


class _Stop(Exception):
    """Raised inside the TaskGroup to cancel every task on shutdown."""


def open_node(
    home_path: str, *, passphrase: str | None = None, reset_signer_state: bool = False
) -> Node:
    """Load a node home (config, genesis, key, store, signer state) into a :class:`Node`."""
    home = Home(home_path)
    config = home.load_config()
    problem = plaintext_problem(config)
    if problem is not None:
        raise ConfigError(problem)
    genesis = Genesis.load(home.genesis)
    key = read_key_file(home.key, passphrase)
    finish_interrupted(home, key)  # a key switch a power cut stopped (node.rotation)
    next_key = read_next_key(home, passphrase)
    link_tls = _link_tls(home, key, genesis, config) if config.p2p.tls or config.api.tls else None
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
            link_tls=link_tls,
            next_key=next_key,
        )
    except BaseException:
        store.close()
        raise


def _link_tls(home: Home, key: PrivateKey, genesis: Genesis, config: NodeConfig) -> LinkTLS:
    """The home's TLS key and certificate (created, and said so, where missing)."""
    if ensure_identity(home.tls_key, home.tls_cert, key):
        log.warning("created a TLS key for peer links: %s and %s", home.tls_key, home.tls_cert)
    return LinkTLS.from_files(key, allowed_peers(genesis, config), home.tls_key, home.tls_cert)


def _reload(node: Node, home: Home, passphrase: str | None) -> None:
    """SIGHUP: the links' files and observers, and the key waiting for a rotation."""
    reload_links(node, home)
    try:
        node.next_key = read_next_key(home, passphrase)
    except (LedgerError, OSError) as exc:  # a bad file must not stop a running node
        log.error("the next key was not read (%s): no key rotation until it is", exc)
        return
    if node.next_key is not None:
        log.info(
            "next consensus key %s… read: the node switches to it once the "
            "validator set hands it this node's seat",
            node.next_key.public_key.hex()[:16],
        )


async def serve(
    home_path: str, *, passphrase: str | None = None, reset_signer_state: bool = False
) -> None:
    """Run the node at ``home_path`` until SIGINT or SIGTERM; raise
    :class:`LocalStoreFault` if it stopped itself because its store is damaged. A node
    that stopped itself for a key rotation (:mod:`node.rotation`) is switched to its new
    key and opened again, in this process."""
    signalled = asyncio.Event()  # SIGINT/SIGTERM: no life after this one
    while True:
        node = await _serve_once(home_path, passphrase, reset_signer_state, signalled)
        if not node.rotating or node.next_key is None or signalled.is_set():
            return
        aside = switch(Home(home_path), node.key, node.next_key)
        log.info("the old key and its signer state are kept in %s", aside)
        reset_signer_state = False  # the new key's state is its own, fresh from rotate-key


async def _serve_once(
    home_path: str, passphrase: str | None, reset_signer_state: bool, signalled: asyncio.Event
) -> Node:
    """One life of a node, from opening its home to closing its store."""
    node = open_node(home_path, passphrase=passphrase, reset_signer_state=reset_signer_state)
    home = Home(home_path)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def stop_for_good() -> None:
        signalled.set()
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop_for_good)
    # `node rotate-tls-key` wrote new TLS files; `devnet join` added an observer;
    # `node rotate-key` wrote the next consensus key
    loop.add_signal_handler(signal.SIGHUP, lambda: _reload(node, home, passphrase))
    backups = BackupWorker(node.store, home) if isinstance(node.store, LevelDBStore) else None
    if backups is not None:  # `cityledger node backup` asked through the home
        loop.add_signal_handler(BACKUP_SIGNAL, backups.requested)
    with open(home.pid, "w", encoding="ascii") as f:
        f.write(f"{os.getpid()}\n")
    settle_after_start()
    ran = False
    try:
        await node.run(stop)
        ran = True
    finally:
        if backups is not None:
            await backups.finish()
        node.store.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(home.pid)
        if ran and node.fatal is None and not node.rotating:
            log.info("node stopped cleanly")
    if node.fatal is not None:
        raise LocalStoreFault("the node stopped: its local store is damaged (see the log)")
    return node
