"""Refiling format-2 states by height (ledger/state_refile.py): the rows it writes are
exactly those the state tree writes when it applies the same blocks, whatever the
history — content set back, subtrees emptied and restored, keys set to their value.

The format-2 store is made here from a format-3 one, without the code under test: each
state's pages in their wire form and its leaves, filed by hash (what format 2 stored).
"""

from __future__ import annotations

import hashlib
import random

import pytest

from ledger.block import ZERO_HASH, BlockHeader
from ledger.encoding import encode
from ledger.errors import CorruptionError
from ledger.state import EMPTY_ROOT, StateTree
from ledger.state_pages import LEAF_REF_TAG, NODE_TAG, wire_page
from ledger.state_refile import PROGRESS, refile_states, stored_states
from ledger.state_snapshot import manifest_rows, plan_snapshot, read_chunk, snapshot_chunks
from ledger.storage import MemoryStore, WriteBatch, keys

KEYS = [f"k{i}".encode() for i in range(40)]
VALUES = [b"a", b"b", b"c" * 40, None]


def history(seed: int, heights: int) -> tuple[MemoryStore, list[tuple[int, bytes]]]:
    """A format-3 store of ``heights`` blocks of random changes over few keys and values
    (so that content comes back), and its (height, root) of every state."""
    rng = random.Random(seed)
    store = MemoryStore()
    tree = StateTree(store)
    states = []
    for height in range(heights):
        changes = {rng.choice(KEYS): rng.choice(VALUES) for _ in range(rng.randint(1, 8))}
        if height == 0:
            changes.update({k: b"genesis" for k in KEYS[:25]})
        batch = WriteBatch()
        tree.apply(changes, batch, height=height)
        store.write(batch)
        if not states or states[-1][1] != tree.root:
            states.append((height, tree.root))
    return store, states


def format2(store: MemoryStore, states: list[tuple[int, bytes]]) -> MemoryStore:
    """The format-2 rows of every state of ``store``: pages (wire form) and leaves by hash."""
    old = MemoryStore()
    batch = WriteBatch()
    for _, root in states:
        if root == EMPTY_ROOT:
            continue
        at = store.get(keys.STATE_ROOT + root)
        assert at is not None
        stack = [at + root]
        while stack:
            filing = stack.pop()
            row = store.get(keys.STATE_NODE + filing)
            assert row is not None
            node_hash = filing[8:]
            if row[0] == 0:
                batch.put(keys.LEGACY_PAGE_NODE + node_hash, row)
                continue
            wire, page = wire_page(node_hash, row)
            batch.put(keys.LEGACY_PAGE_NODE + node_hash, wire)
            for h, node in page.items():
                if node[0] == LEAF_REF_TAG:
                    stack.append(node[65:73] + h)
                elif node[0] == NODE_TAG:
                    for child, child_at in ((node[1:33], node[65:73]), (node[33:65], node[73:81])):
                        if child != EMPTY_ROOT and child not in page and len(child_at) == 8:
                            stack.append(child_at + child)
    old.write(batch)
    return old


def tree_rows(store: MemoryStore) -> dict[bytes, bytes]:
    return {k: v for k, v in store.iterate(b"") if k.startswith((keys.STATE_NODE, keys.STATE_ROOT))}


@pytest.mark.parametrize("seed", range(6))
def test_refiling_gives_exactly_the_rows_execution_wrote(seed: int) -> None:
    store, states = history(seed, 80)
    old = format2(store, states)
    reports: list[tuple[int, int]] = []
    refiled = refile_states(old, states, lambda done, total: reports.append((done, total)))
    assert refiled == len(states) and reports[-1] == (len(states), len(states))
    assert tree_rows(old) == tree_rows(store), f"seed {seed}"
    assert old.get(PROGRESS) == keys.height_bytes(states[-1][0])


def test_a_refile_cut_short_carries_on_from_the_last_height_written(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store, states = history(11, 60)
    old = format2(store, states)
    monkeypatch.setattr("ledger.state_refile.BATCH_BYTES", 2048)  # a batch every few states
    seen: list[int] = []

    def stop_half_way(done: int, total: int) -> None:
        seen.append(done)
        if done >= total // 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        refile_states(old, states, stop_half_way)
    assert 0 < seen[-1] < len(states)
    again = refile_states(old, states, lambda done, total: None)
    assert again == len(states) - seen[-1]
    assert tree_rows(old) == tree_rows(store)


def test_a_state_synced_base_is_filed_as_a_snapshot_files_it() -> None:
    """A state-synced store starts at its base: refiled, its rows are those state sync
    writes (every row at the base height), and the states after it as executed."""
    store, states = history(3, 30)
    base_height, base_root = states[len(states) // 2]
    snapshot = MemoryStore()
    manifest = plan_snapshot(_view(store, base_root), base_root)
    snapshot.write(manifest_rows(manifest, base_height))
    chunks = snapshot_chunks(_view(store, base_root), manifest)
    for data, roots in zip(chunks, manifest.chunks, strict=True):
        batch = WriteBatch()
        for key, value in read_chunk(data, roots, base_height):
            batch.put(key, value)
        snapshot.write(batch)
    old = format2(store, states)
    refile_states(old, [(base_height, base_root)], lambda done, total: None)
    assert tree_rows(old) == tree_rows(snapshot)


def _view(store: MemoryStore, root: bytes) -> MemoryStore:
    """The store as of the state ``root`` (the flat table rebuilt from its leaves):
    what a snapshot is taken from."""
    view = MemoryStore()
    batch = WriteBatch()
    for k, v in store.iterate(b""):
        if not k.startswith(keys.STATE_LEAF):
            batch.put(k, v)
    tree = StateTree(store, root)
    for key in KEYS:
        value = tree.get_at(root, key)
        if value is not None:
            kh = hashlib.sha256(key).digest()
            batch.put(keys.STATE_LEAF + kh, len(key).to_bytes(4, "big") + key + value)
    view.write(batch)
    return view


def test_a_damaged_format2_row_stops_the_refile() -> None:
    store, states = history(5, 10)
    old = format2(store, states)
    key, row = next((k, v) for k, v in old.iterate(keys.LEGACY_PAGE_NODE) if v[0] == 2)
    batch = WriteBatch()
    batch.put(key, row[:40] + bytes([row[40] ^ 1]) + row[41:])
    old.write(batch)
    with pytest.raises(CorruptionError):
        refile_states(old, states, lambda done, total: None)
    assert not tree_rows(old) and old.get(PROGRESS) is None  # (one batch: 4 MiB)


def _header(height: int, state_root: bytes) -> BlockHeader:
    return BlockHeader(
        "test-chain", height, 5, bytes(32), bytes(range(32)), 0, bytes(32),
        0, bytes(32), state_root, bytes(32), bytes(32), bytes(32), ZERO_HASH, bytes(32),
    )  # fmt: skip


def test_the_states_to_refile_come_from_every_kind_of_stored_header() -> None:
    """Blocks, the headers a block-pruning node kept on their own, and a state-synced
    store's base header: in height order, a state repeated by the next height once."""
    roots = [bytes([i]) * 32 for i in range(1, 6)]
    store = MemoryStore()
    batch = WriteBatch()
    batch.put(keys.GENESIS_STATE_ROOT, roots[0])
    for height, root in ((1, roots[1]), (2, roots[1]), (3, roots[2])):  # pruned blocks
        batch.put(keys.pruned_header_key(height), _header(height, root).encoded)
    for height, root in ((4, roots[3]), (5, roots[4])):
        # (a block's map: only its header is read; a real one carries its last_cert)
        batch.put(keys.block_key(height), encode({"header": _header(height, root).to_obj()}))
    store.write(batch)
    assert stored_states(store) == [
        (0, roots[0]), (1, roots[1]), (3, roots[2]), (4, roots[3]), (5, roots[4]),
    ]  # fmt: skip
    batch = WriteBatch()  # the same store, had it joined by state sync at height 3
    batch.put(keys.STATE_BASE, keys.height_bytes(3))
    batch.put(keys.BASE_HEADER, _header(3, roots[2]).encoded)
    store.write(batch)
    assert stored_states(store) == [(3, roots[2]), (4, roots[3]), (5, roots[4])]
