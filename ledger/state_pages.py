"""Pages: how the binary state tree is laid out in the store (store format 3).

The tree's hashing and proofs are binary (``ledger.state_proof``); only its storage is
wider. A *page* holds the subtree below one internal node at a depth that is a multiple
of :data:`PAGE_LEVELS` (4): its internal nodes down to four levels (at most 15), inline,
the leaves that hang from them as ``(key_hash, value_hash)``, and references to the
child pages below its fourth level (at most 16). It is filed under its root node's
binary hash, so a walk from the root to depth ``d`` reads about ``d / 4`` rows instead of
``d``, and an update finds the key hash of the leaf it meets without reading that leaf.
Leaves keep their own rows, for their values. Both live in ``STATE_NODE``; the first
byte says which:

* leaf: ``0x00 || key_hash || value`` (hash: ``SHA-256(0x00 || key_hash || SHA-256(value))``);
* page: ``0x02`` followed by the page's root in pre-order, each position one of
  ``0x00`` (empty), ``0x01`` left right (an internal node, only above the page's fourth
  level), ``0x02 || hash`` (a child page, only at the fourth level),
  ``0x03 || key_hash || value_hash`` (a leaf).

The hashes of the inline nodes are not stored: decoding recomputes them (up to 31
SHA-256 of 65 bytes), so a page is always checked against the hash it is filed under,
whatever ``verify_nodes`` says.

Rows are *filed by height* (store format 3, docs/store-format-3.md): a page or leaf
written by the block at height ``h`` is stored under ``u64be(h) || hash``, so each
block's rows sort after the older ones and LevelDB sinks them without rewriting the
tables below. A page therefore says where each row it refers to is filed: in the stored
form a child page is ``0x02 || u64be(h) || hash`` and a leaf
``0x03 || key_hash || value_hash || u64be(h)``. The heights are not hashed: the tree's
hashes, roots and proofs are those of the *wire form* above (what snapshots carry, and
what format 2 stored), and a damaged height can only send a walk to a row that is not
there, never to other content (every row read is checked against its hash).

Decoded, a page is a dict from node hash to node: ``0x01 || left || right`` for its
internal nodes and ``0x03 || key_hash || value_hash || u64be(h)`` (a *leaf reference*)
for its leaves. An internal node on the page's fourth level, whose children are child
pages, carries their heights too: ``0x01 || left || right || u64be(h_left) ||
u64be(h_right)`` (``ff`` × 8 for a child that is a leaf or empty: no height is). Child pages are
not in it: they are read (and checked) when a walk gets there. Decoded from the wire
form, nodes and references have no heights.
"""

from __future__ import annotations

from typing import Final

from ledger.digest import sha256_digest
from ledger.errors import CorruptionError
from ledger.page_codec import read_page_row, write_page
from ledger.state_proof import EMPTY_ROOT as _PROOF_EMPTY_ROOT
from ledger.state_proof import HASH_SIZE

PAGE_LEVELS: Final = 4
PAGE_MASK: Final = PAGE_LEVELS - 1  # depth & PAGE_MASK == 0: a page starts at this depth
LEAF_TAG: Final = 0  # a leaf's row
NODE_TAG: Final = 1  # an internal node
PAGE_TAG: Final = 2  # a page's row
LEAF_REF_TAG: Final = 3  # a leaf in a decoded page: 0x03 || key_hash || value_hash
HEIGHT_SIZE: Final = 8
NO_HEIGHT: Final = b"\xff" * HEIGHT_SIZE  # a fourth-level node's child that is not a page
NODE_SIZE: Final = 1 + 2 * HASH_SIZE  # an internal node, as hashed
EMPTY_ROOT: Final = _PROOF_EMPTY_ROOT
"""The hash of every empty subtree (:mod:`ledger.state_proof`'s), bound here as a
constant: compiled, a ``Final`` name of this module is a C variable, while a name
imported from a module that is not compiled is a look-up in this one's dict at each use."""

Page = dict[bytes, bytes]


def leaf_ref(row: bytes) -> bytes:
    """The reference form of a leaf's row: ``0x03 || key_hash || SHA-256(value)``."""
    return b"\x03" + row[1:33] + sha256_digest(row[33:])


def encode_page(
    root: bytes,
    nodes: Page,
    *,
    decoded: bool = True,
    filed: bool = True,
    old: Page | None = None,
) -> tuple[bytes, Page]:
    """The stored row of the page whose root is the internal node ``root``, and its
    decoded form (empty unless ``decoded``: the page cache keeps only high pages).
    ``nodes`` holds the page's nodes by hash, in their decoded stored form (internal
    ones and leaves as references, both with the heights of what they refer to), or
    ``old`` does: the decoded page this one replaces, looked in first (an update's new
    nodes are few of a page's, and its dictionary of them is large). A node below the
    fourth level is a child page where its parent says it is filed, or a leaf. Not
    ``filed``: the wire form, without heights.

    It runs for every page an update writes (about two per key changed), so its
    per-node cost is most of an update's: :mod:`ledger.page_codec` (and its C twin).
    """
    node = nodes.get(root)
    if node is None:
        raise CorruptionError(f"state node {root.hex()} of a new page is unknown")
    if node[0] != NODE_TAG:
        raise ValueError("a page's root is an internal node")
    return write_page(root, nodes, {} if old is None else old, decoded, filed)


def decode_page(node_hash: bytes, row: bytes) -> Page:
    """The page stored under ``node_hash`` (stored form), each inline node rehashed: a
    row that is not a well-formed page whose root hashes to ``node_hash`` raises
    :class:`CorruptionError`."""
    root, page = read_page_row(row, node_hash, True, b"")
    if root != node_hash:
        raise CorruptionError(f"state page {node_hash.hex()} does not match its hash")
    return page


def read_page(row: bytes, name: str = "received") -> tuple[bytes, Page]:
    """(root hash, decoded page) of a page row in the wire form whose hash is not known
    beforehand (a snapshot chunk's: ``ledger.state_snapshot``; format 2's stored rows),
    every inline node rehashed; a row that is not a well-formed page raises
    :class:`CorruptionError` naming ``name``. Its nodes carry no heights."""
    return read_page_row(row, name, False, b"")


def wire_page(page_hash: bytes, row: bytes) -> tuple[bytes, Page]:
    """(wire form, decoded page) of the stored page ``row`` filed under ``page_hash``:
    the row without the heights of what it refers to (what a snapshot carries)."""
    page = decode_page(page_hash, row)
    return encode_page(page_hash, page, decoded=False, filed=False)[0], page


def file_page(row: bytes, height: int, name: str = "received") -> tuple[bytes, bytes, Page]:
    """(hash, stored row, decoded page) of the wire-form page ``row`` with every row it
    refers to filed at ``height`` (a snapshot's pages, all filed at its height)."""
    root, page = read_page_row(row, name, False, height.to_bytes(HEIGHT_SIZE, "big"))
    stored, new_page = encode_page(root, page)
    return root, stored, new_page


def check_leaf(node_hash: bytes, row: bytes, rehash: bool) -> bytes:
    """``row`` if it is a leaf (filed under its hash, when ``rehash``); else CorruptionError."""
    if row[:1] != b"\x00" or len(row) < 1 + HASH_SIZE:
        raise CorruptionError(f"state leaf {node_hash.hex()} is malformed")
    if rehash and sha256_digest(row[:33] + sha256_digest(row[33:])) != node_hash:
        raise CorruptionError(f"state leaf {node_hash.hex()} does not match its hash")
    return row


# --- the page cache -----------------------------------------------------------------------

PAGE_OVERHEAD: Final = 232
"""Bytes a decoded page costs in memory besides its entries (the dict, its key)."""
ENTRY_BYTES: Final = 200
"""Bytes one entry of a decoded page costs (its hash and node as bytes objects, the slot)."""
# 15 internal nodes (child pages: no entry)
FULL_PAGE_BYTES: Final = PAGE_OVERHEAD + ENTRY_BYTES * 15


def page_bytes(page: Page) -> int:
    """Estimated memory of a decoded page (measured with tracemalloc: docs/formats-state.md)."""
    return PAGE_OVERHEAD + ENTRY_BYTES * len(page)


class NodeCache:
    """A cache of decoded pages by where they are filed (``u64be(height) || root hash``,
    their row's key in the table), shared between trees, bounded in bytes.

    Two generations of plain dicts: pages go into ``young``; when it holds half the
    budget it becomes ``old`` and the previous ``old`` is dropped; a hit in ``old`` moves
    the page back to ``young``. That keeps what was used in the last half budget of
    insertions at the cost of dict operations only. It holds at most ``max_bytes`` of
    pages (by :func:`page_bytes`), plus those of the last apply while it lasts.

    Only pages above :attr:`depth_limit` are admitted: every walk passes through them,
    and they are what random updates and proofs reuse; deep pages, seldom read twice,
    would only evict them. Sharing between the trees of one store is safe: a row's key
    names one row (a state-synced store files the same page at another height than an
    executing one, so a cache is never shared between stores of different histories).
    """

    __slots__ = ("depth_limit", "max_bytes", "old", "young", "young_bytes")

    def __init__(self, max_bytes: int = 32 * 1024 * 1024) -> None:
        self.max_bytes = max_bytes
        self.depth_limit = 0
        """Pages whose root is at a depth below this are cached (a multiple of 4)."""
        fit, level_pages = 0, 1
        while (fit + level_pages) * FULL_PAGE_BYTES * 2 <= max_bytes:
            fit += level_pages
            level_pages *= 16
            self.depth_limit += PAGE_LEVELS
        self.young: dict[bytes, Page] = {}
        self.old: dict[bytes, Page] = {}
        self.young_bytes = 0

    def get(self, page_hash: bytes) -> Page | None:
        page = self.young.get(page_hash)
        if page is None:
            page = self.old.get(page_hash)
            if page is not None:
                self.add(page_hash, page)
        return page

    def add(self, page_hash: bytes, page: Page) -> None:
        if page_hash not in self.young:
            self.young[page_hash] = page
            self.young_bytes += page_bytes(page)
            if 2 * self.young_bytes >= self.max_bytes:
                self.old, self.young, self.young_bytes = self.young, {}, 0

    def discard(self, page_hash: bytes) -> None:
        """Forget a page (one an update replaced: the tree no longer reaches it, and
        kept, superseded versions would push out the live ones)."""
        page = self.young.pop(page_hash, None)
        if page is not None:
            self.young_bytes -= page_bytes(page)
        self.old.pop(page_hash, None)

    def __len__(self) -> int:
        return len(self.young.keys() | self.old.keys())

    def size_bytes(self) -> int:
        """Estimated bytes held (both generations)."""
        return sum(page_bytes(p) for p in self.young.values()) + sum(
            page_bytes(p) for k, p in self.old.items() if k not in self.young
        )
