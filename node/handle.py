"""The face a running node shows to its HTTP API (and to in-process tests).

The API layer depends on this protocol only, so it can be tested with a chain
built directly from executed blocks, without consensus or peers.
"""

from __future__ import annotations

from typing import Protocol

from ledger.encoding import Value
from ledger.genesis import Genesis
from ledger.head import HeadStatement
from ledger.tx import Transaction
from node.bounded import BoundedPart
from node.chain import ChainStore
from node.events import EventHub
from node.mempool import Mempool, MempoolError
from node.service import Queries


class NodeHandle(Protocol):
    genesis: Genesis
    chain: ChainStore
    queries: Queries
    mempool: Mempool
    events: EventHub

    @property
    def public_key(self) -> bytes:
        """The node's own key: signed reads name it (node.api.auth)."""
        ...

    async def submit(self, txs: list[Transaction]) -> list[MempoolError | None]:
        """Admit each transaction to the mempool (and gossip the admitted ones)."""
        ...

    def client_room(self) -> int:
        """How many more client transactions the latency budget takes now (the API asks
        before it decodes a batch: node/admission.py)."""
        ...

    def refuse_over_budget(self, count: int) -> MempoolError:
        """The refusal, with its turn, of ``count`` client transactions beyond
        :meth:`client_room`."""
        ...

    def status(self) -> dict[str, Value]:
        """Height, latest block hash and time, peers, mempool size, sync progress, rounds."""
        ...

    def head_statements(self, height: int) -> list[HeadStatement]:
        """The latest head statement of each validator this node holds for block
        ``height`` (memory only, the last few heights: ledger/head.py)."""
        ...

    def bounded_parts(self) -> list[BoundedPart]:
        """Each bounded structure the node holds in memory, its size and bound
        (node/memory.py; sampled by /metrics)."""
        ...

    def evidence(self) -> list[dict[str, Value]]:
        """Equivocation evidence this node holds that no block has committed yet
        (canonical objects); committed evidence is read from ``chain``."""
        ...
