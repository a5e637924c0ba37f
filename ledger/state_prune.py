"""Pruning: keep the state of the last N heights only, in a crash-safe, incremental way.

Why not delete a version's rows when it falls out of the window: pages and leaves are
shared between versions and come back (ledger/state_retire.py), so "this row belonged to
height h" says nothing about whether a newer height needs it. Instead, every block a
pruning node executes notes the rows that *left* the tree with it, under the height they
left at (``RETIRED ‖ height ‖ hash``, written in the block's own commit batch), and the
last height each row left at (``RETIRED_LAST ‖ hash``). A row that left at height r was
last needed by the state of r - 1. Keeping heights [O, head], a step takes the records
with r <= O, oldest first, and deletes the row unless

* it left the tree again later (its ``RETIRED_LAST`` is newer: that later record decides,
  when its turn comes), or
* it is back in the head's tree (it came back and has not left since; one walk, or one
  read of the flat table for a leaf).

Otherwise no height from r on holds it: deleting it breaks no state in [O, head].

Crash safety: a step is one atomic batch (the new oldest height, the rows deleted, the
records consumed), so a store stopped at any instant is either before or after the step,
and the oldest height it records is always one whose state is whole. Incremental: one step
handles at most ``limit`` records — the node asks for twice what the block retired, at least
5,000 — so a backlog (pruning switched on, a long catch-up) is worked off over several
blocks at a cost in proportion to theirs, never in one long pause of consensus.

A node keeps recording retired rows once it has pruned even if pruning is switched off
(``state_keep_heights = 0``): a gap in the records could let a later step delete a row that
came back and left again unseen. Rows that left the tree before pruning was first switched
on have no record and stay (their heights' state is refused all the same).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from hashlib import sha256

from ledger.errors import CorruptionError, LedgerError
from ledger.state import NodeCache, StateTree
from ledger.state_retire import LEAF_DEPTH, Retired
from ledger.storage import KVStore, WriteBatch, keys
from ledger.storage.protocol import KVReader

PRUNE_STEP_RECORDS = 5000
"""Records one step handles at least when asked (the node asks for twice what the block
just committed retired, when that is more, so that pruning keeps up: node/executor.py)."""


class StatePruned(LedgerError):
    """A read of state at a height this node has pruned (ask an archive node)."""

    code = "state_pruned"
    http_status = 410  # the API's answer: gone from this node, not malformed nor unknown

    def __init__(self, height: int, oldest: int) -> None:
        super().__init__(
            f"this node keeps state from height {oldest} on; ask an archive node "
            f"for height {height}"
        )
        self.height = height
        self.oldest = oldest


def oldest_state_height(store: KVReader) -> int:
    """The oldest height whose state this store holds whole: 0 (genesis) unless pruned
    or joined by state sync — the later of the prune window's start and the state sync's
    base (node/statesync_check.py: no state before it at all).

    A snapshot or a read below it cannot be served from this store."""
    base = store.get(keys.STATE_BASE)
    return max(_pruned_to(store), 0 if base is None else int.from_bytes(base, "big"))


def _pruned_to(store: KVReader) -> int:
    """Where pruning has moved the window's start (0: never pruned)."""
    return height_record(store, keys.OLDEST_STATE, "oldest-state")


def height_record(store: KVReader, key: bytes, what: str) -> int:
    """The 8-byte height stored at ``key`` (0 when absent): a pruning window's start."""
    raw = store.get(key)
    if raw is None:
        return 0
    if len(raw) != 8:
        raise CorruptionError(f"the {what} record is corrupt")
    return int.from_bytes(raw, "big")


def require_state(store: KVReader, height: int) -> None:
    """Raise :class:`StatePruned` if the state of ``height`` has been pruned away."""
    oldest = oldest_state_height(store)
    if height < oldest:
        raise StatePruned(height, oldest)


class HeightGuard:
    """The store, read for the state of one ``height``: a tree row found missing because
    pruning has passed that height since the read began (an answer that spans a commit)
    raises :class:`StatePruned`, not a corruption error that would blame the store."""

    def __init__(self, store: KVReader, height: int) -> None:
        self.store = store
        self.height = height

    def get(self, key: bytes) -> bytes | None:
        value = self.store.get(key)
        if value is None and key.startswith(keys.STATE_NODE):
            require_state(self.store, self.height)
        return value

    def iterate(
        self, prefix: bytes, *, start: bytes | None = None, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]:
        return self.store.iterate(prefix, start=start, reverse=reverse)


def records_retired(store: KVReader, keep_heights: int) -> bool:
    """Whether blocks executed on ``store`` must note the rows they retire: when the node
    prunes, or has pruned before (see the module docstring)."""
    return keep_heights > 0 or _pruned_to(store) > 0


def record_retired(batch: WriteBatch, height: int, retired: Iterable[Retired]) -> None:
    """Note, in block ``height``'s batch, the rows that left the tree with it."""
    last = keys.height_bytes(height)
    for node_hash, depth, path in retired:
        batch.put(keys.retired_key(height, node_hash), bytes((depth,)) + path)
        batch.put(keys.RETIRED_LAST + node_hash, last)


@dataclass(frozen=True, slots=True)
class PruneStep:
    """What one step did."""

    oldest: int  # the oldest height whose state the store now holds
    records: int  # retirement records consumed
    deleted: int  # tree rows deleted
    done: bool  # no record the window allows to consume is left


def prune_step(
    store: KVStore,
    head_height: int,
    head_root: bytes,
    keep_heights: int,
    *,
    limit: int = PRUNE_STEP_RECORDS,
    cache: NodeCache | None = None,
) -> PruneStep:
    """Move the window to the last ``keep_heights`` heights up to ``head_height`` (whose
    state root is ``head_root``) and delete what at most ``limit`` records allow."""
    oldest = oldest_state_height(store)
    if keep_heights > 0:
        oldest = max(oldest, head_height - keep_heights + 1)
    batch = WriteBatch()
    batch.put(keys.OLDEST_STATE, keys.height_bytes(oldest))
    head = StateTree(store, head_root, cache=cache)
    records = deleted = 0
    start = len(keys.RETIRED)
    for key, place in store.iterate(keys.RETIRED):
        if records == limit or int.from_bytes(key[start : start + 8], "big") > oldest:
            break
        records += 1
        batch.delete(key)
        node_hash = key[start + 8 :]
        last_key = keys.RETIRED_LAST + node_hash
        if store.get(last_key) != key[start : start + 8]:
            continue  # it left again later: that record decides
        batch.delete(last_key)
        if not is_back(store, head, node_hash, place):
            batch.delete(keys.STATE_NODE + node_hash)
            deleted += 1
    store.write(batch, sync=False)
    return PruneStep(oldest, records, deleted, records < limit)


def is_back(store: KVReader, head: StateTree, node_hash: bytes, place: bytes) -> bool:
    """Whether the retired row ``node_hash`` (recorded at ``place``: depth, path) is in
    the head's tree again."""
    if len(place) != 33:
        raise CorruptionError(f"the retirement record of {node_hash.hex()} is corrupt")
    depth, path = place[0], place[1:]
    if depth != LEAF_DEPTH:
        return head.holds(node_hash, depth, path)
    row = store.get(keys.STATE_LEAF + path)
    if row is None:
        return False
    value = row[4 + int.from_bytes(row[:4], "big") :]
    return sha256(b"\x00" + path + sha256(value).digest()).digest() == node_hash
