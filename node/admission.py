"""Admission of transactions to the mempool, from the API or from a peer's batch.

The cheap checks first (sender, nonce window, limits: ``Mempool.precheck_many``); only
what passes them has its signature checked, in the signature worker (another core);
``Mempool.add`` then finds each verdict cached.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ledger.tx import Transaction
from node.api.metrics import Metrics
from node.mempool import Mempool, MempoolError
from node.sigcache import SignatureWorker


class Admission:
    """Admits transactions to ``mempool``; tells consensus when some arrived
    (``on_arrival``: a height waiting for something to commit starts, a proposer
    waiting to fill its block goes on)."""

    def __init__(
        self,
        mempool: Mempool,
        signature_worker: SignatureWorker,
        metrics: Metrics,
        on_arrival: Callable[[], None],
    ) -> None:
        self.mempool = mempool
        self.signature_worker = signature_worker
        self.metrics = metrics
        self.on_arrival = on_arrival

    async def admit(
        self, txs: list[Transaction], outbox: list[Transaction] | None, *, client: bool = False
    ) -> list[MempoolError | None]:
        """Admit ``txs``; each admitted one also goes to ``outbox`` (for gossip). Returns,
        for each transaction, why it was refused, or None.

        ``client``: they come from the API, so the latency budget applies: the batch's
        first transactions up to the room this node's clients have in it are considered,
        the rest refused ``overloaded`` (in order, so no sender's later nonce is taken
        without its earlier one). A peer's batch was admitted by the peer's budget and is
        not cut again."""
        cut: list[MempoolError | None] = []
        if client:
            txs, cut = self._within_budget(txs)
        early = self.mempool.precheck_many(txs)
        await self.signature_worker.check([t for t, e in zip(txs, early, strict=True) if e is None])
        now = time.monotonic()  # the mempool's TTL clock
        results: list[MempoolError | None] = []
        for tx, error in zip(txs, early, strict=True):
            if error is None:
                try:
                    self.mempool.add(tx, now=now, local=client)
                except MempoolError as exc:
                    error = exc
                else:
                    if outbox is not None:
                        outbox.append(tx)
            results.append(error)
        if any(r is None for r in results):
            self.on_arrival()
        self.metrics.set_mempool(len(self.mempool))
        return results + cut

    def _within_budget(
        self, txs: list[Transaction]
    ) -> tuple[list[Transaction], list[MempoolError | None]]:
        """The transactions the budget has room for, and a refusal for each of the rest."""
        now = time.monotonic()
        room = self.mempool.client_room(now)
        if room >= len(txs):
            return txs, []
        refusal = self.mempool.overload_error(len(txs) - room, now)
        self.metrics.overloaded.inc(len(txs) - room)
        return txs[:room], [refusal] * (len(txs) - room)
