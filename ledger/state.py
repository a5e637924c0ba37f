"""The authenticated state: a compact sparse Merkle tree over a KV store.

Each state key lives at the 256-bit path ``SHA-256(key)``. A subtree with one entry is
stored as that entry's leaf, so a tree of n random keys is about ``log2(n)`` deep and
one update rehashes about that many nodes, shared between the keys of a batch. The
hashing (see :mod:`ledger.state_proof` and ``docs/formats-state.md``)::

    leaf     = SHA-256(0x00 || key_hash || SHA-256(value))
    internal = SHA-256(0x01 || left || right)
    empty    = 32 zero bytes (EMPTY_ROOT)

Storage (store format 3; the tables in :mod:`ledger.storage.keys`, fixed binary
layouts, no msgpack):

* ``STATE_NODE + u64be(h) + hash -> page or leaf``, filed under the height of the block
  that wrote it (genesis: 0), never deleted unless pruned, so every historic root keeps
  answering. A page holds four binary levels below a node at a depth divisible by 4
  (:mod:`ledger.state_pages`), so a walk reads a quarter of the rows a node-per-row
  layout needs, and names the height each row it refers to is filed at; a leaf is
  ``0x00 || key_hash || value``. A row is new (filed at the block's height) exactly
  when its hash is not in the previous state's tree; every other row of the new tree is
  the old tree's, where it was filed. So the rows depend only on the blocks, and a row
  that leaves the tree never comes back (the same content later is a new row).
* ``STATE_ROOT + hash -> u64be(h)``: where the row of each state root is filed (a tree
  is opened at a root hash from a header).
* ``STATE_LEAF + key_hash -> u32be(len(key)) || key || value``: the current value of
  every key (the flat table), kept in step with the latest root by :meth:`StateTree.apply`,
  so that :meth:`StateTree.get` is one read instead of a walk.

Reading one's own writes: :meth:`StateTree.apply` only fills the given batch. To read
the new state before that batch is committed, give the tree an
:class:`~ledger.storage.overlay.OverlayStore` and apply into ``overlay.batch``; to
compute a proposal's root and forget it, drop the overlay.

Trust in the store: every page read is rehashed (decoding computes its inline nodes'
and leaves' hashes anyway) and refused (:class:`CorruptionError`) unless its root
matches the hash it is filed under; a leaf row read for its value is checked against
the ``(key_hash, value_hash)`` its page holds. So every row a walk or an update reads is
checked, whatever ``verify_nodes`` says. The one row checked only with
``verify_nodes=True`` (audits) is the leaf that is the whole tree's root (a state of one
key), read without a page above it; with it, the audit's claim "every node read was
rehashed" holds without exception.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Mapping
from typing import Final

from mypy_extensions import mypyc_attr

from ledger.digest import sha256_digest
from ledger.errors import CorruptionError
from ledger.state_pages import (
    EMPTY_ROOT,
    NO_HEIGHT,
    NODE_TAG,
    PAGE_MASK,
    NodeCache,
    Page,
    check_leaf,
    decode_page,
    encode_page,
    leaf_ref,
)
from ledger.state_proof import (
    HASH_SIZE,
    KEY_BITS,
    StateProof,
    bitmap_bytes,
    verify_state_proof,
)
from ledger.state_retire import Entry, Retired, retired_rows
from ledger.storage import keys
from ledger.storage.protocol import KVReader, WriteBatch

__all__ = [
    "EMPTY_ROOT",
    "NodeCache",
    "StateProof",
    "StateTree",
    "verify_state_proof",
]

_NODE: Final = keys.STATE_NODE
_LEAF: Final = keys.STATE_LEAF
_ROOT: Final = keys.STATE_ROOT


def flat_key(key_hash: bytes) -> bytes:
    """Storage key of the flat-table row of the state key with this hash."""
    return _LEAF + key_hash


def root_filing(store: KVReader, root: bytes) -> bytes:
    """The 8-byte height the row of the state root ``root`` is filed at (its
    ``STATE_ROOT`` row); CorruptionError if the store has none."""
    at = store.get(_ROOT + root)
    if at is None or len(at) != 8:
        raise CorruptionError(f"state root {root.hex()} is missing from the store")
    return at


def decode_flat_row(row: bytes, key: bytes) -> bytes:
    """The value in a flat-table row, checking that the row is ``key``'s."""
    n = int.from_bytes(row[:4], "big")
    if len(row) < 4 + n or row[4 : 4 + n] != key:
        raise CorruptionError(f"flat state row for key {key.hex()} holds another key")
    return row[4 + n :]


@mypyc_attr(allow_interpreted_subclasses=True)  # the offline audit's SegmentTree reads
class StateTree:  # through its own layers (node/audit_segments.py)
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
        self._root_at: bytes | None = None  # where the root's row is filed, once read

    def root_filed_at(self, root: bytes | None = None) -> bytes:
        """The 8-byte height the row of ``root`` (default :attr:`root`) is filed at."""
        if root is None or root == self.root:
            if self._root_at is None:
                self._root_at = root_filing(self.store, self.root)
            return self._root_at
        return root_filing(self.store, root)

    # --- reads -----------------------------------------------------------------------------

    def get(self, key: bytes) -> bytes | None:
        """Current value of ``key`` from the flat table (the store's latest applied root).

        The flat table follows the latest :meth:`apply` written to ``store``, not
        :attr:`root`; for any other root use :meth:`get_at`.
        """
        row = self.store.get(_LEAF + sha256_digest(key))
        return None if row is None else decode_flat_row(row, key)

    def get_at(self, root: bytes, key: bytes) -> bytes | None:
        """Value of ``key`` under ``root`` (any root whose nodes are stored), by walking.

        An unknown root raises :class:`CorruptionError` (its node is missing): check that
        a root a client names is a certified one before asking.
        """
        _check_root(root)
        kh = sha256_digest(key)
        _, _, leaf_hash, leaf = self._walk(root, kh, None)
        if leaf is not None and leaf[1:33] == kh:
            return self._value(leaf_hash, leaf)
        return None

    def prove(self, key: bytes, root: bytes | None = None) -> StateProof:
        """Proof of ``key``'s value, or of its absence, under ``root`` (default: :attr:`root`)."""
        root = self.root if root is None else _check_root(root)
        kh = sha256_digest(key)
        siblings: list[bytes] = []
        depth, bits, leaf_hash, leaf = self._walk(root, kh, siblings)
        bitmap = bitmap_bytes(bits, depth)
        if leaf is None:
            return StateProof(key, None, depth, bitmap, tuple(siblings))
        if leaf[1:33] == kh:
            value = self._value(leaf_hash, leaf)
            return StateProof(key, value, depth, bitmap, tuple(siblings))
        other_value_hash = leaf[33:65]  # a leaf met on a walk is a reference
        return StateProof(key, None, depth, bitmap, tuple(siblings), leaf[1:33], other_value_hash)

    def _walk(
        self, root: bytes, kh: bytes, siblings: list[bytes] | None
    ) -> tuple[int, int, bytes, bytes | None]:
        """Follow ``kh``'s path to its end: (depth, sibling bits, leaf hash, the leaf's
        reference (where its row is filed included), or None where the path ends empty).

        Non-empty siblings are appended to ``siblings`` when given; bit ``255 - level``
        of the returned int is set for each of them.
        """
        path = int.from_bytes(kh, "big")
        if root == EMPTY_ROOT:
            return 0, 0, EMPTY_ROOT, None
        page: Page = {}  # the page the walk is in: one path needs no other
        at = self.root_filed_at(root)  # where the next page's row is filed
        node_hash = root
        depth = bits = 0
        while node_hash != EMPTY_ROOT:
            node = page.get(node_hash)
            if node is None:
                page = self._page(node_hash, depth, at)
                node = page[node_hash]
            if node[0] != NODE_TAG:
                return depth, bits, node_hash, node
            right = (path >> (255 - depth)) & 1
            if right:
                node_hash, sibling = node[33:65], node[1:33]
            else:
                node_hash, sibling = node[1:33], node[33:65]
            if depth & PAGE_MASK == PAGE_MASK:  # the next node starts a page: where it is
                at = node[73:81] if right else node[65:73]
            if siblings is not None and sibling != EMPTY_ROOT:
                siblings.append(sibling)
                bits |= 1 << (255 - depth)
            depth += 1
        return depth, bits, EMPTY_ROOT, None

    def _page(self, node_hash: bytes, depth: int, at: bytes) -> Page:
        """The page starting at ``node_hash`` (``depth`` divisible by 4), filed at ``at``:
        cached, or read."""
        if depth & PAGE_MASK or len(at) != 8 or at == NO_HEIGHT:
            raise CorruptionError(
                f"state node {node_hash.hex()} at depth {depth} is in none of the pages read"
            )
        filing = at + node_hash
        page = self.cache.get(filing)
        return self._load(filing, depth) if page is None else page

    def _load(self, filing: bytes, depth: int) -> Page:
        """Read a page (or a leaf) missing from the cache, check it, cache it if high up."""
        row = self.store.get(_NODE + filing)
        node_hash = filing[8:]
        if row is None:
            raise CorruptionError(f"state node {node_hash.hex()} is missing from the store")
        if row[:1] == b"\x00":  # a tree of one key: the root is its leaf
            ref = leaf_ref(check_leaf(node_hash, row, self.verify_nodes))
            return {node_hash: ref + filing[:8]}
        page = decode_page(node_hash, row)
        if depth < self.cache.depth_limit:
            self.cache.add(filing, page)
        return page

    def _value(self, leaf_hash: bytes, leaf: bytes) -> bytes:
        """The value of a leaf met on a walk (as its reference): read from its row, where
        the reference says it is filed, and checked against the reference's key and value
        hash (the page that held the reference was checked against its own hash when it
        was read)."""
        row = self.store.get(_NODE + leaf[65:73] + leaf_hash)
        if row is None:
            raise CorruptionError(f"state leaf {leaf_hash.hex()} is missing from the store")
        row = check_leaf(leaf_hash, row, False)
        if row[1:33] != leaf[1:33] or sha256_digest(row[33:]) != leaf[33:65]:
            raise CorruptionError(f"state leaf {leaf_hash.hex()} does not match its hash")
        return row[33:]

    # --- updates ---------------------------------------------------------------------------

    def apply(
        self,
        changes: Mapping[bytes, bytes | None],
        batch: WriteBatch,
        retired: list[Retired] | None = None,
        *,
        height: int,
    ) -> bytes:
        """Apply sets (bytes) and deletes (None) at once, as the block at ``height``;
        return and adopt the new root.

        Every new page, leaf and flat-table row goes into ``batch`` (the store is not
        written), the new rows filed at ``height``. The root depends only on the
        resulting key->value map. Nothing is added to ``batch`` if a stored node turns
        out missing or corrupt. ``retired``, when given, receives every stored row (page
        or leaf) that the old root's tree holds and the new one does not: what a pruning
        node may delete once no state it keeps needs it (:mod:`ledger.state_prune`).
        """
        if not changes:
            return self.root
        entries = sorted(_prepare(key, value) for key, value in changes.items())
        new_root = self.apply_entries(entries, batch, retired, height=height)
        for kh, key, value, _leaf_hash, _ref in entries:
            if value is None:
                batch.delete(_LEAF + kh)
            else:
                batch.put(_LEAF + kh, len(key).to_bytes(4, "big") + key + value)
        return new_root

    def apply_entries(
        self,
        entries: list[Entry],
        batch: WriteBatch,
        retired: list[Retired] | None = None,
        *,
        height: int,
    ) -> bytes:
        """:meth:`apply` of changes already prepared and sorted by key hash, without the
        flat table (store migration refiles old states by key hash: ledger/state_refile.py)."""
        at = height.to_bytes(8, "big")
        update = _BatchUpdate(entries, self, at)
        new_root = update.run(self.root)
        if retired is not None:
            retired += retired_rows(self.root, new_root, update, entries)
        pages, leaves = update.pages()
        put = batch.put
        for kh, value, leaf_hash in leaves:
            put(_NODE + at + leaf_hash, b"\x00" + kh + value)
        cache, limit, filed = self.cache, self.cache.depth_limit, update.filed
        for node_hash in update.places.keys() - pages.keys():
            cache.discard(filed[node_hash] + node_hash)  # a changed key's walk entered it
        for node_hash, (row, page, depth) in pages.items():
            put(_NODE + at + node_hash, row)
            if depth < limit:
                cache.add(at + node_hash, page)
        if new_root != self.root:
            self._root_at = None
            if new_root != EMPTY_ROOT:
                self._root_at = update.filed_at(new_root)
                put(_ROOT + new_root, self._root_at)
        self.root = new_root
        return new_root


def _check_root(root: bytes) -> bytes:
    if type(root) is not bytes or len(root) != HASH_SIZE:
        raise ValueError(f"a state root is {HASH_SIZE} bytes")
    return root


def hashed_entry(kh: bytes, value: bytes | None, key: bytes = b"") -> Entry:
    """(key hash, key, value, leaf hash, leaf reference; both None for a delete): the
    change of the key whose hash is ``kh`` (the key itself may be unknown: b"")."""
    if value is None:
        return kh, key, None, None, None
    ref = b"\x03" + kh + sha256_digest(value)
    return kh, key, value, sha256_digest(b"\x00" + ref[1:]), ref


def _prepare(key: bytes, value: bytes | None) -> Entry:
    """:func:`hashed_entry` of ``key``, type-checked."""
    if type(key) is not bytes:
        raise TypeError(f"state keys are bytes, got {type(key).__name__}")
    if value is not None and type(value) is not bytes:
        raise TypeError(f"state values are bytes or None, got {type(value).__name__}")
    return hashed_entry(sha256_digest(key), value, key)


class _BatchUpdate:
    """One :meth:`StateTree.apply`: sorted changes in, a new root and its new nodes out.

    The changes are split by bit down the old tree, so each node above several changed
    keys is read and rehashed once. Below an old leaf or empty subtree the new
    subtree is built directly from the surviving entries. Every page the walk reads
    joins :attr:`known`, so the old nodes a new page keeps are at hand to write it.

    Where rows are filed (store format 3) travels with the nodes: a page's row is found
    through the fourth-level node above it (``node[65:73]`` for its left child,
    ``node[73:81]`` for its right), a leaf's through its reference (``ref[65:73]``).
    Every new row is filed at :attr:`at`; every row the old tree holds keeps its place.
    """

    __slots__ = (
        "at",
        "entries",
        "fetched",
        "filed",
        "hashes",
        "known",
        "nodes",
        "paths",
        "places",
        "roots",
        "tree",
    )

    def __init__(self, entries: list[Entry], tree: StateTree, at: bytes) -> None:
        self.paths = [int.from_bytes(entry[0], "big") for entry in entries]
        self.hashes = [entry[3] for entry in entries]
        self.tree = tree
        self.at = at
        self.known: Page = {}
        """The nodes of every old page read, by hash."""
        self.fetched: dict[bytes, Page] = {}
        """Every old page read, by its root hash (what :func:`retired_rows` walks)."""
        self.filed: dict[bytes, bytes] = {}
        """Where the row of each old page read is filed."""
        self.places: dict[bytes, tuple[int, int]] = {}
        """Depth and a path (as an int) of the fetched pages a changed key's walk entered."""
        self.nodes: dict[bytes, bytes] = {}
        """Every node created, by hash (all of them are in the new tree); leaves as
        references without a height (``0x03 || key_hash || value_hash``)."""
        self.roots: dict[bytes, int] = {}
        """The created internal nodes that start a page, and their depths."""
        for _kh, _key, _value, leaf_hash, ref in entries:
            if leaf_hash is not None and ref is not None:
                self.nodes[leaf_hash] = ref
        self.entries = entries

    def run(self, root: bytes) -> bytes:
        at = self.tree.root_filed_at() if root != EMPTY_ROOT else NO_HEIGHT
        return self.update(root, 0, 0, len(self.paths), at)

    def read(self, node_hash: bytes, depth: int, at: bytes, path: int | None = None) -> bytes:
        """An old node: from a page already read, or the one it starts (filed at ``at``)."""
        node = self.known.get(node_hash)
        return self.fetch(node_hash, depth, at, path) if node is None else node

    def fetch(self, node_hash: bytes, depth: int, at: bytes, path: int | None = None) -> bytes:
        """The node at the top of a page (``depth`` divisible by 4, its row filed at
        ``at``): its page, from the cache or the store, joins :attr:`known`, where the
        walk finds the levels below. ``path``: a changed key's path through it, when the
        walk follows one."""
        page = self.tree._page(node_hash, depth, at)
        self.known.update(page)
        self.fetched[node_hash] = page
        self.filed[node_hash] = at
        if path is not None:
            self.places[node_hash] = (depth, path)
        return page[node_hash]

    def filed_at(self, node_hash: bytes) -> bytes:
        """Where the row of a node of the new tree is filed (after :meth:`pages`): a
        page or leaf made by this update at :attr:`at`, an old one where it was."""
        if node_hash in self.roots:
            return self.at
        node = self.known.get(node_hash)
        if node is not None and node[0] != NODE_TAG:
            return node[65:73]
        return self.filed[node_hash]

    def pages(
        self,
    ) -> tuple[dict[bytes, tuple[bytes, Page, int]], list[tuple[bytes, bytes, bytes]]]:
        """Every new page: root hash -> (stored row, decoded page, depth), the decoded
        page empty for pages too deep for the cache (nothing else reads it); and every
        new leaf, (key hash, value, leaf hash). New rows are filed at :attr:`at`; a leaf
        the old tree holds already (a key set to its value) keeps its row."""
        known, limit, at = self.known, self.tree.cache.depth_limit, self.at
        leaves: list[tuple[bytes, bytes, bytes]] = []
        for kh, _key, value, leaf_hash, ref in self.entries:
            if leaf_hash is None:
                continue
            old = known.get(leaf_hash)  # a key set to its value keeps its row
            if old is None and value is not None and ref is not None:
                leaves.append((kh, value, leaf_hash))
                self.nodes[leaf_hash] = ref + at
            elif old is not None:
                self.nodes[leaf_hash] = old
        known.update(self.nodes)  # a hash names one node: new ones are not old ones
        pages = {
            h: (*encode_page(h, known, decoded=depth < limit), depth)
            for h, depth in self.roots.items()
        }
        return pages, leaves

    def update(self, node_hash: bytes, depth: int, lo: int, hi: int, at: bytes) -> bytes:
        """New hash of the subtree ``node_hash`` at ``depth`` (filed at ``at`` if it
        starts a page) after changes ``[lo, hi)``."""
        if hi - lo == 1:
            return self.update_one(node_hash, depth, lo, at)
        if node_hash == EMPTY_ROOT:
            return self.build(depth, lo, hi, None, EMPTY_ROOT)
        node = self.read(node_hash, depth, at, self.paths[lo])
        if node[0] != NODE_TAG:
            return self.build(depth, lo, hi, node, node_hash)
        shift = 255 - depth
        mid = bisect_left(self.paths, ((self.paths[lo] >> shift) | 1) << shift, lo, hi)
        left, right = node[1:33], node[33:65]
        left_at, right_at = node[65:73], node[73:81]
        new_left = self.update(left, depth + 1, lo, mid, left_at) if mid > lo else left
        new_right = self.update(right, depth + 1, mid, hi, right_at) if hi > mid else right
        if new_left == left and new_right == right:
            return node_hash
        if new_left == EMPTY_ROOT:
            if new_right == EMPTY_ROOT or self.is_leaf(new_right, depth + 1, right_at):
                return new_right  # compaction: a lone leaf moves up
        elif new_right == EMPTY_ROOT and self.is_leaf(new_left, depth + 1, left_at):
            return new_left
        return self.internal(new_left, new_right, depth, node)

    def update_one(self, node_hash: bytes, depth: int, i: int, at: bytes) -> bytes:
        """:meth:`update` for the single change ``i``: walk down, then rehash upwards.

        Most of a batch's work happens below the levels its keys share, one key per
        subtree; a loop is much cheaper there than splitting a range at every level.
        """
        path = self.paths[i]
        known = self.known  # (not self.fetch bound to a local: compiled, a direct call is cheaper)
        above: list[bytes] = []  # the internal nodes passed on the way down
        old, level = node_hash, depth
        while old != EMPTY_ROOT:
            node = known.get(old)  # self.read(), inlined: the hottest lookup of an update
            if node is None:
                node = self.fetch(old, level, at, path)
            if node[0] != NODE_TAG:
                new = self.build(level, i, i + 1, node, old)
                break
            above.append(node)
            right = (path >> (255 - level)) & 1
            old = node[33:65] if right else node[1:33]
            if level & PAGE_MASK == PAGE_MASK:  # the next node starts a page: where it is
                at = node[73:81] if right else node[65:73]
            level += 1
        else:
            new = self.hashes[i] or EMPTY_ROOT
        if new == old:
            return node_hash
        lone = new == EMPTY_ROOT or self.is_leaf(new, level, NO_HEIGHT)  # may still move up
        nodes, roots = self.nodes, self.roots
        for up in range(level - 1, depth - 1, -1):
            parent = above.pop()
            right = (path >> (255 - up)) & 1
            if lone:
                sibling = parent[1:33] if right else parent[33:65]
                if sibling == EMPTY_ROOT:
                    continue
                sibling_at = parent[65:73] if right else parent[73:81]
                if new == EMPTY_ROOT and self.is_leaf(sibling, up + 1, sibling_at):
                    new = sibling
                    continue
                lone = False
            # self.internal(), inlined; parent[:33] is 0x01 || left.
            node = parent[:33] + new if right else b"\x01" + new + parent[33:65]
            digest = sha256_digest(node)
            if up & PAGE_MASK == PAGE_MASK:  # its children start pages: where they are filed
                new_at = self.at if new in roots else NO_HEIGHT
                node += parent[65:73] + new_at if right else new_at + parent[73:81]
            nodes[digest] = node
            new = digest
            if not up & PAGE_MASK:
                roots[new] = up
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

    def internal(self, left: bytes, right: bytes, depth: int, old: bytes = b"") -> bytes:
        """Hash and record the internal node ``left || right`` found at ``depth``, where
        the old tree had ``old`` (an internal node) or nothing."""
        node = b"\x01" + left + right
        node_hash = sha256_digest(node)
        if depth & PAGE_MASK == PAGE_MASK:  # its children start pages: where they are filed
            node += self.child_at(left, old[1:33], old[65:73])
            node += self.child_at(right, old[33:65], old[73:81])
        self.nodes[node_hash] = node
        if not depth & PAGE_MASK:
            self.roots[node_hash] = depth
        return node_hash

    def child_at(self, child: bytes, old_child: bytes, old_at: bytes) -> bytes:
        """Where the row of a fourth-level node's ``child`` is filed: here if this update
        made it, where it was if it is the old node's child on that side."""
        if child in self.roots:
            return self.at
        return old_at if child == old_child else NO_HEIGHT

    def is_leaf(self, node_hash: bytes, depth: int, at: bytes) -> bool:
        """Whether a node of the new tree is a leaf (``at``: where its row is filed, if
        it is an old page not read yet)."""
        node = self.nodes.get(node_hash)
        if node is None:
            node = self.read(node_hash, depth, at)
        return node[0] != NODE_TAG
