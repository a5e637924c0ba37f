"""The ledger's append-only Merkle log over every transaction hash since genesis.

One RFC 6962 tree (see :mod:`ledger.merkle`) whose leaf data are the 32-byte
transaction hashes in commit order, so an auditor can ask for an inclusion proof
of any transaction, or a consistency proof that the ledger at one size extends the
ledger at an earlier one, and check either in O(log n).

**Storage.** We keep every *perfect* subtree: the hash of the 2^level leaves
starting at leaf ``index * 2^level``, for every such subtree that is complete.
That is at most 2n - 1 hashes for n leaves. In an RFC 6962 tree of any size, every
subtree the proofs need is either perfect, or a left-aligned run of leaves that
splits into O(log n) perfect subtrees by the bits of its length, so the root of
any past size and any inclusion or consistency proof are computed from O(log n)
stored hashes, never from the whole tree in memory.

Keys (all under :data:`ledger.storage.keys.LOG`):

* ``LOG + last_leaf (8 bytes big-endian) + level (1 byte)`` -> 32-byte node hash,
  where ``last_leaf = (index + 1) * 2^level - 1`` is the subtree's rightmost
  leaf. Ordering by (last leaf, level) is the order in which appends complete the
  subtrees, so every append writes keys above all existing ones: sequential for
  LevelDB, and an append at the end for the sorted memory store.
* :data:`SIZE_KEY` (``LOG + b"size"``) -> leaf count, 8 bytes big-endian. Its
  length differs from a node key's, so the two never collide.

**Appending** writes the new leaf and each subtree it completes (amortised two
writes per leaf, at most 65), plus the size, through the store's ``put``: inside a
block's execution :class:`~ledger.storage.overlay.OverlayStore` they land in the
block's one write batch and reads see them before commit. Nothing is cached in the
object between calls, so a discarded overlay leaves no stale state behind.
"""

from __future__ import annotations

from collections.abc import Sequence

from ledger.errors import CorruptionError, ValidationError
from ledger.merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    MAX_TREE_SIZE,
    ConsistencyProof,
    InclusionProof,
    leaf_hash,
    node_hash,
    split_point,
)
from ledger.storage import keys
from ledger.storage.protocol import KVReader, LogWriter

SIZE_KEY = keys.LOG + b"size"


def log_node_key(level: int, index: int) -> bytes:
    """Key of the perfect subtree of 2^level leaves starting at leaf ``index * 2^level``."""
    last_leaf = ((index + 1) << level) - 1
    return keys.LOG + last_leaf.to_bytes(8, "big") + bytes((level,))


class MerkleLog:
    """The log as stored in ``store``; reads for roots and proofs, puts for appends."""

    def __init__(self, store: KVReader) -> None:
        self.store = store

    # --- reading ------------------------------------------------------------------------------

    def size(self) -> int:
        """Number of leaves appended so far (as the store sees it)."""
        raw = self.store.get(SIZE_KEY)
        if raw is None:
            return 0
        if len(raw) != 8:
            raise CorruptionError(f"log size record is {len(raw)} bytes, not 8")
        return int.from_bytes(raw, "big")

    def root(self, size: int | None = None) -> bytes:
        """MTH of the first ``size`` leaves (default: all of them)."""
        size = self._check_size(size, "tree size")
        return self._range_hash(0, size) if size else EMPTY_ROOT

    def get_leaf_hash(self, index: int) -> bytes:
        """The stored leaf hash ``SHA-256(0x00 || tx_hash)`` at ``index``."""
        if not 0 <= index < self.size():
            raise ValidationError(f"leaf index {index} is not in the log of size {self.size()}")
        return self._node(0, index)

    def prove_inclusion(self, index: int, size: int | None = None) -> InclusionProof:
        """PATH(index, D[size]) for any past ``size`` (default: the current size)."""
        size = self._check_size(size, "tree size")
        if not 0 <= index < size:
            raise ValidationError(f"leaf index {index} is not in a tree of size {size}")
        return InclusionProof(index, size, tuple(self._path(index, 0, size)))

    def prove_consistency(self, old_size: int, new_size: int | None = None) -> ConsistencyProof:
        """PROOF(old_size, D[new_size]); empty when old_size is 0 or equals new_size."""
        new_size = self._check_size(new_size, "new size")
        if not 0 <= old_size <= new_size:
            raise ValidationError(f"old size {old_size} is not between 0 and new size {new_size}")
        path = self._subproof(old_size, 0, new_size, True) if old_size else []
        return ConsistencyProof(old_size, new_size, tuple(path))

    def border(self, size: int) -> list[tuple[int, bytes]]:
        """(level, hash) of the perfect subtrees that make up the tree of ``size`` leaves,
        left to right: all a node needs to append after ``size`` (a state snapshot's log:
        node/snapshots.py); :func:`border_root` folds them into the root."""
        return self._border(self._check_size(size, "tree size"))

    # --- appending ----------------------------------------------------------------------------

    def append(self, tx_hashes: Sequence[bytes]) -> bytes:
        """Append leaves (32-byte transaction hashes) and return the new root.

        Every check runs before the first write, so a bad leaf leaves the store as it was.
        """
        writer = self.store
        if not isinstance(writer, LogWriter):
            raise TypeError("appending needs a store with put(), e.g. an OverlayStore")
        leaves: Sequence[object] = tx_hashes  # unchecked items: compiled code must not cast
        for i, tx_hash in enumerate(leaves):
            if not isinstance(tx_hash, bytes) or len(tx_hash) != HASH_SIZE:
                raise ValidationError(f"log leaf {i} must be a {HASH_SIZE}-byte transaction hash")
        size = self.size()
        if size + len(tx_hashes) > MAX_TREE_SIZE:
            raise ValidationError("the log cannot grow beyond 2**64-1 leaves")
        # The right border: (level, hash) of the perfect subtrees covering [0, size).
        border = self._border(size)
        for tx_hash in tx_hashes:
            level, index, h = 0, size, leaf_hash(tx_hash)
            writer.put(log_node_key(0, index), h)
            while border and border[-1][0] == level:
                h = node_hash(border.pop()[1], h)
                level, index = level + 1, index >> 1
                writer.put(log_node_key(level, index), h)
            border.append((level, h))
            size += 1
        if tx_hashes:
            writer.put(SIZE_KEY, size.to_bytes(8, "big"))
        return _fold([h for _, h in border]) if border else EMPTY_ROOT

    # --- internals ----------------------------------------------------------------------------

    def _check_size(self, size: int | None, what: str) -> int:
        current = self.size()
        if size is None:
            return current
        if not 0 <= size <= current:
            raise ValidationError(f"{what} {size} is not between 0 and the log's size {current}")
        return size

    def _node(self, level: int, index: int) -> bytes:
        value = self.store.get(log_node_key(level, index))
        if value is None or len(value) != HASH_SIZE:
            what = "missing" if value is None else f"{len(value)} bytes"
            raise CorruptionError(f"log node (level {level}, index {index}) is {what}")
        return value

    def _perfect(self, lo: int, n: int) -> bytes:
        """Hash of the perfect subtree over leaves [lo, lo + n), n a power of two."""
        level = n.bit_length() - 1
        return self._node(level, lo >> level)

    def _border(self, size: int) -> list[tuple[int, bytes]]:
        border = []
        lo = 0
        for level in range(size.bit_length() - 1, -1, -1):
            if size >> level & 1:
                border.append((level, self._node(level, lo >> level)))
                lo += 1 << level
        return border

    def _range_hash(self, lo: int, n: int) -> bytes:
        """MTH(D[lo:lo+n]) for n > 0, lo a multiple of a power of two >= n.

        Every subtree met in PATH and SUBPROOF has that form; it is the perfect
        subtrees given by the bits of n, folded from the right.
        """
        assert n > 0 and lo % (1 << (n - 1).bit_length()) == 0, (lo, n)
        hashes = []
        for level in range(n.bit_length() - 1, -1, -1):
            if n >> level & 1:
                hashes.append(self._node(level, lo >> level))
                lo += 1 << level
        return _fold(hashes)

    def _path(self, m: int, lo: int, n: int) -> list[bytes]:
        """PATH(m, D[lo:lo+n]) (RFC 9162 §2.1.3.1), hashes read from the store."""
        if n == 1:
            return []
        k = split_point(n)
        if m < k:
            return [*self._path(m, lo, k), self._range_hash(lo + k, n - k)]
        return [*self._path(m - k, lo + k, n - k), self._perfect(lo, k)]

    def _subproof(self, m: int, lo: int, n: int, complete: bool) -> list[bytes]:
        """SUBPROOF(m, D[lo:lo+n], complete) (RFC 9162 §2.1.4.1) from the store."""
        if m == n:
            return [] if complete else [self._range_hash(lo, n)]
        k = split_point(n)
        if m <= k:
            return [*self._subproof(m, lo, k, complete), self._range_hash(lo + k, n - k)]
        return [*self._subproof(m - k, lo + k, n - k, False), self._perfect(lo, k)]


def border_root(border: Sequence[tuple[int, bytes]]) -> tuple[int, bytes]:
    """(size, root) of the tree whose right border is ``border`` ((level, hash), left to
    right, levels strictly decreasing); ValidationError if it is not a border."""
    levels = [level for level, _ in border]
    if any(not 0 <= lv < 64 for lv in levels) or levels != sorted(set(levels), reverse=True):
        raise ValidationError("a log border has strictly decreasing levels below 64")
    if any(len(h) != HASH_SIZE for _, h in border):
        raise ValidationError(f"a log border's hashes are {HASH_SIZE} bytes")
    size = sum(1 << level for level in levels)
    return size, (_fold([h for _, h in border]) if border else EMPTY_ROOT)


def border_rows(border: Sequence[tuple[int, bytes]]) -> list[tuple[bytes, bytes]]:
    """The log rows that hold ``border`` (and the size), for appends to continue it."""
    size, _ = border_root(border)
    rows, lo = [], 0
    for level, h in border:
        rows.append((log_node_key(level, lo >> level), h))
        lo += 1 << level
    if size:
        rows.append((SIZE_KEY, size.to_bytes(8, "big")))
    return rows


def _fold(hashes: list[bytes]) -> bytes:
    """Join left-to-right perfect subtree hashes into their RFC 6962 root."""
    root = hashes[-1]
    for h in reversed(hashes[:-1]):
        root = node_hash(h, root)
    return root
