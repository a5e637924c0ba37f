"""Auditing a pruned store: which missing state rows pruning explains, and which it does not.

A node with ``[storage] state_keep_heights`` deletes the tree rows that only heights older
than its window needed (ledger/state_prune.py). The audit re-executes from genesis, so
its scratch store holds every row of every version; compared with the pruned store,
those rows are missing. Missing is not tampering only for a row that no height the node
claims to keep needs, and the audit decides that from its *own* re-execution, never from
the audited store's bookkeeping (whoever holds the disk may have changed it): the replay
notes, like a pruning node does, the rows each block retires, and here by row as well.
Rows are filed by the height that wrote them and never come back once they leave the
tree (store format 3), so a row is needed from height ``oldest`` on unless it left the
tree at a height at or below ``oldest`` — and so is a state root's filing row, which
pruning deletes with its root's row.

Every other stored row, and every needed one, is compared byte for byte as usual. The
oldest height is the audited store's claim; the report states it, so an auditor sees
from which height on the state was checked.
"""

from __future__ import annotations

from ledger.storage import keys
from ledger.storage.protocol import KVReader


class PrunedState:
    """What the re-executed ``scratch`` says about the rows a store keeping state from
    height ``oldest`` on may lack."""

    def __init__(self, scratch: KVReader, oldest: int) -> None:
        self.scratch = scratch
        self.oldest = oldest
        self.absent = 0  # rows missing from the store that pruning explains

    def explains(self, key: bytes) -> bool:
        """Whether the re-executed row ``key``, missing from the store, was pruned (no
        height from :attr:`oldest` on needs it); counts it if so."""
        if key.startswith(keys.STATE_NODE):
            filing = key[len(keys.STATE_NODE) :]
        elif key.startswith(keys.STATE_ROOT):
            root = key[len(keys.STATE_ROOT) :]
            at = self.scratch.get(key)
            if at is None:
                return False
            filing = at + root
        else:
            return False
        left = self.scratch.get(keys.RETIRED_BY_ROW + filing)
        if left is None or int.from_bytes(left, "big") > self.oldest:
            return False
        self.absent += 1
        return True

    def summary(self, tip: int) -> str:
        """The report's sentence on what the comparison could not check."""
        return (
            f"the state of heights below {self.oldest}: this node prunes state and keeps it "
            f"from height {self.oldest} on ([storage] state_keep_heights); {self.absent:,} "
            "tree rows that only older heights needed were not in the store and could not "
            f"be compared. Every row the state of heights {self.oldest} to {tip} needs was "
            "compared, and every block was still re-executed from genesis"
        )
