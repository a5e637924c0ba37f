"""Migrate a store to format 3, from format 1 (one binary state node per row) by way of
format 2 (pages filed by hash), or from format 2.

Only the state tree's rows change; roots, proofs, blocks and every other row stay as
they are. Format 1 to 2 in three steps, each safe to interrupt and re-run (``cityledger
node migrate-store`` does so from the start):

1. **Write the pages** of every state root the store holds (the genesis state's and
   each stored block's), and copy the leaves, into the new ``STATE_NODE`` table. The old
   rows are untouched and the store stays format 1: a node of this version refuses it
   until step 2. A subtree is paged children first and every batch is synced, so a page
   that exists has its whole subtree below it: a re-run skips it, and the work of a
   run cut short is kept.
2. **Flip**: one synced batch writes the format row. From here the store is format 2.
3. **Remove the old rows** in batches. Until the last is gone :func:`check_format`
   refuses the store and says to run the command again (an audit would find them).

Every old node read is checked against its hash, so a damaged old store fails here,
before the flip, rather than later in a page that does not match its name.

Format 2 to 3 the same way: the rows filed by height are written next to the old ones
(ledger/state_refile.py, resuming where a stopped run left off), then the format row,
then the old rows and format 2's pruning records are removed.

Last, on LevelDB, the old tables are **compacted**: removing a row only marks it deleted,
and its bytes stay on disk — and in the way of every read of its range — until a
compaction reaches them, which for tables nothing writes again may be never. A store
migrated before this step was added gives the space back when the command is run again
(it has nothing else to do there).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from ledger.digest import sha256_digest
from ledger.errors import CorruptionError, StorageError
from ledger.state_pages import (
    LEAF_REF_TAG,
    LEAF_TAG,
    NODE_TAG,
    PAGE_LEVELS,
    encode_page,
    leaf_ref,
)
from ledger.state_proof import EMPTY_ROOT, HASH_SIZE
from ledger.state_refile import PROGRESS, refile, stored_states
from ledger.storage import KVStore, WriteBatch, keys
from ledger.storage.format import (
    LEGACY_TABLES,
    STORE_FORMAT,
    migration_unfinished,
    stamp_format,
    stored_format,
)
from ledger.storage.protocol import Compactable

BATCH_BYTES = 4 * 1024 * 1024  # written (and synced) whenever the pending rows reach this
_OLD = keys.LEGACY_STATE_NODE
_NEW = keys.LEGACY_PAGE_NODE  # format 2's pages: ledger/state_refile.py takes them to 3


@dataclass
class MigrationProgress:
    """Where a migration is; handed to the progress callback as it goes."""

    step: str = "pages"  # "pages" (format 1 to 2), "refile" (2 to 3), "cleanup", "compact", "done"
    roots_done: int = 0
    roots: int = 0
    pages: int = 0  # pages written by this run (format 1 to 2)
    leaves: int = 0  # leaves copied by this run (format 1 to 2)
    states_done: int = 0  # states refiled by height (format 2 to 3), by any run
    states: int = 0
    refiled: int = 0  # states refiled by this run
    removed: int = 0  # old rows removed by this run
    already: bool = False  # the store was in the current format already
    reclaimable: int = 0  # table bytes the removed rows still took (LevelDB's estimate)
    reclaimed: int = 0  # of them, given back by compacting their tables


Progress = Callable[[MigrationProgress], None]


def migrate_store(store: KVStore, progress: Progress | None = None) -> MigrationProgress:
    """Bring ``store`` to :data:`STORE_FORMAT`; see the module docstring for the steps."""
    state = MigrationProgress()
    report = progress if progress is not None else (lambda _: None)
    found = stored_format(store)
    if found is None:
        raise StorageError("this store holds no chain yet: there is nothing to migrate")
    if found > STORE_FORMAT:
        raise StorageError(
            f"this store is in format {found}, made by a newer CityLedger than this one"
        )
    if found == STORE_FORMAT and not migration_unfinished(store):
        state.already = True
    if found == 1:
        roots = state_roots(store)
        state.roots = len(roots)
        pager = _Pager(store, state)
        for root in roots:
            pager.copy(root)
            state.roots_done += 1
            report(state)
        pager.flush()
        _flip(store, 2)
        found = 2
    if found == 2:
        _remove_old_rows(store, (_OLD,), state, report)  # what 1 to 2 left, if anything
        state.step = "refile"
        report(state)

        def refiled(done: int, total: int) -> None:
            state.states_done, state.states = done, total
            report(state)

        state.refiled = refile(store, refiled)
        _flip(store, STORE_FORMAT)
    state.step = "cleanup"
    report(state)
    _remove_old_rows(store, LEGACY_TABLES, state, report)
    if isinstance(store, Compactable):
        state.step = "compact"
        taken = {table: store.approximate_bytes(table) for table in LEGACY_TABLES}
        state.reclaimable = sum(taken.values())
        report(state)
        state.reclaimed = _reclaim(store, taken)
    state.step = "done"
    report(state)
    return state


def _flip(store: KVStore, version: int) -> None:
    """One synced batch: the store is in ``version`` from here."""
    flip = WriteBatch()
    stamp_format(flip, version)
    flip.delete(PROGRESS)
    store.write(flip, sync=True)


def state_roots(store: KVStore) -> list[bytes]:
    """Every state root the store can be asked about: the genesis state's, then each
    stored header's (consecutive repeats dropped: idle blocks change nothing)."""
    return [root for _height, root in stored_states(store)]


class _Pager:
    """Writes the pages and leaves of old-layout subtrees, children before parents."""

    def __init__(self, store: KVStore, state: MigrationProgress) -> None:
        self.store = store
        self.state = state
        self.batch = WriteBatch()
        self.pending = 0

    def copy(self, node_hash: bytes) -> None:
        """Page the subtree ``node_hash`` (a page's top, or a leaf) unless it is done."""
        if node_hash == EMPTY_ROOT or self._exists(node_hash):
            return
        row = self._old(node_hash)
        if row[0] == LEAF_TAG:
            self._put(node_hash, row)
            self.state.leaves += 1
            return
        page_row, page = encode_page(node_hash, _old_page(self._old, node_hash), filed=False)
        for h, node in page.items():
            if node[0] == LEAF_REF_TAG:
                self.copy(h)
            else:
                for child in _below(node, page):
                    self.copy(child)
        self._put(node_hash, page_row)
        self.state.pages += 1

    def flush(self) -> None:
        self.store.write(self.batch, sync=True)
        self.batch, self.pending = WriteBatch(), 0

    def _exists(self, node_hash: bytes) -> bool:
        present, value = self.batch.get(_NEW + node_hash)
        return value is not None if present else self.store.get(_NEW + node_hash) is not None

    def _put(self, node_hash: bytes, row: bytes) -> None:
        self.batch.put(_NEW + node_hash, row)
        self.pending += len(row) + 34
        if self.pending >= BATCH_BYTES:
            self.flush()

    def _old(self, node_hash: bytes) -> bytes:
        """An old-layout node, checked against its hash."""
        row = self.store.get(_OLD + node_hash)
        if row is None:
            raise CorruptionError(f"old state node {node_hash.hex()} is missing from the store")
        if row[:1] == bytes([NODE_TAG]) and len(row) == 1 + 2 * HASH_SIZE:
            digest = sha256_digest(row)
        elif row[:1] == bytes([LEAF_TAG]) and len(row) >= 1 + HASH_SIZE:
            digest = sha256_digest(row[:33] + sha256_digest(row[33:]))
        else:
            raise CorruptionError(f"old state node {node_hash.hex()} is malformed")
        if digest != node_hash:
            raise CorruptionError(f"old state node {node_hash.hex()} does not match its hash")
        return row


def _old_page(read: Callable[[bytes], bytes], root: bytes) -> dict[bytes, bytes]:
    """The old-layout nodes :func:`encode_page` needs for the page whose root is ``root``:
    its internal nodes down to four levels and every node one level below them (a leaf
    there is part of the page, an internal node a child page), leaves in the reference
    form pages hold. A plain dict, read before encoding: the compiled encoder looks
    nodes up with the dict's own lookup, not a subclass's ``get``."""
    nodes: dict[bytes, bytes] = {}
    level = [root]
    for rel in range(PAGE_LEVELS + 1):
        below: list[bytes] = []
        for node_hash in level:
            if node_hash == EMPTY_ROOT:
                continue
            node = read(node_hash)
            if node[0] == LEAF_TAG:
                node = leaf_ref(node)
            elif rel < PAGE_LEVELS:
                below += (node[1:33], node[33:65])
            nodes[node_hash] = node
        level = below
    return nodes


def _below(node: bytes, page: dict[bytes, bytes]) -> Iterator[bytes]:
    """The children of an internal node of ``page`` that are outside it (the page's
    references at its fourth level)."""
    for child in (node[1:33], node[33:]):
        if child != EMPTY_ROOT and child not in page:
            yield child


def _reclaim(store: Compactable, taken: dict[bytes, int]) -> int:
    """Compact every table whose removed rows still take table space (``taken``: the
    bytes each table takes, as the store estimates them): LevelDB keeps them, and the
    marker of each deletion, until a compaction reaches their level, which for tables
    nothing writes again may be never. Measured on a format-2 store of
    187,554 transactions migrated without this step: 808 MB of the 1.8 GB store were
    removed pages, and every opening of the store stepped over their markers for 0.84 s
    (the check for rows left by an unfinished migration); compacting them took 5 s
    (docs/operations.md, "Upgrading the store"). Returns the bytes given back."""
    freed = 0
    for table, before in taken.items():
        if before:
            store.compact(table)
            freed += max(0, before - store.approximate_bytes(table))
    return freed


def _remove_old_rows(
    store: KVStore, tables: tuple[bytes, ...], state: MigrationProgress, report: Progress
) -> None:
    """Delete every row of ``tables``, a batch at a time."""
    for table in tables:
        _remove_table(store, table, state, report)


def _remove_table(store: KVStore, table: bytes, state: MigrationProgress, report: Progress) -> None:
    """Delete every row of ``table``, a batch at a time, resuming after the last key."""
    start: bytes | None = None
    while True:
        batch, size, last = WriteBatch(), 0, None
        for key, value in store.iterate(table, start=start):
            batch.delete(key)
            size += len(key) + len(value)
            last = key
            if size >= BATCH_BYTES:
                break
        if last is None:
            return
        store.write(batch, sync=True)
        state.removed += len(batch)
        report(state)
        start = last + b"\x00"
