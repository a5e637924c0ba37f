"""Snapshots of the state: taken from a store, every chunk checked on its own, the state
rebuilt row for row; and every kind of tampering refused."""

from __future__ import annotations

import pytest

from ledger import state_snapshot as snap
from ledger.encoding import decode, encode
from ledger.state import StateTree
from ledger.state_proof import EMPTY_ROOT
from ledger.storage import WriteBatch, keys
from ledger.storage.memory import MemoryStore

SNAPSHOT_HEIGHT = 40  # every row of a rebuilt store is filed at it


def _state(n: int, *, deletes: int = 0) -> tuple[MemoryStore, bytes]:
    store = MemoryStore()
    tree = StateTree(store)
    batch = WriteBatch()
    tree.apply(
        {f"key/{i}".encode(): f"value {i}".encode() * (i % 5) for i in range(n)}, batch, height=1
    )
    store.write(batch)
    if deletes:
        batch = WriteBatch()
        tree.apply({f"key/{i}".encode(): None for i in range(deletes)}, batch, height=2)
        store.write(batch)
    return store, tree.root


def _rebuild(store: MemoryStore, root: bytes) -> tuple[MemoryStore, snap.Manifest, list[bytes]]:
    manifest = snap.read_manifest(snap.plan_snapshot(store, root).encode(), root)
    chunks = list(snap.snapshot_chunks(store, manifest))
    out = MemoryStore()
    out.write(snap.manifest_rows(manifest, SNAPSHOT_HEIGHT))
    for data, roots in zip(chunks, manifest.chunks, strict=True):
        batch = WriteBatch()
        for key, value in snap.read_chunk(data, roots, SNAPSHOT_HEIGHT):
            batch.put(key, value)
        out.write(batch)
    return out, manifest, chunks


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(snap, "CHUNK_BYTES", 4096)


@pytest.mark.usefixtures("small_chunks")
def test_a_snapshot_rebuilds_the_state_row_for_row() -> None:
    store, root = _state(3000, deletes=500)
    out, manifest, chunks = _rebuild(store, root)
    assert len(chunks) > 10 and manifest.pages  # a skeleton and many chunks
    assert max(len(c) for c in chunks) <= 4096 + 2048  # about the target
    # the flat table is the state's, exactly; every stored page of the root is there
    assert list(out.iterate(keys.STATE_LEAF)) == list(store.iterate(keys.STATE_LEAF))
    rebuilt = StateTree(out, root)
    for i in range(0, 3000, 97):
        key = f"key/{i}".encode()
        assert rebuilt.get_at(root, key) == StateTree(store, root).get_at(root, key)
        assert rebuilt.prove(key) == StateTree(store, root).prove(key)
    # every row filed at the snapshot's height, the same rows as the original's otherwise
    at = SNAPSHOT_HEIGHT.to_bytes(8, "big")
    assert all(k[2:10] == at for k, _ in out.iterate(keys.STATE_NODE))
    assert list(out.iterate(keys.STATE_ROOT)) == [(keys.STATE_ROOT + root, at)]
    assert {k[10:] for k, _ in out.iterate(keys.STATE_NODE)} <= {
        k[10:] for k, _ in store.iterate(keys.STATE_NODE)
    }
    # the rebuilt store applies updates as the original does
    b1, b2 = WriteBatch(), WriteBatch()
    change = {b"key/7": b"new", b"key/2999": None, b"fresh": b"x"}
    assert StateTree(out, root).apply(change, b1, height=41) == StateTree(store, root).apply(
        change, b2, height=41
    )


def test_small_states_fit_one_chunk_or_none() -> None:
    for n in (0, 1, 2, 50):
        store, root = _state(n)
        out, manifest, _ = _rebuild(store, root)
        assert list(out.iterate(keys.STATE_LEAF)) == list(store.iterate(keys.STATE_LEAF))
        assert len(manifest.chunks) == (1 if n >= 2 else 0)
    assert _state(0)[1] == EMPTY_ROOT


@pytest.mark.usefixtures("small_chunks")
def test_snapshots_of_one_state_are_the_same_bytes() -> None:
    store, root = _state(800)
    again = MemoryStore()
    batch = WriteBatch()  # the same map reached in another order of updates
    StateTree(again).apply(
        {f"key/{i}".encode(): f"value {i}".encode() * (i % 5) for i in reversed(range(800))},
        batch,
        height=9,
    )
    again.write(batch)
    one = snap.plan_snapshot(store, root)
    assert one.encode() == snap.plan_snapshot(again, root).encode()
    assert list(snap.snapshot_chunks(store, one)) == list(snap.snapshot_chunks(again, one))


@pytest.mark.usefixtures("small_chunks")
def test_a_tampered_chunk_is_refused_on_arrival() -> None:
    store, root = _state(1500)
    manifest = snap.plan_snapshot(store, root)
    chunks = list(snap.snapshot_chunks(store, manifest))
    good, roots = chunks[1], manifest.chunks[1]
    obj = decode(good)
    assert isinstance(obj, dict)
    flipped = bytearray(good)
    flipped[len(flipped) // 2] ^= 1
    cases = {
        "bit flipped": bytes(flipped),
        "another chunk": chunks[2],
        "a leaf dropped": encode({**obj, "leaves": obj["leaves"][1:]}),  # type: ignore[index]
        "a value changed": encode(
            {**obj, "leaves": [[obj["leaves"][0][0], b"forged"], *obj["leaves"][1:]]}  # type: ignore[index]
        ),
        "a page dropped": encode({**obj, "pages": obj["pages"][1:]}),  # type: ignore[index]
        "a page added": encode({**obj, "pages": [*obj["pages"], decode(chunks[2])["pages"][0]]}),  # type: ignore[index]
        "not msgpack": b"\xc1" * 10,
        "too big": b"\x00" * (snap.MAX_PART_BYTES + 1),
    }
    for name, data in cases.items():
        with pytest.raises(snap.SnapshotError):
            snap.read_chunk(data, roots, SNAPSHOT_HEIGHT)
            pytest.fail(name)
    assert snap.read_chunk(good, roots, SNAPSHOT_HEIGHT)  # the untouched chunk passes


@pytest.mark.usefixtures("small_chunks")
def test_a_manifest_that_does_not_match_the_root_is_refused() -> None:
    store, root = _state(1500)
    other_store, other_root = _state(1400)
    manifest = snap.plan_snapshot(store, root)
    with pytest.raises(snap.SnapshotError, match="another state root"):
        snap.read_manifest(manifest.encode(), other_root)
    forged = snap.plan_snapshot(other_store, other_root)
    relabelled = snap.Manifest(root, forged.pages, forged.leaves, forged.chunks)
    with pytest.raises(snap.SnapshotError, match="not under the root"):
        snap.read_manifest(relabelled.encode(), root)
    merged = snap.Manifest(root, manifest.pages, manifest.leaves, manifest.chunks[1:])
    with pytest.raises(snap.SnapshotError, match="cover"):
        snap.read_manifest(merged.encode(), root)
    no_leaf = snap.Manifest(root, manifest.pages, manifest.leaves[1:], manifest.chunks)
    if manifest.leaves:
        with pytest.raises(snap.SnapshotError, match="lacks"):
            snap.read_manifest(no_leaf.encode(), root)


@pytest.mark.usefixtures("small_chunks")
def test_taking_a_snapshot_keeps_no_table_of_the_whole_tree(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The walk learns where each page is filed from its parent, and keeps subtree sizes
    only for the skeleton and the subtrees it cuts into chunks: what a node holds while
    it takes a snapshot does not grow with the state."""
    readers: list[snap._Reader] = []

    class Recorded(snap._Reader):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, **kwargs)  # type: ignore[arg-type]
            readers.append(self)

    monkeypatch.setattr(snap, "_Reader", Recorded)
    store, root = _state(3000, deletes=500)
    manifest = snap.plan_snapshot(store, root)
    chunks = list(snap.snapshot_chunks(store, manifest))
    skeleton = {snap.read_page(row)[0] for row in manifest.pages}
    cut = {h for group in manifest.chunks for h in group}
    pages = sum(1 for _key, value in store.iterate(keys.STATE_NODE) if value[:1] != b"\x00")
    planned, served = readers
    assert set(planned.sizes) <= skeleton | cut and len(planned.sizes) < pages / 4
    assert served.sizes == {}  # serving chunks needs no sizes at all
    assert len(chunks) == len(manifest.chunks) > 10
