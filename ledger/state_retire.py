"""Which stored rows of the state tree one update takes out of the tree.

Pages and leaves are content-addressed and shared between versions (docs/formats-state.md
§4), so a row cannot be deleted because one version stopped using it: an older version
may still need it, and a later one may bring the very same row back (a counter that goes
5, 6, 5 writes the leaf of 5 twice). A pruning node therefore notes, for each block, the
rows that *left* the tree (in the old root's tree, not in the new one), and deletes one
only once no state it keeps needs it (:mod:`ledger.state_prune` decides). This module
finds those rows from what :meth:`ledger.state.StateTree.apply` already read and made:

* a **page** left the tree when it was read (every page on a changed path is) and the new
  tree no longer reaches it;
* a **leaf** left the tree when its key was changed and its old value is not the new one
  (leaves of unchanged keys never move out: a leaf's hash does not depend on its depth).

Each retired row carries where it was (depth and a path through it), so the pruner can
ask "is it back in the newest tree?" with one walk instead of a search.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import NamedTuple

from ledger.state_pages import LEAF_REF_TAG, NODE_TAG, PAGE_MASK, Page
from ledger.state_proof import EMPTY_ROOT

LEAF_DEPTH = 0xFF
"""The depth recorded for a leaf: its place is its key hash, whatever its depth."""

Entry = tuple[bytes, bytes, bytes | None, bytes | None]  # key hash, key, value, leaf hash


class Retired(NamedTuple):
    """A row that left the tree: its hash, its page's depth (or :data:`LEAF_DEPTH`) and a
    256-bit path through it (a leaf's key hash; for a page, its prefix then zero bits)."""

    node_hash: bytes
    depth: int
    path: bytes


def retired_rows(
    old_root: bytes,
    new_root: bytes,
    fetched: Mapping[bytes, Page],
    created: Mapping[bytes, bytes],
    entries: Iterable[Entry],
) -> list[Retired]:
    """The rows of ``old_root``'s tree that ``new_root``'s lacks. ``fetched``: the old
    pages the update read, by root hash; ``created``: the nodes it made (leaves as
    references); ``entries``: its changes."""
    old_nodes: Page = {}
    for page in fetched.values():
        old_nodes.update(page)
    live = _reached(new_root, created, old_nodes)
    out = [
        Retired(h, depth, path.to_bytes(32, "big"))
        for h, (depth, path) in _page_places(old_root, fetched, old_nodes).items()
        if h not in live
    ]
    changed = {entry[0] for entry in entries}
    for node_hash, node in old_nodes.items():
        if node[0] == LEAF_REF_TAG and node[1:33] in changed and node_hash not in live:
            out.append(Retired(node_hash, LEAF_DEPTH, node[1:33]))
    return out


def _reached(root: bytes, created: Mapping[bytes, bytes], old_nodes: Page) -> set[bytes]:
    """Every node of ``root``'s tree that is among the known ones (made or read): the
    walk stops where the tree goes on into pages this update never touched."""
    live: set[bytes] = set()
    stack = [root]
    while stack:
        node_hash = stack.pop()
        node = created.get(node_hash) or old_nodes.get(node_hash)
        if node is None or node_hash in live:
            continue
        live.add(node_hash)
        if node[0] == NODE_TAG:
            stack.extend(h for h in (node[1:33], node[33:]) if h != EMPTY_ROOT)
    return live


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
        left, right = node[1:33], node[33:]
        if left != EMPTY_ROOT:
            stack.append((left, depth + 1, path))
        if right != EMPTY_ROOT:
            stack.append((right, depth + 1, path | 1 << (255 - depth)))
    return places
