"""What catch-up (:mod:`node.sync`) talks to: the links it asks and answers through, what
it tells the node, and the check of a block's payload signatures ahead of its execution.

:class:`SyncLinks` is the peer side (``PeerManager``); :class:`SyncHost` the node's (a
block committed, the new head, a local fault); :data:`Precheck` the signature worker's
``check``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Protocol

from ledger.block import Block, Receipt
from ledger.tx import Transaction
from ledger.votes import CommitCertificate
from node.peers import Peer
from node.wire import SyncRequest


class SyncLinks(Protocol):
    """The links catch-up asks and answers through (``PeerManager``)."""

    @property
    def peers(self) -> Mapping[bytes, Peer]:
        """The connected peers by key."""
        ...

    def send(self, peer: Peer, msg: SyncRequest) -> None:
        """Queue a request for ``peer`` (dropped if its queue is full)."""
        ...

    async def deliver(self, peer: Peer, frame: bytes, timeout_s: float) -> bool:
        """Queue a response frame for ``peer``, waiting up to ``timeout_s`` for room."""
        ...


# Checks a block's payload signatures ahead of its execution (SignatureWorker.check).
Precheck = Callable[[Sequence[Transaction]], Awaitable[None]]


class SyncHost(Protocol):
    """What catch-up tells the node."""

    def synced(self, block: Block, cert: CommitCertificate, receipts: Sequence[Receipt]) -> None:
        """Catch-up committed ``block`` (its receipts as executed: no read-back)."""
        ...

    def sync_advanced(self, height: int) -> None:
        """Our head is ``height`` after a block catch-up committed."""
        ...

    def local_fault(self, height: int, message: str) -> None:
        """Our own store failed at ``height`` applying a certified block (a damaged or
        diverged store, not the peer's fault; already logged): the node stops."""
        ...
