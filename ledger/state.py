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
    leaf_ref,
)
from ledger.state_proof import (
    HASH_SIZE,
    StateProof,
    bitmap_bytes,
    verify_state_proof,
)
from ledger.state_retire import Entry, Retired, retired_rows
from ledger.state_update import BatchUpdate
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


def flat_row(key: bytes, value: bytes) -> bytes:
    """A flat-table row: ``u32be(len(key)) || key || value`` (:func:`decode_flat_row`)."""
    return len(key).to_bytes(4, "big") + key + value


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
                batch.put(_LEAF + kh, flat_row(key, value))
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
        update = BatchUpdate(entries, self, at)
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
