"""One update of the state tree (:meth:`ledger.state.StateTree.apply`): sorted changes
in, a new root and the rows of its new pages and leaves out (the tree's format and its
invariants: ``ledger/state.py`` and ``ledger/state_pages.py``).

Compiled in the same mypyc group as ``ledger/state.py``, so the calls between them are
direct C calls, as when this class lived there.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import TYPE_CHECKING

from ledger.digest import sha256_digest
from ledger.state_pages import (
    EMPTY_ROOT,
    NO_HEIGHT,
    NODE_SIZE,
    NODE_TAG,
    PAGE_MASK,
    Page,
    encode_page,
)
from ledger.state_proof import KEY_BITS
from ledger.state_retire import Entry

if TYPE_CHECKING:
    from ledger.state import StateTree


class BatchUpdate:
    """One :meth:`StateTree.apply`: sorted changes in, a new root and its new nodes out.

    The changes are split by bit down the old tree, so each node above several changed
    keys is read and rehashed once. Below an old leaf or empty subtree the new
    subtree is built directly from the surviving entries.

    Old nodes are looked up in the page that holds them, never in one dictionary of
    every page read: a walk carries the page it is in (a node's children are in its
    page, or start pages of their own below its fourth level), and a new page is
    written from its new nodes and the old page at its place (:attr:`olds`). An old
    leaf that moves (a lone leaf rising after a delete, or one a new subtree takes in)
    is copied into :attr:`nodes`, as is one whose key was set to its value. A merged
    dictionary of some 190,000 nodes a block cost more to fill, search and free than
    the update's hashing (docs/performance.md, "Nodes looked up in their own page").

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
        "keys",
        "nodes",
        "olds",
        "paths",
        "places",
        "roots",
        "tree",
    )

    def __init__(self, entries: list[Entry], tree: StateTree, at: bytes) -> None:
        self.keys = [entry[0] for entry in entries]
        """Each change's key hash, whose bits are its path (bit ``d`` = the side at depth ``d``)."""
        self.paths = [int.from_bytes(key, "big") for key in self.keys]
        self.hashes = [entry[3] for entry in entries]
        self.tree = tree
        self.at = at
        self.fetched: dict[bytes, Page] = {}
        """Every old page read, by its root hash (what :func:`retired_rows` walks)."""
        self.filed: dict[bytes, bytes] = {}
        """Where the row of each old page read is filed."""
        self.places: dict[bytes, tuple[int, int]] = {}
        """Depth and a path (as an int) of the fetched pages a changed key's walk entered."""
        self.nodes: dict[bytes, bytes] = {}
        """Every node created, by hash (all of them are in the new tree); leaves as
        references without a height (``0x03 || key_hash || value_hash``), except old
        leaves the new tree keeps elsewhere or unchanged, as the old page held them."""
        self.roots: dict[bytes, int] = {}
        """The created internal nodes that start a page, and their depths."""
        self.olds: dict[bytes, Page] = {}
        """The old page at the place of each created page that replaces one."""
        for _kh, _key, _value, leaf_hash, ref in entries:
            if leaf_hash is not None and ref is not None:
                self.nodes[leaf_hash] = ref
        self.entries = entries

    def run(self, root: bytes) -> bytes:
        at = self.tree.root_filed_at() if root != EMPTY_ROOT else NO_HEIGHT
        return self.update(root, 0, 0, len(self.paths), at, {})

    def page_of(self, node_hash: bytes, depth: int, at: bytes, page: Page, path: int = -1) -> Page:
        """The old page that holds ``node_hash`` at ``depth``: ``page`` (its parent's)
        if it is there, else the one it starts (:meth:`fetch`)."""
        return page if node_hash in page else self.fetch(node_hash, depth, at, path)

    def fetch(self, node_hash: bytes, depth: int, at: bytes, path: int = -1) -> Page:
        """The old page ``node_hash`` starts (``depth`` divisible by 4, its row filed at
        ``at``): one already read, or from the cache or the store. ``path``: a changed
        key's path through it, when the walk follows one."""
        page = self.fetched.get(node_hash)
        if page is not None and not depth & PAGE_MASK:
            return page
        page = self.tree._page(node_hash, depth, at)  # refuses a depth that starts no page
        self.fetched[node_hash] = page
        self.filed[node_hash] = at
        if path >= 0:
            self.places[node_hash] = (depth, path)
        return page

    def old_nodes(self) -> Page:
        """Every node of the old pages read, by hash (for :func:`retired_rows`)."""
        merged: Page = {}
        for page in self.fetched.values():
            merged.update(page)
        return merged

    def filed_at(self, node_hash: bytes) -> bytes:
        """Where the row of a node of the new tree is filed (after :meth:`pages`): a
        page or leaf made by this update at :attr:`at`, an old one where it was."""
        if node_hash in self.roots:
            return self.at
        node = self.nodes.get(node_hash)
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
        nodes, limit, at, olds = self.nodes, self.tree.cache.depth_limit, self.at, self.olds
        leaves: list[tuple[bytes, bytes, bytes]] = []
        for kh, _key, value, leaf_hash, ref in self.entries:
            if leaf_hash is None or value is None or ref is None:
                continue
            if len(nodes[leaf_hash]) == NODE_SIZE:  # not an old leaf kept (that says where)
                leaves.append((kh, value, leaf_hash))
                nodes[leaf_hash] = ref + at
        pages = {
            h: (*encode_page(h, nodes, decoded=depth < limit, old=olds.get(h)), depth)
            for h, depth in self.roots.items()
        }
        return pages, leaves

    def update(
        self, node_hash: bytes, depth: int, lo: int, hi: int, at: bytes, page: Page
    ) -> bytes:
        """New hash of the subtree ``node_hash`` at ``depth`` (filed at ``at`` if it
        starts a page; else in ``page``, its parent's) after changes ``[lo, hi)``."""
        if hi - lo == 1:
            return self.update_one(node_hash, depth, lo, at, page)
        if node_hash == EMPTY_ROOT:
            return self.build(depth, lo, hi, None, EMPTY_ROOT)
        page = self.page_of(node_hash, depth, at, page, self.paths[lo])
        node = page[node_hash]
        if node[0] != NODE_TAG:
            return self.build(depth, lo, hi, node, node_hash)
        shift = 255 - depth
        mid = bisect_left(self.paths, ((self.paths[lo] >> shift) | 1) << shift, lo, hi)
        left, right = node[1:33], node[33:65]
        left_at, right_at = node[65:73], node[73:81]
        new_left = self.update(left, depth + 1, lo, mid, left_at, page) if mid > lo else left
        new_right = self.update(right, depth + 1, mid, hi, right_at, page) if hi > mid else right
        if new_left == left and new_right == right:
            return node_hash
        if new_left == EMPTY_ROOT:
            if new_right == EMPTY_ROOT or self.is_leaf(new_right, depth + 1, right_at, page):
                return new_right  # compaction: a lone leaf moves up
        elif new_right == EMPTY_ROOT and self.is_leaf(new_left, depth + 1, left_at, page):
            return new_left
        return self.internal(new_left, new_right, depth, node, page)

    def update_one(self, node_hash: bytes, depth: int, i: int, at: bytes, page: Page) -> bytes:
        """:meth:`update` for the single change ``i``: walk down, then rehash upwards.

        Most of a batch's work happens below the levels its keys share, one key per
        subtree; a loop is much cheaper there than splitting a range at every level.
        """
        key = self.keys[i]  # its bits read from the bytes: no 256-bit int made a level
        above: list[bytes] = []  # the internal nodes passed on the way down
        held: list[Page] = []  # the old page holding each of them
        old, level = node_hash, depth
        while old != EMPTY_ROOT:
            node = page.get(old)  # self.page_of(), inlined: the hottest lookup of an update
            if node is None:
                page = self.fetch(old, level, at, self.paths[i])
                node = page[old]
            if node[0] != NODE_TAG:
                new = self.build(level, i, i + 1, node, old)
                break
            above.append(node)
            held.append(page)
            right = (key[level >> 3] >> (7 - (level & 7))) & 1
            old = node[33:65] if right else node[1:33]
            if level & PAGE_MASK == PAGE_MASK:  # the next node starts a page: where it is
                at = node[73:81] if right else node[65:73]
            level += 1
        else:
            new = self.hashes[i] or EMPTY_ROOT
        if new == old:
            return node_hash
        lone = new == EMPTY_ROOT or self.is_leaf(new, level, NO_HEIGHT, page)  # may move up
        nodes, roots = self.nodes, self.roots
        for up in range(level - 1, depth - 1, -1):
            parent = above.pop()
            parent_page = held.pop()
            right = (key[up >> 3] >> (7 - (up & 7))) & 1
            if lone:
                sibling = parent[1:33] if right else parent[33:65]
                if sibling == EMPTY_ROOT:
                    continue
                sibling_at = parent[65:73] if right else parent[73:81]
                if new == EMPTY_ROOT and self.is_leaf(sibling, up + 1, sibling_at, parent_page):
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
            if not up & PAGE_MASK:  # a new page, in place of the one parent starts
                roots[new] = up
                self.olds[new] = parent_page
        return new

    def build(self, depth: int, lo: int, hi: int, leaf: bytes | None, leaf_hash: bytes) -> bytes:
        """Subtree at ``depth`` holding the old ``leaf`` (if any) merged with ``[lo, hi)``.
        The old leaf, if the new subtree keeps it, joins :attr:`nodes` (it may move to
        another page)."""
        paths, hashes = self.paths, self.hashes
        if hi - lo == 1:  # the common case: one change meets an empty slot or one leaf
            new = hashes[lo]
            if leaf is None:
                return EMPTY_ROOT if new is None else new
            old_path = int.from_bytes(leaf[1:33], "big")
            if old_path == paths[lo]:
                if new == leaf_hash:  # set to its value: the old row stays
                    self.nodes[leaf_hash] = leaf
                return EMPTY_ROOT if new is None else new
            if new is None:
                return leaf_hash
            self.nodes[leaf_hash] = leaf
            return self.pair(depth, paths[lo], new, old_path, leaf_hash)
        keep = [(paths[i], h) for i in range(lo, hi) if (h := hashes[i]) is not None]
        if leaf is not None:
            old_path = int.from_bytes(leaf[1:33], "big")
            at = bisect_left(paths, old_path, lo, hi)
            if at == hi or paths[at] != old_path:
                keep.append((old_path, leaf_hash))
                keep.sort()
                self.nodes[leaf_hash] = leaf
            elif hashes[at] == leaf_hash:
                self.nodes[leaf_hash] = leaf
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

    def internal(
        self, left: bytes, right: bytes, depth: int, old: bytes = b"", old_page: Page | None = None
    ) -> bytes:
        """Hash and record the internal node ``left || right`` found at ``depth``, where
        the old tree had ``old`` (an internal node, in ``old_page``) or nothing."""
        node = b"\x01" + left + right
        node_hash = sha256_digest(node)
        if depth & PAGE_MASK == PAGE_MASK:  # its children start pages: where they are filed
            node += self.child_at(left, old[1:33], old[65:73])
            node += self.child_at(right, old[33:65], old[73:81])
        self.nodes[node_hash] = node
        if not depth & PAGE_MASK:
            self.roots[node_hash] = depth
            if old_page is not None:  # the page old started
                self.olds[node_hash] = old_page
        return node_hash

    def child_at(self, child: bytes, old_child: bytes, old_at: bytes) -> bytes:
        """Where the row of a fourth-level node's ``child`` is filed: here if this update
        made it, where it was if it is the old node's child on that side."""
        if child in self.roots:
            return self.at
        return old_at if child == old_child else NO_HEIGHT

    def is_leaf(self, node_hash: bytes, depth: int, at: bytes, page: Page) -> bool:
        """Whether a node of the new tree is a leaf (``at``: where its row is filed, if
        it is an old page not read yet; ``page``: its parent's, if it is old). An old
        leaf found here moves up (every caller lifts it): it joins :attr:`nodes`."""
        node = self.nodes.get(node_hash)
        if node is not None:
            return node[0] != NODE_TAG
        node = self.page_of(node_hash, depth, at, page)[node_hash]
        if node[0] == NODE_TAG:
            return False
        self.nodes[node_hash] = node
        return True
