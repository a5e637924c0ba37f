"""A committed state for the state-tree tests: the spec's reference root, a commit as the
node does it, and a small state of 200 entries in four blocks.

:func:`reference_root` is a direct transcription of docs/formats-state.md §1 written
independently of ``ledger.state``, so a change to the hashing fails the tests that
compare against it even if the tree and the verifier change together.
"""

from __future__ import annotations

import hashlib

from ledger.state import EMPTY_ROOT, StateTree
from ledger.storage import KVStore, MemoryStore, OverlayStore, keys
from ledger.storage.protocol import KVReader

Items = dict[bytes, bytes]


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def reference_root(items: Items) -> bytes:
    """The root by the spec's definition: recursive, slow, obviously right."""
    leaves = sorted((sha256(k), sha256(b"\x00" + sha256(k) + sha256(v))) for k, v in items.items())

    def bit(kh: bytes, level: int) -> int:
        return (kh[level // 8] >> (7 - level % 8)) & 1

    def subtree(part: list[tuple[bytes, bytes]], level: int) -> bytes:
        if not part:
            return bytes(32)
        if len(part) == 1:
            return part[0][1]
        left = [x for x in part if bit(x[0], level) == 0]
        right = [x for x in part if bit(x[0], level) == 1]
        return sha256(b"\x01" + subtree(left, level + 1) + subtree(right, level + 1))

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


def filled_state() -> tuple[MemoryStore, bytes, Items]:
    """200 entries, committed in four blocks."""
    store, root, items = MemoryStore(), EMPTY_ROOT, {}
    for block in range(4):
        changes = {key(i): b"v%d" % i for i in range(block * 50, block * 50 + 50)}
        root = commit(store, root, dict(changes))
        items.update(changes)
    return store, root, items
