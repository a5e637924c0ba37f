"""Pruning the state tree: which rows leave it (ledger/state_retire.py), and the steps
that delete them (ledger/state_prune.py).

The oracle is a full walk of the stored tree under a root (every page and leaf row it
needs, by where it is filed), written here without the code under test: the rows a block
retires must be exactly those its old root's walk finds and its new root's does not, and
after pruning every kept root must still walk whole while every row no kept root needs
is gone. The changes draw from a few keys and values on purpose, so that content comes
back (a value set back, a subtree restored): filed by height, it comes back as a new row,
and the old one must still go.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.errors import CorruptionError
from ledger.state import EMPTY_ROOT, StateTree
from ledger.state_pages import NO_HEIGHT, NODE_TAG, decode_page
from ledger.state_prune import (
    StatePruned,
    oldest_state_height,
    prune_step,
    record_retired,
    records_retired,
    require_state,
)
from ledger.state_retire import Retired
from ledger.storage import MemoryStore, WriteBatch, keys
from tests.unit.ledger.state_kit import reference_root

KEYS = [f"k{i}".encode() for i in range(48)]
VALUES = [b"a", b"b", b"c", None]


def rows_of(store: MemoryStore, root_filing: bytes | None) -> set[bytes]:
    """Every STATE_NODE row (filed height + hash) the tree whose root row is
    ``root_filing`` (None: empty) needs; raises if one is missing."""
    need: set[bytes] = set()
    stack = [] if root_filing is None else [root_filing]
    while stack:
        filing = stack.pop()
        need.add(filing)
        row = store.get(keys.STATE_NODE + filing)
        if row is None:
            raise AssertionError(f"row {filing.hex()[:28]} is missing")
        if row[0] == 0:
            continue
        page = decode_page(filing[8:], row)
        for h, node in page.items():
            if node[0] != NODE_TAG:  # a leaf: its reference says where its row is
                need.add(node[65:73] + h)
                assert store.get(keys.STATE_NODE + node[65:73] + h) is not None, "leaf missing"
                continue
            for c, at in ((node[1:33], node[65:73]), (node[33:65], node[73:81])):
                if c != EMPTY_ROOT and c not in page:  # a child page: its parent says where
                    assert len(at) == 8 and at != NO_HEIGHT
                    stack.append(at + c)
    return need


def filing(tree: StateTree) -> bytes | None:
    """Where the tree's root row is filed, and its hash (None: the empty tree)."""
    return None if tree.root == EMPTY_ROOT else tree.root_filed_at() + tree.root


def state_rows(store: MemoryStore) -> set[bytes]:
    return {k[len(keys.STATE_NODE) :] for k, _ in store.iterate(keys.STATE_NODE)}


def grow(store: MemoryStore, tree: StateTree, height: int, rng: random.Random) -> list[Retired]:
    """Apply block ``height``'s random changes with their retirement records."""
    changes = {rng.choice(KEYS): rng.choice(VALUES) for _ in range(rng.randint(1, 6))}
    batch = WriteBatch()
    retired: list[Retired] = []
    tree.apply(changes, batch, retired, height=height)
    record_retired(batch, height, retired)
    store.write(batch)
    return retired


@pytest.mark.parametrize("seed", range(6))
def test_retired_rows_are_exactly_what_the_new_tree_lacks(seed: int) -> None:
    rng = random.Random(seed)
    store = MemoryStore()
    tree = StateTree(store)
    before = rows_of(store, filing(tree))
    for height in range(1, 120):
        old_root = tree.root
        retired = grow(store, tree, height, rng)
        after = rows_of(store, filing(tree))
        names = [r.filed_at + r.node_hash for r in retired]
        assert len(names) == len(set(names)), f"seed {seed}: a row retired twice"
        assert set(names) == before - after, f"seed {seed}, height {height}"
        old_row = [f for f in before - after if f[8:] == old_root]
        assert [r.filed_at + r.node_hash for r in retired if r.root] == old_row
        assert all(n[:8] == keys.height_bytes(height) for n in after - before), "new: filed here"
        before = after


WIDE_KEYS = [f"w{i}".encode() for i in range(600)]  # deep enough for pages at depth 8
blocks_strategy = st.lists(
    st.dictionaries(
        st.integers(min_value=0, max_value=len(WIDE_KEYS) - 1),
        st.sampled_from(VALUES),
        min_size=1,
        max_size=400,
    ),
    min_size=1,
    max_size=6,
)


@settings(max_examples=40, deadline=None)
@given(blocks=blocks_strategy)
def test_an_update_writes_exactly_the_rows_its_new_tree_adds(
    blocks: list[dict[int, bytes | None]],
) -> None:
    """Each block writes the rows its new tree has and its old one lacks, and no other:
    a leaf that moves to another page (a lone leaf rising after a delete, or one a new
    subtree takes in) and a key set to its value keep their rows; every row written is
    needed. The blocks are large against the keys, so subtrees empty and fill across
    page boundaries."""
    store, model = MemoryStore(), dict[bytes, bytes]()
    tree = StateTree(store)
    before: set[bytes] = set()
    for height, block in enumerate(blocks, start=1):
        changes = {WIDE_KEYS[i]: value for i, value in block.items()}
        batch = WriteBatch()
        retired: list[Retired] = []
        tree.apply(changes, batch, retired, height=height)
        written = {
            k[len(keys.STATE_NODE) :] for k, _ in batch.items() if k.startswith(keys.STATE_NODE)
        }
        store.write(batch)
        for k, v in changes.items():
            if v is None:
                model.pop(k, None)
            else:
                model[k] = v
        assert tree.root == reference_root(model)
        after = rows_of(store, filing(tree))
        assert written == after - before, f"height {height}"
        assert {r.filed_at + r.node_hash for r in retired} == before - after, f"height {height}"
        before = after


@pytest.mark.parametrize(
    ("seed", "keep", "limit"), [(0, 1, 5000), (1, 5, 3), (2, 12, 7), (3, 3, 1)]
)
def test_pruning_keeps_the_window_whole_and_deletes_the_rest(
    seed: int, keep: int, limit: int
) -> None:
    rng = random.Random(seed)
    store = MemoryStore()
    tree = StateTree(store)
    roots: dict[int, bytes | None] = {0: filing(tree)}
    ever_retired: set[bytes] = set()
    came_back = 0  # content that left, came back and left again
    for height in range(1, 150):
        retired = grow(store, tree, height, rng)
        came_back += sum(1 for r in retired if r.node_hash in ever_retired)
        ever_retired.update(r.node_hash for r in retired)
        roots[height] = filing(tree)
        step = prune_step(store, height, keep, limit=limit)
        assert step.oldest == max(0, height - keep + 1) == oldest_state_height(store)
        for h in range(step.oldest, height + 1):
            rows_of(store, roots[h])  # every kept state still walks whole
    while not prune_step(store, 149, keep, limit=limit).done:
        pass
    kept = [roots[h] for h in range(150 - keep, 150)]
    needed = set().union(*(rows_of(store, r) for r in kept))
    assert state_rows(store) == needed, f"seed {seed}: rows no kept state needs are left"
    # Each kept root's hash still says where its row is. The root rows of pruned pages
    # are gone; a one-key state's root is its leaf, which may leave the tree long after
    # it stopped being the root: its root row stays (a chain's state never has one key).
    root_rows = {v + k[len(keys.STATE_ROOT) :] for k, v in store.iterate(keys.STATE_ROOT)}
    assert {r for r in kept if r is not None} <= root_rows
    for stale in root_rows - {r for r in kept if r is not None}:
        assert store.get(keys.STATE_NODE + stale) is None
        assert int.from_bytes(stale[:8], "big") < 150 - keep
    assert came_back > 10, f"seed {seed}: the changes did not exercise content coming back"
    with pytest.raises(AssertionError, match="missing"):  # a pruned version really is gone
        rows_of(store, roots[1])


def test_a_row_that_comes_back_is_not_deleted() -> None:
    """k0 = a, then b, then a again: the leaf of ``a`` left at 2 and is back at 3, as a
    new row filed at 3 (the one of height 1 goes)."""
    store = MemoryStore()
    tree = StateTree(store)
    for height, value in enumerate([b"a", b"b", b"a"], start=1):
        batch = WriteBatch()
        retired: list[Retired] = []
        tree.apply({b"k0": value, b"k1": b"x"}, batch, retired, height=height)
        record_retired(batch, height, retired)
        store.write(batch)
    prune_step(store, 3, 1)
    assert StateTree(store, tree.root).get_at(tree.root, b"k0") == b"a"
    rows_of(store, filing(tree))


def test_a_corrupt_retirement_record_is_refused_and_nothing_is_deleted() -> None:
    store = MemoryStore()
    tree = StateTree(store)
    batch = WriteBatch()
    tree.apply({b"k0": b"a"}, batch, height=1)
    batch.put(keys.RETIRED + keys.height_bytes(1) + b"\x00" * 5, b"")
    store.write(batch)
    before = dict(store.iterate(b""))
    with pytest.raises(CorruptionError, match="retirement record"):
        prune_step(store, 5, 1)
    assert dict(store.iterate(b"")) == before


def test_reads_below_the_oldest_height_are_refused_with_the_height() -> None:
    store = MemoryStore()
    require_state(store, 0)  # an archive store refuses nothing
    assert not records_retired(store, 0) and records_retired(store, 10)
    batch = WriteBatch()
    batch.put(keys.OLDEST_STATE, keys.height_bytes(40))
    store.write(batch)
    require_state(store, 40)
    with pytest.raises(StatePruned) as err:
        require_state(store, 39)
    assert str(err.value) == (
        "this node keeps state from height 40 on; ask an archive node for height 39"
    )
    assert records_retired(store, 0), "a store that has pruned keeps recording"


def test_a_state_synced_store_holds_state_from_its_base_on() -> None:
    """A node that joined by state sync at H has no state before H: the oldest height is
    the later of its base and its prune window, and an archive node that state-synced
    still does not note retired rows."""
    store = MemoryStore()
    batch = WriteBatch()
    batch.put(keys.STATE_BASE, (1000).to_bytes(8, "big"))
    store.write(batch)
    assert oldest_state_height(store) == 1000
    with pytest.raises(StatePruned):
        require_state(store, 999)
    assert not records_retired(store, 0)
    batch = WriteBatch()
    batch.put(keys.OLDEST_STATE, keys.height_bytes(1200))
    store.write(batch)
    assert oldest_state_height(store) == 1200
