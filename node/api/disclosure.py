"""The one authorisation point for transactions, receipts and events (docs/api.md).

Every answer that can carry a transaction's payload, a receipt or an event goes
through a :class:`Disclosure`: per item it asks the contracts' read rules
(:func:`contracts.read_rules.may_read_tx`) whether the reader proven by the
request may see it, judged on the state after the item's block, and shows the
item whole or *redacted* to what commits to it without revealing it:

* a transaction becomes ``{"redacted": true, "hash", "kind"}`` — its hash is
  what the block's tx root and the log are built over, so a redacted block
  still proves its header; the sender is left out too (a meter's key names a
  record the reader may not see);
* a receipt becomes ``{"redacted": true, "hash", "tx_hash", "height", "index"}``
  — its hash is what the results root is built over, so the receipt's place in
  the block is still proven; its events and message (goods, parties, amounts)
  are not shown;
* an event is shown only with its transaction.

On a pruning node (docs/operations.md, "Pruning") the state after an old block may be
gone: a ruling that needs it fails closed — the item is redacted, to every reader but
an auditor — while the rulings that need no state (public kinds) stand, so the block's
history is still served and its roots still check.

Redaction, not refusal, because the chain's structure (hash links,
certificates, roots, the log) is what lets anyone check that nothing was
rewritten; only content is confidential. A payload's own hash is never shown:
low-entropy payloads (a price, a quantity) could be guessed from it, while a
transaction's hash covers its signature and cannot.
"""

from __future__ import annotations

from collections.abc import Callable

from contracts.context import StateReader
from contracts.read_rules import Reader, may_read_tx
from ledger.block import Block, BlockHeader, Receipt
from ledger.encoding import Value
from ledger.state import StateTree
from ledger.state_prune import HeightGuard, StatePruned
from ledger.storage import KVStore
from ledger.tx import Transaction
from node.service import StateAt


class Disclosure:
    """What one reader may see of transactions, receipts and events.

    ``state_of(header)`` gives the state after a block; rulings are cached per
    transaction hash for the life of one answer (a block or a stream frame).
    """

    def __init__(self, reader: Reader, state_of: Callable[[BlockHeader], StateReader]) -> None:
        self.reader = reader
        self._state_of = state_of
        self._rulings: dict[bytes, bool] = {}

    @classmethod
    def over(cls, reader: Reader, store: KVStore) -> Disclosure:
        def state_of(header: BlockHeader) -> StateReader:
            tree = StateTree(HeightGuard(store, header.height), header.state_root)
            return StateAt(tree, header.state_root)

        return cls(reader, state_of)

    @property
    def sees_everything(self) -> bool:
        return "auditor" in self.reader.roles

    def may_see(self, tx: Transaction, header: BlockHeader) -> bool:
        ruling = self._rulings.get(tx.hash)
        if ruling is None:
            try:
                state: StateReader = self._state_of(header)
            except StatePruned as exc:
                state = _Gone(exc)
            try:
                ruling = may_read_tx(state, tx.kind, tx.sender, tx.payload, self.reader)
            except StatePruned:
                ruling = False  # the state that decides is no longer kept here: fail closed
            self._rulings[tx.hash] = ruling
        return ruling

    def tx(self, tx: Transaction, header: BlockHeader) -> dict[str, Value]:
        if self.may_see(tx, header):
            return tx.to_obj()
        return redacted_tx(tx)

    def block(self, block: Block) -> tuple[dict[str, Value], list[int]]:
        """The block's canonical object with unreadable transactions redacted, and their
        indices (empty when the reader sees the block whole)."""
        obj = block.to_obj()
        if self.sees_everything:
            return obj, []
        hidden = [i for i, tx in enumerate(block.txs) if not self.may_see(tx, block.header)]
        if hidden:
            txs = list(obj["txs"])
            for i in hidden:
                txs[i] = redacted_tx(block.txs[i])
            obj["txs"] = txs
        return obj, hidden

    def receipt(self, receipt: Receipt, tx: Transaction, header: BlockHeader) -> dict[str, Value]:
        if self.may_see(tx, header):
            return receipt.to_obj()
        return {
            "redacted": True,
            "hash": receipt.hash,
            "tx_hash": receipt.tx_hash,
            "height": receipt.height,
            "index": receipt.index,
        }


class _Gone:
    """The state of a pruned height: every read raises the :class:`StatePruned` it was."""

    def __init__(self, error: StatePruned) -> None:
        self.error = error

    def get(self, key: bytes) -> bytes | None:
        raise self.error


def redacted_tx(tx: Transaction) -> dict[str, Value]:
    return {"redacted": True, "hash": tx.hash, "kind": tx.kind}
