"""The authenticated state: a compact sparse Merkle tree over a KV store.

Each state key lives at the 256-bit path ``SHA-256(key)``. A subtree with one entry is
stored as that entry's leaf, so a tree of n random keys is about ``log2(n)`` deep and
one update rehashes about that many nodes, shared between the keys of a batch. The
hashing (see :mod:`ledger.state_proof` and ``docs/formats-state.md``)::

    leaf     = SHA-256(0x00 || key_hash || SHA-256(value))
    internal = SHA-256(0x01 || left || right)
    empty    = 32 zero bytes (EMPTY_ROOT)

Storage (both tables in :mod:`ledger.storage.keys`; fixed binary layouts, no msgpack):

* ``STATE_NODE + hash -> node``, content-addressed, never deleted, so every historic
  root keeps answering. An internal node is ``0x01 || left || right`` (65 bytes, its hash
  is SHA-256 of exactly those bytes); a leaf is ``0x00 || key_hash || value``.
* ``STATE_LEAF + key_hash -> u32be(len(key)) || key || value``: the current value of
  every key (the flat table), kept in step with the latest root by :meth:`StateTree.apply`,
  so that :meth:`StateTree.get` is one read instead of a walk.

Reading one's own writes: :meth:`StateTree.apply` only fills the given batch. To read
the new state before that batch is committed, give the tree an
:class:`~ledger.storage.overlay.OverlayStore` and apply into ``overlay.batch``; to
compute a proposal's root and forget it, drop the overlay.

Trust in the store: a node read from it is checked for shape (:class:`CorruptionError`
when missing or malformed) but, by default, not rehashed. The store is our own, LevelDB
checksums its blocks, and a wrong node cannot go unnoticed where it matters: an update
over it yields a state root that differs from the certified one, and a proof built from
it fails verification. ``verify_nodes=True`` (audits) checks every node read against
its hash too, which makes updates about 10% slower.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Mapping
from hashlib import sha256

from ledger.errors import CorruptionError
from ledger.state_proof import (
    EMPTY_ROOT,
    HASH_SIZE,
    KEY_BITS,
    StateProof,
    bitmap_bytes,
    verify_state_proof,
)
from ledger.storage import keys
from ledger.storage.protocol import KVReader, WriteBatch

__all__ = [
    "EMPTY_ROOT",
    "NodeCache",
    "StateProof",
    "StateTree",
    "verify_state_proof",
]

_NODE = keys.STATE_NODE
_LEAF = keys.STATE_LEAF
_LEAF_TAG = 0
_NODE_TAG = 1


def flat_key(key_hash: bytes) -> bytes:
    """Storage key of the flat-table row of the state key with this hash."""
    return _LEAF + key_hash


def decode_flat_row(row: bytes, key: bytes) -> bytes:
    """The value in a flat-table row, checking that the row is ``key``'s."""
    n = int.from_bytes(row[:4], "big")
    if len(row) < 4 + n or row[4 : 4 + n] != key:
        raise CorruptionError(f"flat state row for key {key.hex()} holds another key")
    return row[4 + n :]


class NodeCache:
    """A bounded cache of tree nodes by hash, shared between trees; roughly LRU.

    Two generations of plain dicts: nodes go into ``young``; when it holds half the
    capacity it becomes ``old`` and the previous ``old`` is dropped; a hit in ``old``
    moves the node back to ``young``. That keeps what was used in the last half
    capacity of insertions at the cost of dict operations only (an ``OrderedDict``
    LRU costs several times more per node, and a block inserts tens of thousands).
    It holds at most ``capacity`` nodes, plus those of the last apply while it lasts.

    Only nodes above :attr:`depth_limit` are admitted: there are fewer of them than
    the capacity, every walk passes through them, and they are what random updates
    and proofs reuse; the deep nodes, seldom read twice, would only evict them.
    Content addressing makes sharing safe: a hash names one node in every store.
    """

    __slots__ = ("capacity", "depth_limit", "old", "young")

    def __init__(self, capacity: int = 100_000) -> None:
        self.capacity = capacity
        self.depth_limit = max(1, capacity.bit_length() - 1)
        """Nodes at depths below this (at most ``2**depth_limit - 1``) are cached."""
        self.young: dict[bytes, bytes] = {}
        self.old: dict[bytes, bytes] = {}

    def get(self, node_hash: bytes) -> bytes | None:
        node = self.young.get(node_hash)
        if node is None:
            node = self.old.get(node_hash)
            if node is not None:
                self.add(node_hash, node)
        return node

    def add(self, node_hash: bytes, node: bytes) -> None:
        young = self.young
        young[node_hash] = node
        if 2 * len(young) >= self.capacity:
            self.old, self.young = young, {}

    def add_many(self, new: Mapping[bytes, bytes]) -> None:
        young = self.young
        young.update(new)
        if 2 * len(young) >= self.capacity:
            self.old, self.young = young, {}

    def __len__(self) -> int:
        return len(self.young.keys() | self.old.keys())


class StateTree:
    """Read and update the authenticated state stored in a KV store.

    Trees are cheap to make (one per block, per request); give them one long-lived
    :class:`NodeCache` so that the upper levels are not read again each time.
    """

    def __init__(
        self,
        store: KVReader,
        root: bytes = EMPTY_ROOT,
        *,
        cache: NodeCache | None = None,
        verify_nodes: bool = False,
    ) -> None:
        self.store = store
        self.root = _check_root(root)
        self.cache = cache if cache is not None else NodeCache()
        self.verify_nodes = verify_nodes

    # --- reads -----------------------------------------------------------------------------

    def get(self, key: bytes) -> bytes | None:
        """Current value of ``key`` from the flat table (the store's latest applied root).

        The flat table follows the latest :meth:`apply` written to ``store``, not
        :attr:`root`; for any other root use :meth:`get_at`.
        """
        row = self.store.get(_LEAF + sha256(key).digest())
        return None if row is None else decode_flat_row(row, key)

    def get_at(self, root: bytes, key: bytes) -> bytes | None:
        """Value of ``key`` under ``root`` (any root whose nodes are stored), by walking.

        An unknown root raises :class:`CorruptionError` (its node is missing): check that
        a root a client names is a certified one before asking.
        """
        _check_root(root)
        kh = sha256(key).digest()
        _, _, leaf = self._walk(root, kh, None)
        if leaf is not None and leaf[1:33] == kh:
            return leaf[33:]
        return None

    def prove(self, key: bytes, root: bytes | None = None) -> StateProof:
        """Proof of ``key``'s value, or of its absence, under ``root`` (default: :attr:`root`)."""
        root = self.root if root is None else _check_root(root)
        kh = sha256(key).digest()
        siblings: list[bytes] = []
        depth, bits, leaf = self._walk(root, kh, siblings)
        bitmap = bitmap_bytes(bits, depth)
        if leaf is None:
            return StateProof(key, None, depth, bitmap, tuple(siblings))
        if leaf[1:33] == kh:
            return StateProof(key, leaf[33:], depth, bitmap, tuple(siblings))
        other_value_hash = sha256(leaf[33:]).digest()
        return StateProof(key, None, depth, bitmap, tuple(siblings), leaf[1:33], other_value_hash)

    def _walk(
        self, root: bytes, kh: bytes, siblings: list[bytes] | None
    ) -> tuple[int, int, bytes | None]:
        """Follow ``kh``'s path to its end: (depth, sibling bits, leaf node or None).

        Non-empty siblings are appended to ``siblings`` when given; bit ``255 - level``
        of the returned int is set for each of them.
        """
        path = int.from_bytes(kh, "big")
        node_hash = root
        depth = bits = 0
        while node_hash != EMPTY_ROOT:
            node = self._node(node_hash, depth)
            if node[0] == _LEAF_TAG:
                return depth, bits, node
            if (path >> (255 - depth)) & 1:
                node_hash, sibling = node[33:], node[1:33]
            else:
                node_hash, sibling = node[1:33], node[33:]
            if siblings is not None and sibling != EMPTY_ROOT:
                siblings.append(sibling)
                bits |= 1 << (255 - depth)
            depth += 1
        return depth, bits, None

    def _node(self, node_hash: bytes, depth: int) -> bytes:
        """The node with this hash (found at ``depth``): cached, or read and checked."""
        node = self.cache.get(node_hash)
        return self._load(node_hash, depth) if node is None else node

    def _load(self, node_hash: bytes, depth: int) -> bytes:
        """Read a node missing from the cache, check it, and cache it if it is high up."""
        node = self.store.get(_NODE + node_hash)
        if node is None:
            raise CorruptionError(f"state node {node_hash.hex()} is missing from the store")
        if self.verify_nodes:
            if _hash_stored_node(node) != node_hash:
                raise CorruptionError(f"state node {node_hash.hex()} does not match its hash")
        elif (len(node) != 65) if node[:1] == b"\x01" else (node[:1] != b"\x00" or len(node) < 33):
            raise CorruptionError(f"state node {node_hash.hex()} is malformed")
        if depth < self.cache.depth_limit:
            self.cache.add(node_hash, node)
        return node

    # --- updates ---------------------------------------------------------------------------

    def apply(self, changes: Mapping[bytes, bytes | None], batch: WriteBatch) -> bytes:
        """Apply sets (bytes) and deletes (None) at once; return and adopt the new root.

        Every new node and flat-table row goes into ``batch`` (the store is not
        written). The root depends only on the resulting key->value map. Nothing is
        added to ``batch`` if a stored node turns out missing or corrupt.
        """
        if not changes:
            return self.root
        entries = sorted(_prepare(key, value) for key, value in changes.items())
        update = _BatchUpdate(entries, self._node, self._load, self.cache)
        new_root = update.run(self.root)
        for kh, key, value, _leaf_hash in entries:
            if value is None:
                batch.delete(_LEAF + kh)
            else:
                batch.put(_LEAF + kh, len(key).to_bytes(4, "big") + key + value)
        put = batch.put
        for node_hash, node in update.nodes.items():
            put(_NODE + node_hash, node)
        self.cache.add_many(update.upper)
        self.root = new_root
        return new_root


def _check_root(root: bytes) -> bytes:
    if type(root) is not bytes or len(root) != HASH_SIZE:
        raise ValueError(f"a state root is {HASH_SIZE} bytes")
    return root


def _prepare(key: bytes, value: bytes | None) -> tuple[bytes, bytes, bytes | None, bytes | None]:
    """(key hash, key, value, leaf hash or None for a delete), type-checked."""
    if type(key) is not bytes:
        raise TypeError(f"state keys are bytes, got {type(key).__name__}")
    kh = sha256(key).digest()
    if value is None:
        return kh, key, None, None
    if type(value) is not bytes:
        raise TypeError(f"state values are bytes or None, got {type(value).__name__}")
    return kh, key, value, sha256(b"\x00" + kh + sha256(value).digest()).digest()


def _hash_stored_node(node: bytes) -> bytes | None:
    """The hash a stored node must be filed under, or None if it is malformed."""
    if len(node) == 1 + 2 * HASH_SIZE and node[0] == _NODE_TAG:
        return sha256(node).digest()
    if len(node) >= 1 + HASH_SIZE and node[0] == _LEAF_TAG:
        return sha256(node[:33] + sha256(node[33:]).digest()).digest()
    return None


class _BatchUpdate:
    """One :meth:`StateTree.apply`: sorted changes in, a new root and its new nodes out.

    The changes are split by bit down the old tree, so each node above several changed
    keys is read and rehashed once. Below an old leaf or empty subtree the new
    subtree is built directly from the surviving entries.
    """

    __slots__ = ("cache", "cache_limit", "hashes", "load", "nodes", "paths", "read", "upper")

    def __init__(
        self,
        entries: list[tuple[bytes, bytes, bytes | None, bytes | None]],
        read: Callable[[bytes, int], bytes],
        load: Callable[[bytes, int], bytes],
        cache: NodeCache,
    ) -> None:
        self.paths = [int.from_bytes(kh, "big") for kh, _, _, _ in entries]
        self.hashes = [leaf_hash for _, _, _, leaf_hash in entries]
        self.read = read  # any node
        self.load = load  # a node known not to be in the cache
        self.cache = cache
        self.cache_limit = cache.depth_limit
        self.nodes: dict[bytes, bytes] = {}
        """Every node created, by hash (all of them are in the new tree)."""
        self.upper: dict[bytes, bytes] = {}
        """The internal ones among them above ``cache_limit``, for the node cache."""
        for kh, _key, value, leaf_hash in entries:
            if value is not None and leaf_hash is not None:
                self.nodes[leaf_hash] = b"\x00" + kh + value

    def run(self, root: bytes) -> bytes:
        return self.update(root, 0, 0, len(self.paths))

    def update(self, node_hash: bytes, depth: int, lo: int, hi: int) -> bytes:
        """New hash of the subtree ``node_hash`` at ``depth`` after changes ``[lo, hi)``."""
        if hi - lo == 1:
            return self.update_one(node_hash, depth, lo)
        if node_hash == EMPTY_ROOT:
            return self.build(depth, lo, hi, None, EMPTY_ROOT)
        node = self.read(node_hash, depth)
        if node[0] == _LEAF_TAG:
            return self.build(depth, lo, hi, node, node_hash)
        shift = 255 - depth
        mid = bisect_left(self.paths, ((self.paths[lo] >> shift) | 1) << shift, lo, hi)
        left, right = node[1:33], node[33:]
        new_left = self.update(left, depth + 1, lo, mid) if mid > lo else left
        new_right = self.update(right, depth + 1, mid, hi) if hi > mid else right
        if new_left == left and new_right == right:
            return node_hash
        if new_left == EMPTY_ROOT:
            if new_right == EMPTY_ROOT or self.is_leaf(new_right, depth + 1):
                return new_right  # compaction: a lone leaf moves up
        elif new_right == EMPTY_ROOT and self.is_leaf(new_left, depth + 1):
            return new_left
        return self.internal(new_left, new_right, depth)

    def update_one(self, node_hash: bytes, depth: int, i: int) -> bytes:
        """:meth:`update` for the single change ``i``: walk down, then rehash upwards.

        Most of a batch's work happens below the levels its keys share, one key per
        subtree; a loop is much cheaper there than splitting a range at every level.
        """
        path = self.paths[i]
        cache = self.cache
        young, older, load = cache.young, cache.old, self.load
        above: list[bytes] = []  # the internal nodes passed on the way down
        old, level = node_hash, depth
        while old != EMPTY_ROOT:
            node = young.get(old)  # self.read(), inlined: the hottest lookup of an update
            if node is None:
                node = older.get(old)
                if node is None:
                    node = load(old, level)
                else:
                    cache.add(old, node)
            if node[0] == _LEAF_TAG:
                new = self.build(level, i, i + 1, node, old)
                break
            above.append(node)
            old = node[33:] if (path >> (255 - level)) & 1 else node[1:33]
            level += 1
        else:
            new = self.hashes[i] or EMPTY_ROOT
        if new == old:
            return node_hash
        lone = new == EMPTY_ROOT or self.is_leaf(new, level)  # may still move up
        nodes, upper, limit = self.nodes, self.upper, self.cache_limit
        for up in range(level - 1, depth - 1, -1):
            parent = above.pop()
            right = (path >> (255 - up)) & 1
            if lone:
                sibling = parent[1:33] if right else parent[33:]
                if sibling == EMPTY_ROOT:
                    continue
                if new == EMPTY_ROOT and self.is_leaf(sibling, up + 1):
                    new = sibling
                    continue
                lone = False
            # self.internal(), inlined; parent[:33] is 0x01 || left.
            node = parent[:33] + new if right else b"\x01" + new + parent[33:]
            new = sha256(node).digest()
            nodes[new] = node
            if up < limit:
                upper[new] = node
        return new

    def build(self, depth: int, lo: int, hi: int, leaf: bytes | None, leaf_hash: bytes) -> bytes:
        """Subtree at ``depth`` holding the old ``leaf`` (if any) merged with ``[lo, hi)``."""
        paths, hashes = self.paths, self.hashes
        if hi - lo == 1:  # the common case: one change meets an empty slot or one leaf
            new = hashes[lo]
            if leaf is None:
                return EMPTY_ROOT if new is None else new
            old_path = int.from_bytes(leaf[1:33], "big")
            if old_path == paths[lo]:
                return EMPTY_ROOT if new is None else new
            if new is None:
                return leaf_hash
            return self.pair(depth, paths[lo], new, old_path, leaf_hash)
        keep = [(paths[i], h) for i in range(lo, hi) if (h := hashes[i]) is not None]
        if leaf is not None:
            old_path = int.from_bytes(leaf[1:33], "big")
            at = bisect_left(paths, old_path, lo, hi)
            if at == hi or paths[at] != old_path:
                keep.append((old_path, leaf_hash))
                keep.sort()
        return self.subtree([p for p, _ in keep], [h for _, h in keep], 0, len(keep), depth)

    def subtree(self, paths: list[int], hashes: list[bytes], lo: int, hi: int, depth: int) -> bytes:
        """Fresh subtree at ``depth`` over sorted leaves ``[lo, hi)``."""
        if hi - lo < 2:
            return EMPTY_ROOT if hi == lo else hashes[lo]
        first = paths[lo]
        split = KEY_BITS - (first ^ paths[hi - 1]).bit_length()  # first level they differ
        shift = 255 - split
        mid = bisect_left(paths, ((first >> shift) | 1) << shift, lo, hi)
        left = self.subtree(paths, hashes, lo, mid, split + 1)
        right = self.subtree(paths, hashes, mid, hi, split + 1)
        return self.lift(self.internal(left, right, split), first, split, depth)

    def pair(self, depth: int, a: int, a_hash: bytes, b: int, b_hash: bytes) -> bytes:
        """Subtree at ``depth`` holding exactly the two leaves ``a`` and ``b``."""
        if a > b:
            a, a_hash, b, b_hash = b, b_hash, a, a_hash
        split = KEY_BITS - (a ^ b).bit_length()
        return self.lift(self.internal(a_hash, b_hash, split), a, split, depth)

    def lift(self, node_hash: bytes, path: int, level: int, depth: int) -> bytes:
        """Hang the subtree at ``level`` on ``path`` under one-child nodes up to ``depth``."""
        for above in range(level - 1, depth - 1, -1):
            if (path >> (255 - above)) & 1:
                node_hash = self.internal(EMPTY_ROOT, node_hash, above)
            else:
                node_hash = self.internal(node_hash, EMPTY_ROOT, above)
        return node_hash

    def internal(self, left: bytes, right: bytes, depth: int) -> bytes:
        """Hash and record the internal node ``left || right`` found at ``depth``."""
        node = b"\x01" + left + right
        node_hash = sha256(node).digest()
        self.nodes[node_hash] = node
        if depth < self.cache_limit:
            self.upper[node_hash] = node
        return node_hash

    def is_leaf(self, node_hash: bytes, depth: int) -> bool:
        node = self.nodes.get(node_hash)
        if node is None:
            node = self.read(node_hash, depth)
        return node[0] == _LEAF_TAG
