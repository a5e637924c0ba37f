"""The bounded structures a node reports (node/memory.py): each one read from the
structure itself, with its bound; LevelDB's buffers from the store's own estimate."""

from __future__ import annotations

from pathlib import Path

from contracts import record_cache
from ledger.crypto import PrivateKey
from ledger.storage import MIB
from ledger.storage.leveldb import LevelDBStore
from ledger.storage.protocol import WriteBatch
from ledger.tx import Transaction
from node.bounded import BYTES, ENTRIES, BoundedPart
from node.runtime import Node
from tests.unit.node.chainkit import CHAIN, GENESIS, VALIDATOR_KEYS
from tests.unit.node.meshkit import mesh

NODE_PARTS = {
    "mempool_txs",
    "mempool_bytes",
    "sender_nonces",
    "admission_reads",
    "signature_verdicts_good",
    "signature_verdicts_bad",
    "consensus_verdicts",
    "gossip_seen",
    "receipt_proofs_txs",
    "waiting_requests",
    "state_pages",
    "typed_records",
}


def _by_name(node: Node) -> dict[str, BoundedPart]:
    parts = node.bounded_parts()
    named = {p.part: p for p in parts}
    assert len(named) == len(parts)  # no name twice
    return named


def test_a_node_reports_each_bounded_structure_with_its_bound() -> None:
    node = mesh(GENESIS, VALIDATOR_KEYS[:1], prefix="mem")[0]
    parts = _by_name(node)
    assert parts.keys() == NODE_PARTS  # a memory store: no LevelDB buffers
    for p in parts.values():
        assert p.unit in (ENTRIES, BYTES)
        assert 0 <= p.size <= p.limit, p
    assert parts["mempool_txs"].limit == node.mempool.max_txs
    assert parts["signature_verdicts_good"].limit == node.sigs.capacity
    assert parts["consensus_verdicts"].limit == node.core.verifier.max_entries
    assert parts["waiting_requests"].limit == node.waiting_room.max_requests


def test_the_sizes_follow_the_structures() -> None:
    node = mesh(GENESIS, VALIDATOR_KEYS[:1], prefix="mem")[0]
    signer = PrivateKey.from_label("memory-parts")
    txs = [Transaction.create(signer, CHAIN, "identity.noop", i, {"n": i}) for i in range(3)]
    for tx in txs[:2]:
        node.sigs.add(tx)
    node.sigs.add_bad(txs[2])
    node.gossip.mark_seen(b"a frame")
    parts = _by_name(node)
    assert parts["signature_verdicts_good"].size == 2
    assert parts["signature_verdicts_bad"].size == 1
    assert parts["gossip_seen"].size == 1
    assert parts["state_pages"].size == node.executor.node_cache.size_bytes()
    raw = b"a record's bytes, not seen before by this process"
    record_cache.remember(object(), raw)
    assert record_cache.is_kept(raw)
    assert _by_name(node)["typed_records"].size == record_cache.kept_bytes() > 0


def test_leveldb_reports_its_buffers_and_their_bound(tmp_path: Path) -> None:
    store = LevelDBStore(
        str(tmp_path / "db"), create=True, block_cache_bytes=8 * MIB, write_buffer_bytes=4 * MIB
    )
    try:
        empty, limit = store.memory_bytes()
        assert limit == (8 + 2 * 4) * MIB
        batch = WriteBatch()
        for i in range(2000):
            batch.put(i.to_bytes(4, "big"), bytes(500))
        store.write(batch)
        used, _ = store.memory_bytes()
        assert used >= empty + 1_000_000  # a megabyte in the memtable
        assert used <= limit
    finally:
        store.close()
