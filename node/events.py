"""In-process publish/subscribe of committed blocks and receipts.

The node publishes one :class:`BlockPublished` per commit; subscribers (the
``/v1/events`` WebSocket, metrics) get them on their own bounded queue, and a
subscriber that falls behind loses its oldest items rather than slowing the
node (``dropped`` counts them).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from ledger.block import Block, Receipt


@dataclass(frozen=True, slots=True)
class BlockPublished:
    block: Block
    receipts: tuple[Receipt, ...]


@dataclass(eq=False)
class Subscription:
    queue: asyncio.Queue[BlockPublished] = field(default_factory=lambda: asyncio.Queue(256))
    dropped: int = 0


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
            if sub.queue.full():
                sub.queue.get_nowait()
                sub.dropped += 1
            sub.queue.put_nowait(event)

    def __len__(self) -> int:
        return len(self._subs)
