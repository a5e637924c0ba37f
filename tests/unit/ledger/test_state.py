"""The authenticated state: roots, proofs, history, storage back ends, decoding.

The tree is checked against :func:`reference_root`, a direct transcription of
docs/formats-state.md §1 written independently of ``ledger.state``, and against the
pinned vectors of §5, so a change to the hashing fails here even if the tree and the
verifier change together.
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import encoding
from ledger.errors import CorruptionError, DecodeError, ProofError, ValidationError
from ledger.state import EMPTY_ROOT, NodeCache, StateProof, StateTree, verify_state_proof
from ledger.storage import KVStore, MemoryStore, OverlayStore, WriteBatch, keys, open_leveldb
from ledger.storage.protocol import KVReader
from tests.unit.ledger.changes_kit import apply_changes

Items = dict[bytes, bytes]


def _h(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def reference_root(items: Items) -> bytes:
    """The root by the spec's definition: recursive, slow, obviously right."""
    leaves = sorted((_h(k), _h(b"\x00" + _h(k) + _h(v))) for k, v in items.items())

    def bit(kh: bytes, level: int) -> int:
        return (kh[level // 8] >> (7 - level % 8)) & 1

    def subtree(part: list[tuple[bytes, bytes]], level: int) -> bytes:
        if not part:
            return bytes(32)
        if len(part) == 1:
            return part[0][1]
        left = [x for x in part if bit(x[0], level) == 0]
        right = [x for x in part if bit(x[0], level) == 1]
        return _h(b"\x01" + subtree(left, level + 1) + subtree(right, level + 1))

    return subtree(leaves, 0)


def next_height(store: KVReader) -> int:
    """The height after the last one that filed a state row in ``store`` (1 when none)."""
    last = next(store.iterate(keys.STATE_NODE, reverse=True), None)
    return 1 if last is None else int.from_bytes(last[0][2:10], "big") + 1


def commit(store: KVStore, root: bytes, changes: dict[bytes, bytes | None]) -> bytes:
    """Apply one block's changes through an overlay and write them, as the node does (as
    the next height: :func:`next_height`)."""
    overlay = OverlayStore(store)
    new_root = StateTree(overlay, root).apply(changes, overlay.batch, height=next_height(store))
    store.write(overlay.take())
    return new_root


def key(i: int) -> bytes:
    return b"key-%d" % i


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
    store, root, items = MemoryStore(), EMPTY_ROOT, {}
    for block in range(4):
        changes = {key(i): b"v%d" % i for i in range(block * 50, block * 50 + 50)}
        root = commit(store, root, dict(changes))
        items.update(changes)
    return store, root, items


# --- roots ------------------------------------------------------------------------------------


VECTORS = [
    ({}, "00" * 32),
    ({b"alice": b"100"}, "e88595db6e2373140c77336108e543dd79e1c6420dff08568b120417c8af88b5"),
    (
        {b"alice": b"100", b"bob": b"200"},
        "38aa0ada94ff3ee34417ed647542474fe1ee43ffa7c53595bdbc43dcb4bc2dec",
    ),
    (
        {b"alice": b"100", b"bob": b"200", b"carol": b""},
        "ffd25646fea70bec37c175bdc453925f2c253e8ff1902af24b1390471793f9f1",
    ),
]


@pytest.mark.parametrize(("items", "root_hex"), VECTORS)
def test_pinned_vectors(items: Items, root_hex: str) -> None:
    assert reference_root(items).hex() == root_hex
    tree = StateTree(MemoryStore())
    assert tree.apply(dict(items), WriteBatch(), height=1).hex() == root_hex
    assert tree.root.hex() == root_hex


def test_empty_root_is_32_zero_bytes() -> None:
    assert bytes(32) == EMPTY_ROOT
    assert StateTree(MemoryStore()).root == EMPTY_ROOT


def test_matches_reference_over_random_blocks() -> None:
    rng = random.Random(1234)
    for seed in range(20):
        store, root, model = MemoryStore(), EMPTY_ROOT, dict[bytes, bytes]()
        universe = rng.choice([4, 30, 300])
        for _ in range(12):
            changes: dict[bytes, bytes | None] = {}
            for _ in range(rng.choice([1, 2, 7, 60])):
                k = key(rng.randrange(universe))
                changes[k] = None if rng.random() < 0.35 else rng.randbytes(rng.randrange(3))
            root = commit(store, root, changes)
            apply_changes(model, changes.items())
            assert root == reference_root(model), f"seed {seed}"


changes_strategy = st.dictionaries(
    st.binary(max_size=6), st.one_of(st.none(), st.binary(max_size=4)), max_size=40
)


@settings(max_examples=60, deadline=None)
@given(
    initial=st.dictionaries(st.binary(max_size=6), st.binary(max_size=4), max_size=40),
    changes=changes_strategy,
    cuts=st.lists(st.integers(min_value=0, max_value=40), max_size=4),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_root_independent_of_order_and_batching(
    initial: Items, changes: dict[bytes, bytes | None], cuts: list[int], seed: int
) -> None:
    final = dict(initial)
    apply_changes(final, changes.items())
    # One batch of the final map...
    one = StateTree(MemoryStore()).apply(dict(final), WriteBatch(), height=1)
    assert one == reference_root(final)
    # ...equals the initial map then the changes, split into shuffled blocks.
    ops = list(changes.items())
    random.Random(seed).shuffle(ops)
    blocks, last = [], 0
    for cut in sorted(min(c, len(ops)) for c in cuts):
        blocks.append(dict(ops[last:cut]))
        last = cut
    blocks.append(dict(ops[last:]))
    store = MemoryStore()
    root = commit(store, EMPTY_ROOT, dict(initial))
    for block in blocks:
        root = commit(store, root, block)
    assert root == one


def test_deleting_every_key_gives_the_empty_root(filled: tuple[MemoryStore, bytes, Items]) -> None:
    store, root, items = filled
    assert commit(store, root, dict.fromkeys(items)) == EMPTY_ROOT
    # One by one too, in a shuffled order, through the historic root.
    order = list(items)
    random.Random(5).shuffle(order)
    for k in order:
        root = commit(store, root, {k: None})
    assert root == EMPTY_ROOT


def test_noop_changes_keep_the_root(filled: tuple[MemoryStore, bytes, Items]) -> None:
    store, root, items = filled
    same = {k: items[k] for k in list(items)[:10]}
    assert commit(store, root, {**same, b"never-set": None}) == root
    assert StateTree(store, root).apply({}, WriteBatch(), height=9) == root


# --- proofs -----------------------------------------------------------------------------------


def test_membership_and_both_kinds_of_absence(filled: tuple[MemoryStore, bytes, Items]) -> None:
    store, root, items = filled
    tree = StateTree(store, root)
    for k, v in items.items():
        proof = tree.prove(k)
        assert proof.value == v and proof.is_member
        verify_state_proof(root, proof)
    kinds = set()
    for i in range(1000, 1300):
        proof = tree.prove(key(i))
        assert proof.value is None
        verify_state_proof(root, proof)
        kinds.add(proof.other_key_hash is None)
    assert kinds == {True, False}, "absence at an empty subtree and at another leaf"


def test_proofs_are_compact(filled: tuple[MemoryStore, bytes, Items]) -> None:
    store, root, _ = filled
    proofs = [StateTree(store, root).prove(key(i)) for i in range(200)]
    assert all(len(p.siblings) <= p.depth for p in proofs)
    assert any(len(p.siblings) < p.depth for p in proofs), "empty siblings are left out"
    assert max(p.depth for p in proofs) < 30


def test_single_entry_and_empty_state_proofs() -> None:
    store = MemoryStore()
    empty = StateTree(store).prove(b"x")
    assert (empty.depth, empty.siblings, empty.value) == (0, (), None)
    verify_state_proof(EMPTY_ROOT, empty)
    root = commit(store, EMPTY_ROOT, {b"only": b"1"})
    member = StateTree(store, root).prove(b"only")
    assert (member.depth, member.value) == (0, b"1")
    verify_state_proof(root, member)
    other = StateTree(store, root).prove(b"x")
    assert other.other_key_hash == _h(b"only")
    verify_state_proof(root, other)


def rejects(root: bytes, proof: StateProof) -> bool:
    try:
        verify_state_proof(root, proof)
    except ProofError:
        return True
    return False


def test_tampered_value_key_and_root_are_rejected(
    filled: tuple[MemoryStore, bytes, Items],
) -> None:
    store, root, _ = filled
    tree = StateTree(store, root)
    proof = tree.prove(key(7))
    assert rejects(root, dataclasses.replace(proof, value=b"v8"))
    assert rejects(root, dataclasses.replace(proof, value=b""))
    assert rejects(root, dataclasses.replace(proof, value=None)), "present key claimed absent"
    for other in (key(8), key(7) + b"\x00", b""):
        assert rejects(root, dataclasses.replace(proof, key=other))
    other_root = commit(store, root, {key(7): b"changed"})
    assert rejects(other_root, proof)
    assert rejects(EMPTY_ROOT, proof)
    for i in range(5000, 5040):  # both kinds of absence proof
        absent = tree.prove(key(i))
        forged = dataclasses.replace(
            absent, value=b"forged", other_key_hash=None, other_value_hash=None
        )
        assert rejects(root, forged), "absent key claimed present"
        assert rejects(root, dataclasses.replace(absent, key=key(7)))


def test_every_flipped_sibling_is_rejected(filled: tuple[MemoryStore, bytes, Items]) -> None:
    store, root, _ = filled
    tree = StateTree(store, root)
    for k in (key(3), key(4000)):
        proof = tree.prove(k)
        assert proof.siblings
        for i, sibling in enumerate(proof.siblings):
            flipped = bytes([sibling[0] ^ 1]) + sibling[1:]
            siblings = (*proof.siblings[:i], flipped, *proof.siblings[i + 1 :])
            assert rejects(root, dataclasses.replace(proof, siblings=siblings)), (k, i)
        # Turning an empty sibling into a real one (bitmap bit set, hash inserted).
        for level in range(proof.depth):
            if _bit(proof.bitmap, level):
                continue
            before = sum(_bit(proof.bitmap, j) for j in range(level))
            siblings = (*proof.siblings[:before], _h(b"x"), *proof.siblings[before:])
            forged = dataclasses.replace(
                proof, bitmap=_set_bit(proof.bitmap, level), siblings=siblings
            )
            assert rejects(root, forged)


def test_truncated_and_padded_paths_are_rejected(filled: tuple[MemoryStore, bytes, Items]) -> None:
    store, root, _ = filled
    tree = StateTree(store, root)
    for k in (key(3), key(4000)):
        proof = tree.prove(k)
        # One level fewer: drop the deepest level (and its sibling, if any).
        depth = proof.depth - 1
        keep = sum(_bit(proof.bitmap, j) for j in range(depth))
        shorter = dataclasses.replace(
            proof, depth=depth, bitmap=_bitmap(proof.bitmap, depth), siblings=proof.siblings[:keep]
        )
        assert rejects(root, shorter)
        # Drop the top level instead.
        top = _bit(proof.bitmap, 0)
        bits = [_bit(proof.bitmap, j) for j in range(1, proof.depth)]
        dropped_top = dataclasses.replace(
            proof, depth=depth, bitmap=_pack(bits), siblings=proof.siblings[top:]
        )
        assert rejects(root, dropped_top)
        # One level more, with an empty or a real sibling.
        for extra in (None, _h(b"pad")):
            bits = [_bit(proof.bitmap, j) for j in range(proof.depth)] + [extra is not None]
            siblings = proof.siblings + ((extra,) if extra is not None else ())
            longer = dataclasses.replace(
                proof, depth=proof.depth + 1, bitmap=_pack(bits), siblings=siblings
            )
            assert rejects(root, longer)


def test_sibling_list_must_match_the_bitmap(filled: tuple[MemoryStore, bytes, Items]) -> None:
    store, root, _ = filled
    proof = StateTree(store, root).prove(key(3))
    obj = proof.to_obj()
    for siblings in (proof.siblings[:-1], (*proof.siblings, _h(b"pad")), ()):
        with pytest.raises(DecodeError, match="siblings"):
            StateProof.from_obj({**obj, "siblings": list(siblings)})
        with pytest.raises(ValidationError):
            dataclasses.replace(proof, siblings=siblings)


def test_absence_leaf_must_be_on_the_path(filled: tuple[MemoryStore, bytes, Items]) -> None:
    store, root, items = filled
    tree = StateTree(store, root)
    absent = next(p for i in range(1000, 2000) if (p := tree.prove(key(i))).other_key_hash)
    assert absent.other_key_hash is not None and absent.other_value_hash is not None
    # The other leaf's value hash, key hash, and a leaf elsewhere in the tree.
    assert rejects(root, dataclasses.replace(absent, other_value_hash=_h(b"?")))
    assert rejects(root, dataclasses.replace(absent, other_key_hash=_h(b"?")))
    elsewhere = next(_h(k) for k in items if _h(k)[0] >> 7 != absent.other_key_hash[0] >> 7)
    with pytest.raises(ProofError, match="not on the key's path"):
        verify_state_proof(root, dataclasses.replace(absent, other_key_hash=elsewhere))
    # A membership proof dressed up as absence, naming the key's own leaf.
    member = tree.prove(key(3))
    own = dataclasses.replace(
        member, value=None, other_key_hash=_h(key(3)), other_value_hash=_h(items[key(3)])
    )
    with pytest.raises(ProofError, match="own leaf"):
        verify_state_proof(root, own)


def test_verify_rejects_a_malformed_root(filled: tuple[MemoryStore, bytes, Items]) -> None:
    store, root, _ = filled
    proof = StateTree(store, root).prove(key(1))
    with pytest.raises(ProofError):
        verify_state_proof(root[:31], proof)


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


# --- encoding ---------------------------------------------------------------------------------


def test_to_obj_round_trips_through_the_canonical_encoding(
    filled: tuple[MemoryStore, bytes, Items],
) -> None:
    store, root, _ = filled
    tree = StateTree(store, root)
    for k in (key(1), key(1000), key(1001), key(1002)):
        proof = tree.prove(k)
        back = StateProof.from_obj(encoding.decode(encoding.encode(proof.to_obj())))
        assert back == proof
        verify_state_proof(root, back)


def _malformed(good: dict[str, Any]) -> Iterator[object]:
    yield None
    yield [good]
    yield {k: v for k, v in good.items() if k != "depth"}
    yield {**good, "extra": 1}
    yield {**good, "key": "text"}
    yield {**good, "value": 5}
    yield {**good, "depth": True}
    yield {**good, "depth": -1}
    yield {**good, "depth": 257}
    yield {**good, "depth": good["depth"] + 8}  # bitmap now too short
    yield {**good, "bitmap": good["bitmap"] + b"\x00"}
    yield {**good, "bitmap": "c0"}
    yield {**good, "siblings": tuple(good["siblings"])}
    yield {**good, "siblings": [s[:31] for s in good["siblings"]]}
    yield {**good, "siblings": [bytes(32)] * len(good["siblings"])}  # empty belongs in bitmap
    yield {**good, "siblings": ["ab" * 16] * len(good["siblings"])}
    yield {**good, "other_key_hash": bytes(32)}  # without its value hash
    yield {**good, "other_key_hash": b"1" * 31, "other_value_hash": b"2" * 32}
    yield {**good, "value": b"v", "other_key_hash": b"1" * 32, "other_value_hash": b"2" * 32}


def test_from_obj_rejects_malformed_proofs(filled: tuple[MemoryStore, bytes, Items]) -> None:
    store, root, _ = filled
    good = StateTree(store, root).prove(key(1)).to_obj()
    assert StateProof.from_obj(good).to_obj() == good
    depth = good["depth"]
    assert isinstance(depth, int)
    # A padding bit set below the depth.
    bitmap = good["bitmap"]
    assert isinstance(bitmap, bytes)
    if depth % 8:
        padded = bitmap[:-1] + bytes([bitmap[-1] | 1])
        with pytest.raises(DecodeError, match="below"):
            StateProof.from_obj({**good, "bitmap": padded})
    for i, bad in enumerate(_malformed(good)):
        with pytest.raises(DecodeError):
            StateProof.from_obj(bad)
            pytest.fail(f"malformed proof {i} was accepted")


# --- helpers ----------------------------------------------------------------------------------


def _bit(bitmap: bytes, level: int) -> bool:
    return bool((bitmap[level // 8] >> (7 - level % 8)) & 1)


def _pack(bits: list[bool]) -> bytes:
    out = bytearray((len(bits) + 7) // 8)
    for i, b in enumerate(bits):
        if b:
            out[i // 8] |= 0x80 >> (i % 8)
    return bytes(out)


def _bitmap(bitmap: bytes, depth: int) -> bytes:
    return _pack([_bit(bitmap, j) for j in range(depth)])


def _set_bit(bitmap: bytes, level: int) -> bytes:
    out = bytearray(bitmap)
    out[level // 8] |= 0x80 >> (level % 8)
    return bytes(out)
