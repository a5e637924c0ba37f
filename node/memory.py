"""What a node holds in memory that traffic or the chain's length could grow, and the
bound of each (docs/operations.md, "Memory").

``/metrics`` samples them at scrape (``cityledger_bounded_size`` and
``cityledger_bounded_limit``, labelled by ``part`` and ``unit``), so an operator can tell
a structure filling towards its bound — a node's memory rises for minutes after start-up
as its caches fill — from one that does not stop. Sizes are what the structures count
themselves (entries, encoded or estimated bytes), not measured memory; LevelDB's is its
own estimate of its memtables and block cache.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from contracts import record_cache
from ledger.storage.leveldb import LevelDBStore
from node.admission_reads import NONCE_CACHE_SENDERS, READ_CACHE_BYTES
from node.bounded import BYTES, ENTRIES, BoundedPart
from node.gossip import MAX_SEEN
from node.service import PROOF_CACHE_TXS

if TYPE_CHECKING:
    from node.runtime import Node


def node_parts(node: Node) -> list[BoundedPart]:
    """The bounded structures of a running node, each as it is now."""
    pool, sigs = node.mempool, node.sigs
    verifier = node.core.verifier
    parts = [
        BoundedPart("mempool_txs", ENTRIES, len(pool), pool.max_txs),
        BoundedPart("mempool_bytes", BYTES, pool.bytes, pool.max_bytes),
        BoundedPart("sender_nonces", ENTRIES, pool.cached_senders, NONCE_CACHE_SENDERS),
        BoundedPart("admission_reads", BYTES, pool.cached_read_bytes, READ_CACHE_BYTES),
        BoundedPart("signature_verdicts_good", ENTRIES, sigs.good_count, sigs.capacity),
        BoundedPart("signature_verdicts_bad", ENTRIES, sigs.bad_count, sigs.bad_capacity),
        BoundedPart("consensus_verdicts", ENTRIES, len(verifier), verifier.max_entries),
        BoundedPart("gossip_seen", ENTRIES, node.gossip.seen_count, MAX_SEEN),
        BoundedPart("receipt_proofs_txs", ENTRIES, node.queries.cached_proof_txs, PROOF_CACHE_TXS),
        BoundedPart(
            "waiting_requests", ENTRIES, len(node.waiting_room), node.waiting_room.max_requests
        ),
    ]
    cache = node.executor.node_cache
    parts.append(BoundedPart("state_pages", BYTES, cache.size_bytes(), cache.max_bytes))
    parts.append(
        BoundedPart("typed_records", BYTES, record_cache.kept_bytes(), record_cache.MAX_BYTES)
    )
    if isinstance(node.store, LevelDBStore):
        used, limit = node.store.memory_bytes()
        parts.append(BoundedPart("leveldb_buffers", BYTES, used, limit))
    return parts
