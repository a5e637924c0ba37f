"""Which stored rows of the state tree one update takes out of the tree.

Rows are filed by the height that wrote them (store format 3, :mod:`ledger.state`), and
a row is in every tree from that height until the update that takes it out, and in no
tree after (the same content later is a new row, filed at its own height). A pruning node
therefore notes, for each block, the rows that *left* the tree (in the old root's tree,
not in the new one), and deletes one once the oldest state it keeps is at or after that
block (:mod:`ledger.state_prune`). This module finds those rows from what
:meth:`ledger.state.StateTree.apply` already read and made:

* a **page** left the tree when it was read (every page on a changed path is) and the new
  tree no longer reaches it;
* a **leaf** left the tree when its key was changed and its old value is not the new one
  (leaves of unchanged keys never move out: a leaf's hash does not depend on its depth).

Each retired row carries the height it is filed at, and whether it was the old tree's
root (its ``STATE_ROOT`` row goes with it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import NamedTuple, Protocol

from ledger.state_pages import LEAF_REF_TAG, NODE_TAG, PAGE_MASK, Page
from ledger.state_proof import EMPTY_ROOT

Entry = tuple[bytes, bytes, bytes | None, bytes | None, bytes | None]
"""One change of an update: key hash, key, value, leaf hash, leaf reference (the last
three None for a delete)."""


class Retired(NamedTuple):
    """A row that left the tree: its hash, the 8-byte height it is filed at, and whether
    it was the old tree's root."""

    node_hash: bytes
    filed_at: bytes
    root: bool


class Update(Protocol):
    """What :func:`retired_rows` reads of one update (``ledger.state_update.BatchUpdate``)."""

    fetched: dict[bytes, Page]  # the old pages it read, by root hash
    places: dict[bytes, tuple[int, int]]  # depth and path of those a changed key entered
    filed: dict[bytes, bytes]  # where the rows of those pages are filed
    nodes: dict[bytes, bytes]  # every node it made (leaves as references), and old leaves
    # it keeps elsewhere or unchanged

    def old_nodes(self) -> Page:
        """Every node of the pages read (a leaf's reference says where it is filed)."""
        ...


def retired_rows(
    old_root: bytes, new_root: bytes, update: Update, entries: Iterable[Entry]
) -> list[Retired]:
    """The rows of ``old_root``'s tree that ``new_root``'s lacks, from what ``update``
    read and made to go from one to the other (``entries``: its changes)."""
    if new_root == old_root:
        return []
    known = update.old_nodes()
    kept = _kept_pages(new_root, update, known)
    gone = [h for h, page in update.fetched.items() if h not in kept and page[h][0] == NODE_TAG]
    out = [Retired(h, update.filed[h], h == old_root) for h in gone]
    changed, created = {entry[0] for entry in entries}, update.nodes
    for node_hash, node in known.items():
        if node[0] == LEAF_REF_TAG and node[1:33] in changed and node_hash not in created:
            out.append(Retired(node_hash, node[65:73], node_hash == old_root))
    return out


def _kept_pages(root: bytes, update: Update, known: Page) -> set[bytes]:
    """The old pages read that the new tree still holds: those a new node points to, and
    any other that one walk from the new root along its recorded path still finds (an
    old page under a subtree that did not change: a change that set a key to its value)."""
    kept: set[bytes] = set()
    stack = [root]
    while stack:  # the new nodes, down to where they point into the old tree
        node_hash = stack.pop()
        node = update.nodes.get(node_hash)
        if node is None:
            if node_hash in update.fetched:
                kept.add(node_hash)
        elif node[0] == NODE_TAG:
            stack.extend(h for h in (node[1:33], node[33:65]) if h != EMPTY_ROOT)
    for page_hash in update.fetched.keys() - kept:
        place = update.places.get(page_hash)
        if place is None:  # read off every changed path: a sibling, found above if kept
            place = _page_places(root, update.fetched, {**known, **update.nodes}).get(
                page_hash, (-1, 0)
            )
        if _reaches(root, update, known, place[0], place[1], page_hash):
            kept.add(page_hash)
    return kept


def _reaches(
    root: bytes, update: Update, known: Page, depth: int, path: int, page_hash: bytes
) -> bool:
    """Whether the new tree holds ``page_hash`` at ``depth`` on ``path`` (every node on
    the way is new or in a page read: the walk that read the page came this way)."""
    current, level = root, 0
    while level < depth:
        node = update.nodes.get(current) or known.get(current)
        if node is None or node[0] != NODE_TAG:
            return False
        current = node[33:65] if (path >> (255 - level)) & 1 else node[1:33]
        level += 1
    return level == depth and current == page_hash


def _page_places(
    root: bytes, fetched: Mapping[bytes, Page], old_nodes: Page
) -> dict[bytes, tuple[int, int]]:
    """Depth and path prefix (as an int) of each fetched page, found top-down from the old
    root (the pages an update reads hang together from the root down)."""
    places: dict[bytes, tuple[int, int]] = {}
    stack = [(root, 0, 0)]
    while stack:
        node_hash, depth, path = stack.pop()
        node = old_nodes.get(node_hash)
        if node is None or node[0] != NODE_TAG:
            continue
        if not depth & PAGE_MASK and node_hash in fetched:
            places[node_hash] = (depth, path)
        left, right = node[1:33], node[33:65]
        if left != EMPTY_ROOT:
            stack.append((left, depth + 1, path))
        if right != EMPTY_ROOT:
            stack.append((right, depth + 1, path | 1 << (255 - depth)))
    return places
