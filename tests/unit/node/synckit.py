"""A syncer (node/sync.py) over a small real chain, for the catch-up tests: its links
and host recorded by a :class:`Harness`, peers with no socket, a source chain to sync
from and the answers it gives."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from ledger.block import Block, Receipt
from ledger.votes import CommitCertificate
from node.peers import Peer
from node.sync import Syncer
from node.wire import SyncRequest, SyncResponse, decode_message
from tests.unit.clock_kit import ManualClock
from tests.unit.node.chainkit import Kit, fake_peer, register_member_tx

OBSERVER = b"\x07" * 32


def peer(name: str, key: bytes, height: int) -> Peer:
    return Peer(key=key, name=name, ws=None, dialed_by_us=True, height=height)  # type: ignore[arg-type]


class Harness:
    """A syncer over a kit's chain; the harness is its links (``linked`` are the peers,
    what it sends lands in ``sent``) and its host (``batches``, ``faults``)."""

    def __init__(self, peers: list[Peer], kit: Kit | None = None, seed: int = 1) -> None:
        self.kit = kit or Kit()
        self.clock = ManualClock()
        self.linked = peers
        self.sent: list[tuple[Peer, Any]] = []
        self.faults: list[tuple[int, str]] = []
        self.batches: list[int] = []
        self.syncer = Syncer(
            self.kit.executor, self, self, clock=self.clock, rng=random.Random(seed)
        )

    # --- SyncLinks ---

    @property
    def peers(self) -> dict[bytes, Peer]:
        return {p.key: p for p in self.linked}

    def send(self, peer: Peer, msg: SyncRequest) -> None:
        self.sent.append((peer, msg))

    async def deliver(self, peer: Peer, frame: bytes, timeout_s: float) -> bool:
        self.sent.append((peer, decode_message(frame, len(frame))))
        return True

    # --- SyncHost ---

    def synced(self, block: Block, cert: CommitCertificate, receipts: Sequence[Receipt]) -> None:
        pass

    def sync_advanced(self, height: int) -> None:
        self.batches.append(height)

    def local_fault(self, height: int, message: str) -> None:
        self.faults.append((height, message))

    def asked(self) -> list[str]:
        return [p.name for p, m in self.sent if isinstance(m, SyncRequest)]


def source_chain(blocks: int) -> Kit:
    src = Kit()
    for i in range(blocks):
        src.commit([register_member_tx(i + 1, f"sync-member-{i}", ["viewer"])])
    return src


def one_peer_ahead(blocks: int) -> tuple[Kit, Peer, Harness]:
    """A source chain of ``blocks`` blocks, one peer (validator 1) at its head and a
    harness that syncs from that peer alone: where most catch-up tests start."""
    src = source_chain(blocks)
    p = fake_peer(1, blocks)
    return src, p, Harness([p])


def response(src: Kit, first: int, last: int) -> SyncResponse:
    blocks = tuple(b for h in range(first, last + 1) if (b := src.chain.block(h)) is not None)
    return SyncResponse(blocks, src.chain.certificate(last))
