"""In-process publish/subscribe of committed blocks and receipts.

The node publishes one :class:`BlockPublished` per commit; subscribers (the
``/v1/events`` WebSocket, metrics) get them on their own bounded queue, and a
subscriber that falls behind loses its oldest items rather than slowing the
node (``dropped`` counts them).

The bound is in events *and* in transactions: 256 events of full blocks (2,000
transactions each, with receipts) would keep some 500 MB of decoded blocks alive for
one client that stopped reading; :data:`MAX_QUEUED_TXS` caps what one subscription holds
at about 20 MB (the blocks are shared between subscriptions, so all of them together
hold no more than the slowest one).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from ledger.block import Block, Receipt

MAX_QUEUED_EVENTS = 256
MAX_QUEUED_TXS = 10_000


@dataclass(frozen=True, slots=True)
class BlockPublished:
    block: Block
    receipts: tuple[Receipt, ...]


class EventQueue(asyncio.Queue[BlockPublished]):
    """An :class:`asyncio.Queue` that counts the transactions of the blocks it holds."""

    def __init__(self, maxsize: int = MAX_QUEUED_EVENTS) -> None:
        self.txs = 0
        super().__init__(maxsize)

    def _put(self, item: BlockPublished) -> None:
        self.txs += len(item.block.txs)
        super()._put(item)

    def _get(self) -> BlockPublished:
        item = super()._get()
        self.txs -= len(item.block.txs)
        return item


@dataclass(eq=False)
class Subscription:
    queue: EventQueue = field(default_factory=EventQueue)
    dropped: int = 0
    max_txs: int = MAX_QUEUED_TXS

    def offer(self, event: BlockPublished) -> None:
        """Queue ``event``, dropping the oldest while the queue is full or holds more
        than :attr:`max_txs` transactions with it (the newest event always goes in)."""
        queue, size = self.queue, len(event.block.txs)
        while not queue.empty() and (queue.full() or queue.txs + size > self.max_txs):
            queue.get_nowait()
            self.dropped += 1
        queue.put_nowait(event)


class EventHub:
    def __init__(self) -> None:
        self._subs: set[Subscription] = set()

    def subscribe(self) -> Subscription:
        sub = Subscription()
        self._subs.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self._subs.discard(sub)

    def publish(self, event: BlockPublished) -> None:
        for sub in self._subs:
            sub.offer(event)

    def __len__(self) -> int:
        return len(self._subs)
