"""Verify each transaction signature once per node.

The mempool verifies on admission; block validation and execution then find
the result here instead of paying for Ed25519 again. Keyed by (hash of the
signed body, signature): the body hash alone would let a valid transaction
vouch for a copy with a forged signature.
"""

from __future__ import annotations

from collections import OrderedDict

from ledger.errors import SignatureError
from ledger.tx import Transaction


class SignatureCache:
    """A bounded LRU set of transactions whose signatures verified."""

    def __init__(self, capacity: int = 500_000) -> None:
        self.capacity = capacity
        self._ok: OrderedDict[tuple[bytes, bytes], None] = OrderedDict()
        self.hits = 0
        self.verifications = 0

    def verify(self, tx: Transaction) -> None:
        """Raise :class:`SignatureError` unless ``tx`` is signed by its sender."""
        key = (tx.hash, tx.signature)
        if key in self._ok:
            self.hits += 1
            return
        self.verifications += 1
        tx.verify_signature()
        self.add(tx)

    def add(self, tx: Transaction) -> None:
        """Record ``tx`` as verified (the caller checked it, e.g. in a worker process)."""
        self._ok[(tx.hash, tx.signature)] = None
        if len(self._ok) > self.capacity:
            self._ok.popitem(last=False)

    def is_valid(self, tx: Transaction) -> bool:
        try:
            self.verify(tx)
        except SignatureError:
            return False
        return True

    def __contains__(self, tx: object) -> bool:
        return isinstance(tx, Transaction) and (tx.hash, tx.signature) in self._ok
