"""The stored Merkle log: roots and proofs for every past size, served from storage.

Checked against :mod:`ledger.merkle` (the RFC's definitions over a list) and run on
both store implementations, which must end up byte-for-byte identical.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Iterator, Sequence
from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import merkle
from ledger.errors import CorruptionError, ValidationError
from ledger.log import SIZE_KEY, MerkleLog, log_node_key
from ledger.merkle import EMPTY_ROOT, leaf_hash, node_hash, split_point
from ledger.storage import KVStore, MemoryStore, OverlayStore, WriteBatch, keys, open_leveldb


def tx(i: int) -> bytes:
    return hashlib.sha256(b"tx" + i.to_bytes(8, "big")).digest()


def build(store: KVStore, batches: Sequence[Sequence[bytes]]) -> list[bytes]:
    """Append each batch as one block would (overlay, then one write); return the roots."""
    roots = []
    for batch in batches:
        overlay = OverlayStore(store)
        roots.append(MerkleLog(overlay).append(batch))
        store.write(overlay.take())
    return roots


def dump(store: KVStore) -> list[tuple[bytes, bytes]]:
    return list(store.iterate(keys.LOG))


N = 10_000
TXS = [tx(i) for i in range(N)]
HASHES = [leaf_hash(t) for t in TXS]


@cache
def mth(lo: int, hi: int) -> bytes:
    """MTH(D[lo:hi]) by RFC 9162's recursive definition, memoised over the ranges."""
    if hi - lo == 1:
        return HASHES[lo]
    k = split_point(hi - lo)
    return node_hash(mth(lo, lo + k), mth(lo + k, hi))


@pytest.fixture(scope="module")
def big_log() -> MerkleLog:
    store = MemoryStore()
    sizes = [1, 2, 5, 8, 100, 1, 4883, 5000]  # sums to N; odd, even and power-of-two cuts
    assert sum(sizes) == N
    batches, start = [], 0
    for s in sizes:
        batches.append(TXS[start : start + s])
        start += s
    roots = build(store, batches)
    ends = [sum(sizes[: i + 1]) for i in range(len(sizes))]
    assert roots == [mth(0, e) for e in ends]
    return MerkleLog(store)


def test_every_past_root(big_log: MerkleLog) -> None:
    assert big_log.size() == N
    assert big_log.root(0) == EMPTY_ROOT
    for n in range(1, N + 1):
        assert big_log.root(n) == mth(0, n), n
    assert big_log.root() == mth(0, N)


def test_past_roots_match_merkle_root_of(big_log: MerkleLog) -> None:
    for n in [*range(0, 70), 511, 512, 513, 997, 1024, 4097, 8191, 9999, N]:
        assert big_log.root(n) == merkle.root_of(TXS[:n]), n


def _sizes_and_indexes() -> Iterator[tuple[int, int]]:
    for n in [1, 2, 3, 7, 8, 9, 100, 1023, 1024, 1025, 6553, N]:
        for i in {0, n // 3, n // 2, n - 2, n - 1} - {-1}:
            yield i, n


@pytest.mark.parametrize(("index", "size"), list(_sizes_and_indexes()))
def test_inclusion_from_storage(big_log: MerkleLog, index: int, size: int) -> None:
    proof = big_log.prove_inclusion(index, size)
    assert (proof.leaf_index, proof.tree_size) == (index, size)
    assert list(proof.path) == merkle.inclusion_proof_hashes(HASHES[:size], index)
    proof.verify(big_log.get_leaf_hash(index), big_log.root(size))


@pytest.mark.parametrize(
    ("old", "new"),
    [
        *[(0, 5), (1, 1), (1, 2), (3, 7), (8, 8), (8, 9), (1000, 1024), (1024, 1025)],
        *[(6553, N), (777, 9001), (4096, 8192), (4095, 8193), (N - 1, N)],
    ],
)
def test_consistency_from_storage(big_log: MerkleLog, old: int, new: int) -> None:
    proof = big_log.prove_consistency(old, new)
    assert (proof.old_size, proof.new_size) == (old, new)
    assert list(proof.path) == merkle.consistency_proof_hashes(HASHES[:new], old)
    proof.verify(big_log.root(old), big_log.root(new))


def test_defaults_use_current_size(big_log: MerkleLog) -> None:
    assert big_log.prove_inclusion(3) == big_log.prove_inclusion(3, N)
    assert big_log.prove_consistency(100) == big_log.prove_consistency(100, N)


def test_argument_checks(big_log: MerkleLog) -> None:
    with pytest.raises(ValidationError, match="between 0 and the log's size"):
        big_log.root(N + 1)
    with pytest.raises(ValidationError, match="not in a tree of size 5"):
        big_log.prove_inclusion(5, 5)
    with pytest.raises(ValidationError):
        big_log.prove_inclusion(-1, 5)
    with pytest.raises(ValidationError):
        big_log.prove_inclusion(0, N + 1)
    with pytest.raises(ValidationError, match="old size 6 is not between 0 and new size 5"):
        big_log.prove_consistency(6, 5)
    with pytest.raises(ValidationError):
        big_log.prove_consistency(1, N + 1)
    with pytest.raises(ValidationError):
        big_log.get_leaf_hash(N)


# --- appending inside a block's overlay -------------------------------------------------------


def test_overlay_writes_stay_pending_until_committed() -> None:
    store = MemoryStore()
    build(store, [TXS[:5]])
    overlay = OverlayStore(store)
    log = MerkleLog(overlay)
    log.append(TXS[5:9])
    assert log.append(TXS[9:12]) == mth(0, 12)  # a second block before commit sees the first
    assert log.size() == 12
    assert MerkleLog(store).size() == 5
    assert MerkleLog(store).root() == mth(0, 5)
    store.write(overlay.take())
    assert MerkleLog(store).size() == 12
    assert MerkleLog(store).prove_consistency(5, 12).path == log.prove_consistency(5).path


def test_discarded_overlay_changes_nothing() -> None:
    store = MemoryStore()
    build(store, [TXS[:3]])
    before = dump(store)
    MerkleLog(OverlayStore(store)).append(TXS[3:40])
    assert dump(store) == before
    assert build(store, [TXS[3:4]]) == [mth(0, 4)]


def test_append_nothing_writes_nothing() -> None:
    overlay = OverlayStore(MemoryStore())
    assert MerkleLog(overlay).append([]) == EMPTY_ROOT
    assert len(overlay.batch) == 0


def test_append_needs_a_writable_store() -> None:
    with pytest.raises(TypeError, match="put"):
        MerkleLog(MemoryStore()).append(TXS[:1])


@pytest.mark.parametrize("bad", [b"", b"\x00" * 31, b"\x00" * 33, "00" * 32])
def test_leaves_are_32_byte_tx_hashes(bad: bytes) -> None:
    overlay = OverlayStore(MemoryStore())
    with pytest.raises(ValidationError, match="32-byte transaction hash"):
        MerkleLog(overlay).append([TXS[0], bad])
    assert len(overlay.batch) == 0


def test_leaf_data_is_the_tx_hash() -> None:
    overlay = OverlayStore(MemoryStore())
    log = MerkleLog(overlay)
    log.append(TXS[:2])
    assert log.get_leaf_hash(1) == hashlib.sha256(b"\x00" + TXS[1]).digest()
    assert log.root() == merkle.root_of(TXS[:2])


def test_storage_layout() -> None:
    """Perfect subtrees only (2n - popcount(n) nodes) plus the size; keys only ever grow."""
    store = MemoryStore()
    seen: list[bytes] = []
    for n in range(1, 70):
        overlay = OverlayStore(store)
        MerkleLog(overlay).append([TXS[n - 1]])
        written = sorted(k for k, _ in overlay.batch.items() if k != SIZE_KEY)
        assert not seen or written[0] > seen[-1]
        seen += written
        store.write(overlay.take())
        nodes = [k for k, _ in dump(store) if k != SIZE_KEY]
        assert len(nodes) == 2 * n - n.bit_count()
    assert store.get(SIZE_KEY) == (69).to_bytes(8, "big")
    assert store.get(log_node_key(6, 0)) == mth(0, 64)
    assert store.get(log_node_key(2, 16)) == mth(64, 68)
    assert store.get(log_node_key(0, 68)) == HASHES[68]
    assert (
        log_node_key(0, 1)
        < log_node_key(1, 0)
        < log_node_key(0, 2)
        < log_node_key(0, 3)
        < log_node_key(2, 0)
    )


def test_missing_node_is_corruption() -> None:
    store = MemoryStore()
    build(store, [TXS[:6]])
    batch = WriteBatch()
    batch.delete(log_node_key(1, 2))
    store.write(batch)
    log = MerkleLog(store)
    with pytest.raises(CorruptionError, match=r"level 1, index 2"):
        log.root()
    assert log.root(4) == mth(0, 4)


def test_bad_size_record_is_corruption() -> None:
    store = MemoryStore()
    batch = WriteBatch()
    batch.put(SIZE_KEY, b"\x01")
    store.write(batch)
    with pytest.raises(CorruptionError, match="size record"):
        MerkleLog(store).size()


# --- properties: stored log == reference, memory store == LevelDB ------------------------------

hashes32 = st.binary(min_size=32, max_size=32)
batch_lists = st.lists(st.lists(hashes32, max_size=40), min_size=1, max_size=6).filter(
    lambda bs: sum(map(len, bs)) > 0
)


def _check_against_reference(log: MerkleLog, txs: list[bytes], data: st.DataObject) -> None:
    n = len(txs)
    hashes = [leaf_hash(t) for t in txs]
    size = data.draw(st.integers(1, n), label="size")
    index = data.draw(st.integers(0, size - 1), label="index")
    old = data.draw(st.integers(0, size), label="old")
    assert log.root(size) == merkle.root_of_hashes(hashes[:size])
    inc = log.prove_inclusion(index, size)
    assert list(inc.path) == merkle.inclusion_proof_hashes(hashes[:size], index)
    inc.verify(hashes[index], log.root(size))
    con = log.prove_consistency(old, size)
    assert list(con.path) == merkle.consistency_proof_hashes(hashes[:size], old)
    con.verify(log.root(old), log.root(size))


@settings(max_examples=150, deadline=None)
@given(batch_lists, st.data())
def test_property_memory_log_matches_reference(
    batches: list[list[bytes]], data: st.DataObject
) -> None:
    store = MemoryStore()
    roots = build(store, batches)
    txs = [t for b in batches for t in b]
    assert roots[-1] == merkle.root_of(txs)
    _check_against_reference(MerkleLog(store), txs, data)


@settings(max_examples=40, deadline=None)
@given(batch_lists, st.data())
def test_property_leveldb_matches_memory(batches: list[list[bytes]], data: st.DataObject) -> None:
    txs = [t for b in batches for t in b]
    memory = MemoryStore()
    with tempfile.TemporaryDirectory() as tmp:
        disk = open_leveldb(tmp, create=True)
        try:
            assert build(disk, batches) == build(memory, batches)
            assert dump(disk) == dump(memory)
            mem_log, disk_log = MerkleLog(memory), MerkleLog(disk)
            size = data.draw(st.integers(1, len(txs)), label="size")
            for i in range(size):
                assert disk_log.prove_inclusion(i, size) == mem_log.prove_inclusion(i, size)
            for old in range(size + 1):
                assert disk_log.prove_consistency(old, size) == mem_log.prove_consistency(old, size)
                assert disk_log.root(old) == mem_log.root(old)
            _check_against_reference(disk_log, txs, data)
        finally:
            disk.close()


def test_benchmark_runs_small() -> None:
    from benchmarks import merkle_bench

    ticks = iter(range(1, 1000))
    figures = merkle_bench.run(n=6_001, proofs=30, clock=lambda: float(next(ticks)))
    assert figures["leaves"] == 6_001
    assert figures["store_keys"] == 2 * 6_001 - (6_001).bit_count() + 1
    for key in ["log_append_per_s", "inclusion_prove_per_s", "inclusion_verify_per_s"]:
        assert figures[key] > 0
    assert figures["consistency_prove_per_s"] > 0 and figures["consistency_verify_per_s"] > 0
