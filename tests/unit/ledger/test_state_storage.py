"""The authenticated state over time and storage: historic roots, the memory and LevelDB
back ends, overlays, damaged rows, the page cache, the pages a walk reads and their pinned
layout. Roots, proofs and their encoding: test_state.py.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ledger.errors import CorruptionError
from ledger.state import EMPTY_ROOT, NodeCache, StateTree, verify_state_proof
from ledger.storage import KVStore, MemoryStore, OverlayStore, WriteBatch, keys, open_leveldb
from tests.unit.ledger.changes_kit import apply_changes
from tests.unit.ledger.state_kit import (
    Items,
    commit,
    filled_state,
    key,
    next_height,
    reference_root,
)
from tests.unit.ledger.state_kit import sha256 as _h


@pytest.fixture(params=["memory", "leveldb"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[KVStore]:
    db: KVStore = (
        MemoryStore() if request.param == "memory" else open_leveldb(str(tmp_path), create=True)
    )
    yield db
    db.close()


@pytest.fixture
def filled() -> tuple[MemoryStore, bytes, Items]:
    """200 entries, committed in four blocks."""
    return filled_state()


# --- history, storage, overlays --------------------------------------------------------------


def test_historic_roots_keep_serving(store: KVStore) -> None:
    roots: list[bytes] = [EMPTY_ROOT]
    models: list[dict[bytes, bytes]] = [{}]
    rng = random.Random(99)
    model: dict[bytes, bytes] = {}
    for block in range(8):
        changes: dict[bytes, bytes | None] = {
            key(rng.randrange(60)): b"%d" % block for _ in range(20)
        }
        changes.update({key(rng.randrange(60)): None for _ in range(5)})
        roots.append(commit(store, roots[-1], changes))
        apply_changes(model, changes.items())
        models.append(dict(model))
    tree = StateTree(store, roots[-1])
    for root, snapshot in zip(roots, models, strict=True):
        assert root == reference_root(snapshot)
        for i in range(60):
            proof = tree.prove(key(i), root)
            assert proof.value == snapshot.get(key(i))
            verify_state_proof(root, proof)
            assert tree.get_at(root, key(i)) == snapshot.get(key(i))
    for i in range(60):
        assert tree.get(key(i)) == model.get(key(i)), "flat table follows the latest root"


def test_memory_and_leveldb_agree(tmp_path: Path) -> None:
    results = []
    for db in (MemoryStore(), open_leveldb(str(tmp_path / "db"), create=True)):
        root = EMPTY_ROOT
        for block in range(5):
            changes: dict[bytes, bytes | None] = {key(block * 30 + i): b"x" * i for i in range(40)}
            changes[key(block)] = None
            root = commit(db, root, changes)
        tree = StateTree(db, root)
        proofs = [tree.prove(key(i)).to_obj() for i in range(0, 200, 7)]
        values = [tree.get(key(i)) for i in range(200)]
        results.append((root, proofs, values))
        db.close()
    assert results[0] == results[1]
    # Reopened from disk with a cold cache, the tree still answers.
    reopened = open_leveldb(str(tmp_path / "db"))
    try:
        tree = StateTree(reopened, results[1][0], cache=NodeCache(16))
        assert [tree.prove(key(i)).to_obj() for i in range(0, 200, 7)] == results[0][1]
    finally:
        reopened.close()


def test_apply_writes_only_into_the_batch_and_discarding_changes_nothing(
    filled: tuple[MemoryStore, bytes, Items],
) -> None:
    store, root, items = filled
    before = dict(store.iterate(b""))
    overlay = OverlayStore(store)
    tree = StateTree(overlay, root)
    proposed = tree.apply(
        {key(1): b"new", key(2): None, b"fresh": b"1"}, overlay.batch, height=next_height(store)
    )
    assert proposed != root and tree.root == proposed
    assert tree.get(key(1)) == b"new" and tree.get(key(2)) is None  # reads its own writes
    assert dict(store.iterate(b"")) == before, "the store is untouched"
    del overlay  # the proposal is rejected: nothing to undo
    assert StateTree(store, root, cache=NodeCache(16)).get(key(1)) == items[key(1)]


def test_two_blocks_before_commit_then_a_fresh_tree(
    filled: tuple[MemoryStore, bytes, Items],
) -> None:
    store, root, _ = filled
    overlay = OverlayStore(store)
    tree = StateTree(overlay, root, cache=NodeCache(16))
    height = next_height(store)
    tree.apply({key(i): b"a" for i in range(0, 300, 3)}, overlay.batch, height=height)
    second = tree.apply({key(i): None for i in range(0, 300, 2)}, overlay.batch, height=height + 1)
    batch = overlay.take()
    assert all(
        k.startswith((keys.STATE_NODE, keys.STATE_LEAF, keys.STATE_ROOT)) for k, _ in batch.items()
    )
    store.write(batch)
    fresh = StateTree(store, second, cache=NodeCache(16))
    for i in range(300):
        expected = (
            None if i % 2 == 0 else (b"a" if i % 3 == 0 else (b"v%d" % i if i < 200 else None))
        )
        assert fresh.get(key(i)) == expected
        proof = fresh.prove(key(i))
        assert proof.value == expected
        verify_state_proof(second, proof)


def test_missing_or_corrupt_nodes_raise(filled: tuple[MemoryStore, bytes, Items]) -> None:
    store, root, _ = filled
    filed_at = store.get(keys.STATE_ROOT + root)
    assert filed_at is not None
    node_key = keys.STATE_NODE + filed_at + root
    raw = store.get(node_key)
    assert raw is not None
    forged = raw[:40] + bytes([raw[40] ^ 1]) + raw[41:]  # inside a hash (the tail: heights)
    for bad in (forged, b"", b"\x01" + raw[1:40], b"\x07" + raw[1:]):
        batch = WriteBatch()
        batch.put(node_key, bad)
        store.write(batch)
        with pytest.raises(CorruptionError):
            StateTree(store, root, cache=NodeCache(16), verify_nodes=True).prove(key(1))
        if bad != forged:  # malformed nodes are caught even without rehashing
            with pytest.raises(CorruptionError):
                StateTree(store, root, cache=NodeCache(16)).prove(key(1))
    batch = WriteBatch()
    batch.delete(node_key)
    store.write(batch)
    with pytest.raises(CorruptionError, match="missing"):
        StateTree(store, root, cache=NodeCache(16)).get_at(root, key(1))


def test_flat_rows_and_values(store: KVStore) -> None:
    root = commit(store, EMPTY_ROOT, {b"k": b"", b"long": b"z" * 5000})
    tree = StateTree(store, root)
    assert tree.get(b"k") == b"" and tree.get(b"nope") is None
    assert tree.get_at(root, b"long") == b"z" * 5000
    assert store.get(keys.STATE_LEAF + _h(b"k")) == (1).to_bytes(4, "big") + b"k"


def test_apply_rejects_non_bytes() -> None:
    tree = StateTree(MemoryStore())
    bad: Any
    for bad in ({"k": b"v"}, {b"k": "v"}, {b"k": bytearray(b"v")}):
        with pytest.raises(TypeError):
            tree.apply(bad, WriteBatch(), height=1)
    assert tree.root == EMPTY_ROOT
    with pytest.raises(ValueError):
        StateTree(MemoryStore(), b"short")


def test_cache_stays_bounded_in_bytes(filled: tuple[MemoryStore, bytes, Items]) -> None:
    store, root, _ = filled
    cache = NodeCache(max_bytes=20_000)
    assert cache.depth_limit == 4, "a budget for the root page and no more"
    tree = StateTree(store, root, cache=cache)
    for block in range(30):
        for i in range(0, 400, 7):
            tree.prove(key(i))
        root = commit(store, root, {key(i): b"w%d" % block for i in range(block, 150, 10)})
        tree = StateTree(store, root, cache=cache)
        assert len(cache) > 0 and cache.size_bytes() <= cache.max_bytes
    assert NodeCache().depth_limit == 16, "the default keeps the top 16 levels, as before"


class CountingStore(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.reads = 0
        self.read_keys: set[bytes] = set()

    def get(self, key: bytes) -> bytes | None:
        self.reads += 1
        self.read_keys.add(key)
        return super().get(key)


def test_a_walk_reads_one_row_per_four_levels() -> None:
    store, root = CountingStore(), EMPTY_ROOT
    for block in range(5):
        root = commit(store, root, {key(i): b"v" for i in range(block * 1000, block * 1000 + 1000)})
    tree = StateTree(store, root, cache=NodeCache(max_bytes=0))
    tree.root_filed_at()  # one read a tree: where its root's row is filed
    binary = paged = 0
    for i in range(0, 6000, 13):
        store.reads = 0
        proof = tree.prove(key(i))
        verify_state_proof(root, proof)
        d = proof.depth
        ends_at_row = proof.is_member or proof.other_key_hash is not None
        # The pages holding the internal nodes passed (four levels each), and the leaf's
        # own row for its value (another key's leaf is known from its page's reference).
        assert d > 0 and store.reads == (d + 3) // 4 + proof.is_member
        binary += d + ends_at_row  # one row per node in the binary layout
        paged += store.reads
    assert paged < 0.45 * binary


def test_every_page_read_is_checked_against_its_hash(
    filled: tuple[MemoryStore, bytes, Items],
) -> None:
    _, _, items = filled
    store = CountingStore()
    root = commit(store, EMPTY_ROOT, dict(items))
    for k in items:
        StateTree(store, root, cache=NodeCache(max_bytes=0)).prove(k)
    pages = [
        (k, v) for k, v in store.iterate(keys.STATE_NODE) if v[0] == 2 and k in store.read_keys
    ]
    assert len(pages) > 10
    rng = random.Random(5)
    for page_key, row in pages:
        at = rng.randrange(1, len(row))
        for bad in (row[:at] + bytes([row[at] ^ 0x40]) + row[at + 1 :], row + b"\x00", row[:-1]):
            batch = WriteBatch()
            batch.put(page_key, bad)
            store.write(batch)
            with pytest.raises(CorruptionError):  # without verify_nodes: pages always are
                for k in items:
                    StateTree(store, root, cache=NodeCache(max_bytes=0)).prove(k)
        batch = WriteBatch()
        batch.put(page_key, row)
        store.write(batch)
    # A leaf's value changed in place is caught when verify_nodes asks for it.
    leaf_key = next(k for k, v in store.iterate(keys.STATE_NODE) if v[0] == 0)
    leaf = store.get(leaf_key)
    assert leaf is not None
    batch = WriteBatch()
    batch.put(leaf_key, leaf + b"!")
    store.write(batch)
    with pytest.raises(CorruptionError, match="does not match its hash"):
        for k in items:
            StateTree(store, root, cache=NodeCache(max_bytes=0), verify_nodes=True).prove(k)


def test_pinned_page_layout() -> None:
    """docs/formats-state.md §4: the stored rows of the last state of §5."""
    batch = WriteBatch()
    state = {b"alice": b"100", b"bob": b"200", b"carol": b""}
    root = StateTree(MemoryStore()).apply(state, batch, height=1)
    at = (1).to_bytes(8, "big")
    rows = {
        k[len(keys.STATE_NODE) + 8 :]: v
        for k, v in batch.items()
        if k.startswith(keys.STATE_NODE + at)
    }
    assert dict(batch.items())[keys.STATE_ROOT + root] == at
    named = ((b"alice", b"100"), (b"bob", b"200"), (b"carol", b""))
    ref = {name: (_h(name) + _h(value)).hex() for name, value in named}
    leaf = {name: _h(b"\x00" + _h(name) + _h(value)) for name, value in named}
    # page, root inline, its left child inline, alice, carol; bob on the right; each leaf
    # followed by the height its row is filed at
    h = at.hex()
    assert rows[root].hex() == (
        "02" "01" "01" "03" + ref[b"alice"] + h + "03" + ref[b"carol"] + h
        + "03" + ref[b"bob"] + h
    )  # fmt: skip
    assert rows[root].hex() == (
        "020101032bd806c97f0e00af1a1fc3328fa763a9269723c8db8fac4f93af71db186d6e90ad573668"
        "65126e55649ecb23ae1d48887544976efea46a48eb5d85a6eeb4d3060000000000000001034c26d9"
        "074c27d89ede59270c0ac14b71e071b15239519f75474b2f3ba63481f5e3b0c44298fc1c149afbf4"
        "c8996fb92427ae41e4649b934ca495991b7852b85500000000000000010381b637d8fcd2c6da6359"
        "e6963113a1170de795e4b725b84d1e0b4cfd9ec58ce927badc983df1780b60c2b3fa9d3a19a00e46"
        "aac798451f0febdca52920faaddf0000000000000001"
    )
    assert rows[leaf[b"bob"]] == b"\x00" + _h(b"bob") + b"200"
    assert set(rows) == {root, *leaf.values()}
