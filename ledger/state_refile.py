"""Migrate a store's state tree from format 2 (rows filed by hash) to format 3 (by height).

Format 3 files each page and leaf under the height of the block that wrote it
(:mod:`ledger.state`); which block that is, format 2 does not say. It follows from the
states themselves: a row of the tree at height ``h`` is new exactly when its hash is not
in the tree of the height before. So the migration takes the stored states in height
order — the genesis state (or the state a state-synced store starts from), then each
header's — and applies to the format-3 tree the difference between each state and the
previous one, as the block at that height: the rows written are exactly those a node of
this version would have written executing the same blocks, so ``audit verify`` keeps
comparing them byte for byte. Every state's root is checked against its header's.

Safe to interrupt: each synced batch records the last height it finished, and a re-run
carries on from there (the format row is written only once every state is refiled:
ledger/state_migrate.py). A store that prunes state cannot be refiled (the rows of the
heights it dropped decide where the kept ones are filed): resync such a node.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from ledger.block import decode_header
from ledger.block_prune import decode_header_row
from ledger.errors import CorruptionError, StorageError
from ledger.state import StateTree, hashed_entry
from ledger.state_pages import (
    LEAF_REF_TAG,
    NODE_TAG,
    PAGE_MASK,
    Page,
    check_leaf,
    leaf_ref,
    read_page,
)
from ledger.state_proof import EMPTY_ROOT
from ledger.state_prune import height_record
from ledger.state_retire import Entry
from ledger.storage import KVStore, OverlayStore, keys

BATCH_BYTES = 4 * 1024 * 1024  # written (and synced) whenever the pending rows reach this
PROGRESS = keys.META + b"refile_height"  # u64be: the last height refiled (while migrating)
_OLD = keys.LEGACY_PAGE_NODE

Report = Callable[[int, int], None]
"""Called with (states refiled, states in all) as the migration goes."""


def stored_states(store: KVStore) -> list[tuple[int, bytes]]:
    """(height, state root) of every state the store holds, oldest first: the genesis
    state (height 0) or a state-synced store's base, then each stored header's, a height
    whose root repeats the one before dropped (idle blocks change nothing)."""
    base = height_record(store, keys.STATE_BASE, "state base")
    if base:
        raw = store.get(keys.BASE_HEADER)
        if raw is None:
            raise CorruptionError("the state-synced store has no base header")
        states = [(base, decode_header_row(raw).state_root)]
    else:
        genesis = store.get(keys.GENESIS_STATE_ROOT)
        states = [(0, genesis)] if genesis is not None else []
    for height, root in sorted(_headers(store)):
        if states and (height <= states[-1][0] or root == states[-1][1]):
            continue  # at or below the base, or an idle block
        states.append((height, root))
    return states


def _headers(store: KVStore) -> Iterator[tuple[int, bytes]]:
    for key, raw in store.iterate(keys.BLOCK):
        yield int.from_bytes(key[len(keys.BLOCK) :], "big"), decode_header(raw).state_root
    for key, raw in store.iterate(keys.PRUNED_HEADER):  # headers kept on their own
        height = int.from_bytes(key[len(keys.PRUNED_HEADER) :], "big")
        yield height, decode_header_row(raw).state_root


def refile(store: KVStore, report: Report) -> int:
    """Write the format-3 rows of every stored state (see the module docstring); returns
    the number of states refiled by this run. The store's format row is not touched."""
    if height_record(store, keys.OLDEST_STATE, "oldest-state") > 0:
        raise StorageError(
            "this store prunes state ([storage] state_keep_heights): the heights it dropped "
            "are needed to refile the rest; resync the node instead (a new home, "
            "`cityledger node start --state-sync`)"
        )
    return refile_states(store, stored_states(store), report)


def refile_states(store: KVStore, states: list[tuple[int, bytes]], report: Report) -> int:
    """:func:`refile` of the given (height, state root) pairs, oldest first, whose
    format-2 rows ``store`` holds."""
    done = height_record(store, PROGRESS, "migration progress")
    resumed = store.get(PROGRESS) is not None
    old_root = EMPTY_ROOT
    todo: list[tuple[int, bytes]] = []
    for height, root in states:
        if resumed and height <= done:
            old_root = root
        else:
            todo.append((height, root))
    overlay = OverlayStore(store)
    tree = StateTree(overlay, old_root)
    differ = _Differ(store)
    pending = 0
    report(len(states) - len(todo), len(states))
    for count, (height, root) in enumerate(todo, 1):
        entries = differ.changes(old_root, root)
        new_root = tree.apply_entries(entries, overlay.batch, height=height)
        if new_root != root:
            raise CorruptionError(
                f"the state of height {height} refiles to root {new_root.hex()}, "
                f"not its header's {root.hex()}"
            )
        old_root = root
        pending += sum(len(e[2] or b"") + 200 for e in entries)
        if pending >= BATCH_BYTES or count == len(todo):
            overlay.batch.put(PROGRESS, keys.height_bytes(height))
            store.write(overlay.take(), sync=True)
            pending = 0
            report(len(states) - len(todo) + count, len(states))
    return len(todo)


class _Differ:
    """The key changes between two format-2 states, read from their pages (each checked
    against its hash) and leaves (each checked against its reference)."""

    def __init__(self, store: KVStore) -> None:
        self.store = store
        self.known: Page = {}  # the nodes of the pages read for the current pair of states

    def changes(self, old: bytes, new: bytes) -> list[Entry]:
        """The changes that take state ``old`` to ``new``, sorted by key hash."""
        self.known.clear()
        before: dict[bytes, bytes] = {}  # key hash -> leaf hash, where the two differ
        after: dict[bytes, bytes] = {}
        self._diff(old, new, 0, before, after)
        out = [hashed_entry(kh, None) for kh in before.keys() - after.keys()]
        for kh, leaf_hash in after.items():
            if before.get(kh) != leaf_hash:
                out.append(hashed_entry(kh, self._value(leaf_hash, kh)))
        out.sort()
        return out

    def _diff(
        self, a: bytes, b: bytes, depth: int, before: dict[bytes, bytes], after: dict[bytes, bytes]
    ) -> None:
        if a == b:
            return
        node_a, node_b = self._node(a, depth), self._node(b, depth)
        if node_a is not None and node_b is not None and node_a[0] == node_b[0] == NODE_TAG:
            self._diff(node_a[1:33], node_b[1:33], depth + 1, before, after)
            self._diff(node_a[33:], node_b[33:], depth + 1, before, after)
            return
        self._leaves(a, node_a, depth, before)
        self._leaves(b, node_b, depth, after)

    def _leaves(self, h: bytes, node: bytes | None, depth: int, out: dict[bytes, bytes]) -> None:
        """Every leaf of the subtree ``h`` (its node: ``node``) into ``out``."""
        if node is None:
            return
        if node[0] == LEAF_REF_TAG:
            out[node[1:33]] = h
            return
        for child in (node[1:33], node[33:]):
            self._leaves(child, self._node(child, depth + 1), depth + 1, out)

    def _node(self, h: bytes, depth: int) -> bytes | None:
        """The node ``h`` at ``depth`` (None: empty): internal, or a leaf reference."""
        if h == EMPTY_ROOT:
            return None
        node = self.known.get(h)
        if node is not None:
            return node
        if depth & PAGE_MASK:
            raise CorruptionError(f"state node {h.hex()} at depth {depth} is in no page read")
        row = self.store.get(_OLD + h)
        if row is None:
            raise CorruptionError(f"format-2 state node {h.hex()} is missing from the store")
        if row[:1] == b"\x00":  # a state of one key: its leaf is the root
            return leaf_ref(check_leaf(h, row, True))
        root, page = read_page(row, h.hex())
        if root != h:
            raise CorruptionError(f"format-2 state page {h.hex()} does not match its hash")
        self.known.update(page)
        return page[h]

    def _value(self, leaf_hash: bytes, kh: bytes) -> bytes:
        row = self.store.get(_OLD + leaf_hash)
        if row is None:
            raise CorruptionError(f"format-2 state leaf {leaf_hash.hex()} is missing")
        return check_leaf(leaf_hash, row, True)[33:]  # (its hash covers its key hash, kh)
