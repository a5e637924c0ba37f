"""Admission of transactions to the mempool, from the API or from a peer's batch.

The cheap checks first (sender, nonce window, limits: ``Mempool.precheck_many``); only
what passes them has its signature checked, in the signature worker (another core);
``Mempool.add`` then finds each verdict cached. A sender refused "not now" (429) has its
later transactions of the same batch refused with it (:class:`HeldBehindError`), so that
none of them waits behind its gap.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ledger.tx import Transaction
from node.api.metrics import Metrics
from node.mempool import Mempool, MempoolError
from node.mempool_errors import HeldBehindError
from node.sigcache import SignatureWorker

Forward = Callable[[list[Transaction]], None]  # takes what was admitted, to gossip it


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
        # Clients' transactions let through the budget and not yet added (their
        # signatures are being checked): counted against the room, or every batch that
        # arrives meanwhile finds the same room (measured: pools at 2-3 times the
        # capacity, accepted p50 3-3.7 s against a 2 s budget, 2026-12-04)
        self._in_flight = 0

    async def admit(
        self, txs: list[Transaction], forward: Forward | None, *, client: bool = False
    ) -> list[MempoolError | None]:
        """Admit ``txs``; the admitted ones are handed to ``forward`` (for gossip), once
        they are in the mempool. Returns, for each transaction, why it was refused, or None.

        A callback, not a list: the gossip loop swaps its outbox for a new one every
        ``gossip_interval_ms``, and a list taken before the signature check was often
        the one already sent — half of what clients sent was never gossiped and waited
        for its own node's turn to propose (measured 2026-12-04: 2,860-4,319 of each
        node's ~7,125 reached its peers; each block held mostly its proposer's clients'
        transactions).

        ``client``: they come from the API, so the latency budget applies: the batch's
        first transactions up to the room this node's clients have in it are considered,
        the rest refused ``overloaded`` (in order, so no sender's later nonce is taken
        without its earlier one). A peer's batch was admitted by the peer's budget and is
        not cut again. Between the cut and the mempool, the batch holds its place in the
        room (``_in_flight``)."""
        if not client:
            return await self._admit(txs, forward, client=False)
        txs, cut = self._within_budget(txs)
        self._in_flight += len(txs)
        try:
            return await self._admit(txs, forward, client=True) + cut
        finally:
            self._in_flight -= len(txs)

    async def _admit(
        self, txs: list[Transaction], forward: Forward | None, *, client: bool
    ) -> list[MempoolError | None]:
        held = _HeldSenders()
        early = [
            held.judge(tx, e) for tx, e in zip(txs, self.mempool.precheck_many(txs), strict=True)
        ]
        await self.signature_worker.check([t for t, e in zip(txs, early, strict=True) if e is None])
        now = time.monotonic()  # the mempool's TTL clock
        held = _HeldSenders()  # again: add may refuse "not now" what the precheck let through
        results: list[MempoolError | None] = []
        admitted: list[Transaction] = []
        for tx, first in zip(txs, early, strict=True):
            error = held.judge(tx, first)
            if error is None:
                try:
                    self.mempool.add(tx, now=now, local=client)
                except MempoolError as exc:
                    error = held.judge(tx, exc.as_answer())
                else:
                    admitted.append(tx)
            results.append(error)
        if admitted:
            if forward is not None:
                forward(admitted)
            self.on_arrival()
        self.metrics.set_mempool(len(self.mempool))
        return results

    def client_room(self) -> int:
        """How many more client transactions the budget takes now, those being admitted
        already counted."""
        return max(0, self.mempool.client_room(time.monotonic()) - self._in_flight)

    def refuse_over_budget(self, count: int) -> MempoolError:
        """The refusal of ``count`` client transactions beyond :meth:`client_room`, with
        their turn (and counted, and noted as clients turned away). The API refuses what
        a batch holds beyond the room without decoding it, once what fits is decoded."""
        refusal = self.mempool.overload_error(count, time.monotonic(), self._in_flight)
        self.metrics.overloaded.inc(count)
        return refusal

    def _within_budget(
        self, txs: list[Transaction]
    ) -> tuple[list[Transaction], list[MempoolError | None]]:
        """The transactions the budget has room for, and a refusal for each of the rest."""
        room = self.client_room()
        if room >= len(txs):
            return txs, []
        refusal = self.refuse_over_budget(len(txs) - room)
        return txs[:room], [refusal] * (len(txs) - room)


class _HeldSenders:
    """The senders of one batch refused "not now" so far: each later transaction of
    theirs in the batch is refused with them (:class:`HeldBehindError`)."""

    __slots__ = ("_refused",)

    def __init__(self) -> None:
        self._refused: dict[bytes, tuple[int, MempoolError]] = {}

    def judge(self, tx: Transaction, error: MempoolError | None) -> MempoolError | None:
        """``tx``'s answer, given ``error`` (its own, or None), in batch order."""
        refused = self._refused.get(tx.sender)
        if refused is not None:
            return HeldBehindError(*refused)
        if error is not None and error.http_status == 429:
            self._refused[tx.sender] = (tx.nonce, error)
        return error
