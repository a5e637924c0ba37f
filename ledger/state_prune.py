"""Pruning: keep the state of the last N heights only, in a crash-safe, incremental way.

Rows are filed by the height that wrote them (store format 3, :mod:`ledger.state`): a
row is in the tree from that height until the block that takes it out, and never again
(the same content later is a new row). So every block a pruning node executes notes the
rows that *left* the tree with it (``RETIRED ‖ r ‖ filed height ‖ hash``, written in the
block's own commit batch). A row that left at height r was last needed by the state of
r - 1: keeping heights [O, head], a step takes the records with r <= O, oldest first, and
deletes their rows (and the ``STATE_ROOT`` row of a root that left, unless that root hash
came back and names a newer row). Nothing is walked: the record is the whole decision.

Crash safety: a step is one atomic batch (the new oldest height, the rows deleted, the
records consumed), so a store stopped at any instant is either before or after the step,
and the oldest height it records is always one whose state is whole. Incremental: one step
handles at most ``limit`` records — the node asks for twice what the block retired, at least
5,000 — so a backlog (pruning switched on, a long catch-up) is worked off over several
blocks at a cost in proportion to theirs, never in one long pause of consensus.

A node keeps recording retired rows once it has pruned even if pruning is switched off
(``state_keep_heights = 0``), so that switching it on again finds every record. Rows that
left the tree before pruning was first switched on have no record and stay (their
heights' state is refused all the same).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from ledger.errors import CorruptionError, LedgerError
from ledger.state_retire import Retired
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
        if value is None and key.startswith((keys.STATE_NODE, keys.STATE_ROOT)):
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


def record_retired(
    batch: WriteBatch, height: int, retired: Iterable[Retired], *, by_row: bool = False
) -> None:
    """Note, in block ``height``'s batch, the rows that left the tree with it (and, when
    ``by_row``, the height each left at under the row's own filing: the audit's lookup)."""
    left = keys.height_bytes(height)
    for node_hash, filed_at, root in retired:
        batch.put(keys.retired_key(height, filed_at, node_hash), b"\x01" if root else b"")
        if by_row:
            batch.put(keys.RETIRED_BY_ROW + filed_at + node_hash, left)


@dataclass(frozen=True, slots=True)
class PruneStep:
    """What one step did."""

    oldest: int  # the oldest height whose state the store now holds
    records: int  # retirement records consumed
    deleted: int  # tree rows deleted
    done: bool  # no record the window allows to consume is left


def prune_step(
    store: KVStore, head_height: int, keep_heights: int, *, limit: int = PRUNE_STEP_RECORDS
) -> PruneStep:
    """Move the window to the last ``keep_heights`` heights up to ``head_height`` and
    delete what at most ``limit`` records allow."""
    oldest = oldest_state_height(store)
    if keep_heights > 0:
        oldest = max(oldest, head_height - keep_heights + 1)
    batch = WriteBatch()
    batch.put(keys.OLDEST_STATE, keys.height_bytes(oldest))
    records = deleted = 0
    start = len(keys.RETIRED)
    for key, flag in store.iterate(keys.RETIRED):
        if records == limit or int.from_bytes(key[start : start + 8], "big") > oldest:
            break
        if len(key) != start + 48 or flag not in (b"", b"\x01"):
            raise CorruptionError(f"the retirement record {key[start:].hex()} is corrupt")
        records += 1
        batch.delete(key)
        filing = key[start + 8 :]
        batch.delete(keys.STATE_NODE + filing)
        deleted += 1
        root_key = keys.STATE_ROOT + filing[8:]
        if flag and store.get(root_key) == filing[:8]:
            batch.delete(root_key)  # (a root hash that came back names its newer row)
    store.write(batch, sync=False)
    return PruneStep(oldest, records, deleted, records < limit)
