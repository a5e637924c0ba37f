"""The parts a :class:`node.runtime.Node` is built from, each made from the node's
config and genesis: the signature checks, the executor, the mempool, the consensus
core, the peer links and their TLS, the syncer. Kept apart from the node so that the
node reads as the wiring of these parts, and each part's settings can be found in one
place."""

from __future__ import annotations

from dataclasses import replace

from ledger.crypto import PrivateKey
from ledger.genesis import Genesis
from ledger.state import StateTree
from node.chain import ChainStore
from node.config import NodeConfig
from node.consensus.core import ConsensusCore
from node.consensus.evidence import EvidencePool
from node.consensus.signer import Signer
from node.consensus.timeouts import TimeoutConfig
from node.executor import Executor
from node.gossip import Gossip
from node.latency_budget import FLOOR_TXS, START_TXS, LatencyBudget
from node.mempool import Mempool
from node.peers import PeerManager
from node.sigcache import SignatureCache, SignatureWorker
from node.sync import Syncer
from node.sync_interfaces import SyncHost
from node.tls import LinkTLS
from node.validator_peers import allowed_peers


def signature_checks(
    genesis: Genesis, config: NodeConfig
) -> tuple[SignatureCache, SignatureWorker]:
    """The signature cache, and the worker that checks batches' signatures on another core."""
    sigs = SignatureCache()
    return sigs, SignatureWorker(
        sigs, genesis.chain_id, processes=config.mempool.signature_processes
    )


def executor(chain: ChainStore, sigs: SignatureCache, config: NodeConfig) -> Executor:
    """The block executor, pruning old state and old blocks if ``[storage]
    state_keep_heights`` and ``block_keep_heights`` say so."""
    made = Executor(chain, sigs)
    made.prune_state(config.storage.state_keep_heights)
    made.prune_blocks(config.storage.block_keep_heights)
    return made


def syncer(
    executor: Executor,
    peers: PeerManager,
    host: SyncHost,
    config: NodeConfig,
    worker: SignatureWorker,
) -> Syncer:
    """Catch-up: blocks fetched from the peers, their payload signatures checked ahead
    on the signature worker while the blocks before them execute."""
    return Syncer(
        executor,
        peers,
        host,
        batch_blocks=config.sync.batch_blocks,
        precheck=lambda txs: worker.check(txs, signatures=False),
    )


def consensus_core(
    chain: ChainStore, signer: Signer | None, evidence_pool: EvidencePool, config: NodeConfig
) -> ConsensusCore:
    """A consensus core at the height after our head (an observer's has no signer), with
    the validator sets in force there (node/chain.py): the genesis file's round timeouts,
    the node's idle heartbeat (``[consensus] empty_block_interval_ms``)."""
    genesis = chain.genesis
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


def mempool(
    config: NodeConfig, genesis: Genesis, sigs: SignatureCache, chain: ChainStore
) -> Mempool:
    """The mempool: it checks nonces and roles against the state at the committed head,
    and duplicates against the chain's transaction index."""
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
            config.mempool.latency_budget_ms / 1000,
            min(genesis.consensus.max_block_txs, FLOOR_TXS),
            start_txs=min(genesis.consensus.max_block_txs, START_TXS),
            entry_points=len(genesis.validators.validators),
        ),
    )


def peer_manager(
    key: PrivateKey,
    chain: ChainStore,
    config: NodeConfig,
    gossip: Gossip,
    mempool: Mempool,
    link_tls: LinkTLS | None,
) -> PeerManager:
    """The links to validators and configured observers; each message goes to ``gossip``."""
    genesis = chain.genesis
    peers = PeerManager(
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
    peers.observers.update(bytes.fromhex(k) for k in config.p2p.observers)
    return peers


def wanted_tls(
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
