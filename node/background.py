"""A node's background duties besides consensus, each one loop: keeping in touch with
peers each second, the key-rotation watch and, while idle, signing head statements. Each
reads only what :class:`Duties` gives."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Protocol

from ledger.crypto import PrivateKey
from ledger.errors import StorageError
from ledger.head import HeadStatement
from ledger.storage import KVStore
from ledger.storage.leveldb import LevelDBStore
from node.api.metrics import Metrics
from node.chain import ChainStore
from node.config import NodeConfig
from node.driver import ConsensusDriver
from node.gossip import Gossip
from node.heap_trim import HeapTrim
from node.mempool import Mempool
from node.peers import PeerManager
from node.rotation import rotation_due
from node.storage_priority import StorageThreadPriority
from node.sync import Syncer
from node.wire import HeadMsg, StatusMsg

log = logging.getLogger("cityledger.node")
ROTATION_CHECK_S = 1.0
STATUS_INTERVAL_S = 1.0


class Duties(Protocol):
    """What the loops read of the node (:class:`node.runtime.Node`)."""

    config: NodeConfig
    store: KVStore
    """The node's own store (LevelDB on a running node); ``chain`` reads and writes it
    through its write-behind queue."""
    chain: ChainStore
    gossip: Gossip
    key: PrivateKey
    next_key: PrivateKey | None
    clock: Callable[[], float]
    consensus_started: bool
    peers: PeerManager
    mempool: Mempool
    metrics: Metrics
    driver: ConsensusDriver
    syncer: Syncer

    def stop_to_rotate(self) -> None: ...


def store_buffers(store: object) -> int | None:
    """LevelDB's estimate of its memtables and block cache (None: another store, or one
    that cannot say: its failure is reported where the node reads or writes it)."""
    if not isinstance(store, LevelDBStore):
        return None
    try:
        return store.memory_bytes()[0]
    except StorageError:
        return None


async def keep_in_touch(node: Duties) -> None:
    """Each second: tell the peers our height, drop pending transactions past
    ``[mempool] pending_ttl_s``, resend our own consensus messages, ask for missing blocks,
    lower the threads Python does not run — LevelDB's compactions among them — once they
    are there (node/storage_priority.py), and every ``[storage] heap_trim_s`` — or as
    soon as LevelDB has freed a memtable — hand the C heap's freed pages back to the
    system (node/heap_trim.py)."""
    storage_threads = StorageThreadPriority(node.config.storage.compaction_nice)
    heap = HeapTrim(node.config.storage.heap_trim_s)
    while True:
        await asyncio.sleep(STATUS_INTERVAL_S)
        storage_threads.check()
        trimmed_s = heap.check(store_buffers(node.store))
        if trimmed_s is not None:
            node.metrics.heap_trimmed(trimmed_s)
        node.peers.broadcast(StatusMsg(node.chain.head().height))
        if node.mempool.expire(time.monotonic()):
            node.metrics.set_mempool(len(node.mempool))
        if node.consensus_started:
            node.driver.resend_own()
        node.syncer.maybe_request()
        node.metrics.set_peers(len(node.peers.peers))


async def watch_rotation(node: Duties) -> None:
    """Stop the node (to reopen under ``next_key``: ``node.process.serve``) once the set
    voting on the next height has handed its seat to it. Checked each second: the old
    key holds no power from that height on, so it signs nothing while this waits.
    ``next_key`` is read at start and again on SIGHUP (``node rotate-key`` sends it)."""
    while True:
        upcoming = node.next_key
        validators = node.chain.validators_at(node.chain.head().height + 1)
        if upcoming is not None and rotation_due(
            validators, node.key.public_key, upcoming.public_key
        ):
            log.info(
                "key rotation in force at height %d: reopening under the new key %s…",
                node.chain.head().height + 1,
                upcoming.public_key.hex()[:16],
            )
            node.stop_to_rotate()
            return
        await asyncio.sleep(ROTATION_CHECK_S)


async def sign_heads(node: Duties) -> None:
    """While idle (the head block older than the interval), a validator of the head's
    height signs "my head at my time" every ``head_statement_interval_ms`` and gossips
    it (ledger/head.py): answers stay provably fresh between heartbeats."""
    interval_ms = node.config.consensus.head_statement_interval_ms
    while True:
        await asyncio.sleep(interval_ms / 1000)
        head = node.chain.head()
        now_ms = int(node.clock() * 1000)
        if (
            node.consensus_started
            and head.height >= 1
            and now_ms - head.time_ms >= interval_ms
            and node.key.public_key in node.chain.validators_at(head.height)
        ):
            statement = HeadStatement.create(
                node.key, node.chain.genesis.chain_id, head.height, head.block_hash, now_ms
            )
            node.gossip.head_signed(HeadMsg(statement))
