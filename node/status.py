"""``GET /v1/status``: what a running node reports of itself — head, consensus
position, peers and the validators it has no link to, mempool, sync progress,
evidence, state sync, and whether it runs the compiled modules. Reads only what
:class:`Reporting` gives."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from ledger import compiled
from ledger.crypto import PrivateKey
from ledger.encoding import Value
from ledger.genesis import Genesis
from node.chain import ChainStore
from node.config import NodeConfig
from node.consensus.core import ConsensusCore
from node.consensus.evidence import EvidencePool
from node.driver import ConsensusDriver
from node.executor import AHEAD, EXECUTED, Executor
from node.mempool import Mempool
from node.peers import PeerManager
from node.statesync import Progress
from node.statesync_check import base_height
from node.sync import Syncer


class Reporting(Protocol):
    """What the status reads of the node (:class:`node.runtime.Node`)."""

    config: NodeConfig
    genesis: Genesis
    key: PrivateKey
    is_validator: bool
    chain: ChainStore
    core: ConsensusCore
    driver: ConsensusDriver
    executor: Executor
    peers: PeerManager
    mempool: Mempool
    syncer: Syncer
    evidence_pool: EvidencePool
    clock: Callable[[], float]
    started_at: float
    state_synced: Progress | None


def node_status(node: Reporting) -> dict[str, Value]:
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
        "consensus": consensus_status(node),
        "peers": [
            {"name": peer.name, "key": key, "height": peer.height}
            for key, peer in node.peers.peers.items()
        ],
        "missing": missing_peers(node.peers, node.chain),
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
        "state_sync": state_sync_status(node),
        "code": compiled.mode(),
    }


def consensus_status(node: Reporting) -> dict[str, Value]:
    """``/v1/status`` ``consensus``: where the core is and, with ``[consensus] speculate``
    on, the block bodies announced to this node by outcome (node/speculation.py) and the
    proposals it validated by whether they took the execution made ahead."""
    doc: dict[str, Value] = {
        "height": node.core.height,
        "round": node.core.round,
        "step": node.core.step.name.lower(),
    }
    if node.driver.speculate:
        outcomes = node.driver.speculation.outcomes
        doc["speculation"] = {k: n for k, n in sorted(outcomes.items())}
        validations = node.executor.validations
        doc["validations"] = {k: validations[k] for k in (AHEAD, EXECUTED)}
    return doc


def state_sync_status(node: Reporting) -> dict[str, Value]:
    """``/v1/status`` ``state_sync``: the height this node's state starts at (0: from
    genesis) and, in the life that state-synced, how it went."""
    doc: dict[str, Value] = {"base_height": base_height(node.chain.store)}
    if node.state_synced is not None:
        doc.update(node.state_synced.to_obj())
    return doc


def missing_peers(peers: PeerManager, chain: ChainStore) -> dict[str, Value]:
    """The validators this node has no link to, since when, and why the last dial to
    an address failed (the address is not tied to a key until a link succeeded)."""
    names = peers.names
    validators = chain.validators_at(chain.head().height + 1)
    missing: list[Value] = [
        {"name": names.get(key, "?"), "key": key, "since_ms": int(since * 1000)}
        for key, since in sorted(peers.missing_since.items(), key=lambda kv: kv[1])
        if key in validators
    ]
    failures: list[Value] = [
        {"address": address, "reason": reason}
        for address, reason in sorted(peers.dial_failures.items())
    ]
    return {"validators": missing, "dial_failures": failures}
