"""One sender's pending transactions in the mempool, and that queue as a batch would leave it.

:class:`SenderQueue` holds a sender's pending transactions by nonce and the end of its
ready run (the consecutive nonces from its committed next one); :class:`ImaginedRun` is
what :meth:`node.mempool.Mempool.precheck_many` imagines of that queue after admitting the
batch so far, without changing it.
"""

from __future__ import annotations

from dataclasses import dataclass

from ledger.tx import Transaction


@dataclass(slots=True)
class SenderQueue:
    """One sender's pending transactions: ``[base, run_end)`` is its ready run."""

    org: str
    base: int  # the sender's committed next nonce
    run_end: int  # the first nonce from ``base`` on that is not pending
    txs: dict[int, Transaction]

    @property
    def gapped(self) -> int:
        return len(self.txs) - (self.run_end - self.base)


@dataclass(slots=True)
class ImaginedRun:
    """A sender's queue as :meth:`node.mempool.Mempool.precheck_many` imagines it after a batch."""

    end: int  # the imagined run_end
    gapped: int
    added: set[int]

    @classmethod
    def of(cls, queue: SenderQueue | None, expected: int) -> ImaginedRun:
        if queue is None:
            return cls(expected, 0, set())
        return cls(queue.run_end, queue.gapped, set())

    def admit(self, nonce: int, queue: SenderQueue | None) -> int:
        """Imagine ``nonce`` admitted; returns the change in the number gapped."""
        self.added.add(nonce)
        if nonce != self.end:
            self.gapped += 1
            return 1
        end = nonce + 1
        while end in self.added or (queue is not None and end in queue.txs):
            end += 1
        closed = end - nonce - 1  # gapped ones that the run now reaches
        self.end = end
        self.gapped -= closed
        return -closed
