"""Auditing a pruned store: which missing state rows pruning explains, and which it does not.

A node with ``[storage] state_keep_heights`` deletes the tree rows that only heights older
than its window needed (ledger/state_prune.py). The audit re-executes from genesis, so
its scratch store holds every row of every version; compared with the pruned store,
those rows are missing. Missing is not tampering only for a row that no height the node
claims to keep needs, and the audit decides that from its *own* re-execution, never from
the audited store's bookkeeping (whoever holds the disk may have changed it): the replay
notes, like a pruning node does, the rows each block retires and the last height each
left the tree. A row is needed from height ``oldest`` on when

* it never left the tree (the tip's state holds it), or
* it last left at a height above ``oldest`` (the state just before held it), or
* it left at or below ``oldest`` and is in the tip's tree again.

Every other stored row, and every needed one, is compared byte for byte as usual. The
oldest height is the audited store's claim; the report states it, so an auditor sees
from which height on the state was checked.
"""

from __future__ import annotations

from ledger.state import StateTree
from ledger.state_prune import is_back
from ledger.storage import keys
from ledger.storage.protocol import KVReader


class PrunedState:
    """What the re-executed ``scratch`` says about the rows a store keeping state from
    height ``oldest`` on may lack; ``tip_root``: the re-executed tip's state root."""

    def __init__(self, scratch: KVReader, oldest: int, tip_root: bytes) -> None:
        self.scratch = scratch
        self.oldest = oldest
        self.tip = StateTree(scratch, tip_root)
        self.absent = 0  # rows missing from the store that pruning explains

    def explains(self, key: bytes) -> bool:
        """Whether the re-executed row ``key``, missing from the store, was pruned (no
        height from :attr:`oldest` on needs it); counts it if so."""
        if not key.startswith(keys.STATE_NODE):
            return False
        node_hash = key[len(keys.STATE_NODE) :]
        last = self.scratch.get(keys.RETIRED_LAST + node_hash)
        if last is None or int.from_bytes(last, "big") > self.oldest:
            return False
        place = self.scratch.get(keys.retired_key(int.from_bytes(last, "big"), node_hash))
        if place is None or is_back(self.scratch, self.tip, node_hash, place):
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
