"""What follows each commit, by consensus or by catch-up.

The mempool and the evidence pool forget what the block committed, subscribers
(``/v1/events``) get the block with its receipts, the metrics count it; after a
commit by consensus the peers also hear our new height.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ledger.block import Block, Receipt
from ledger.votes import CommitCertificate
from node.api.metrics import Metrics
from node.chain import ChainStore
from node.consensus.evidence import EvidencePool
from node.events import BlockPublished, EventHub
from node.executor import ExecutedBlock
from node.mempool import Mempool
from node.peers import PeerManager
from node.sync import SyncProgress
from node.wire import StatusMsg


@dataclass(frozen=True, slots=True)
class CommitFanout:
    chain: ChainStore
    mempool: Mempool
    evidence_pool: EvidencePool
    events: EventHub
    metrics: Metrics
    peers: PeerManager

    def by_consensus(
        self,
        block: Block,
        block_time_s: float,
        done: ExecutedBlock | None,
        rounds: int,
        phases: Mapping[str, float] | None = None,
        stalls: Sequence[tuple[float, float]] = (),
    ) -> None:
        """``done``: the block as executed, if it is this one (receipts in memory: no
        read-back); ``rounds``: how many rounds the height took; ``phases``: where its
        time went, when this validator measured it (node/height_phases.py); ``stalls``:
        its rounds whose proposal never came, as (from, to) seconds before now
        (node/round_watch.py)."""
        if done is not None and done.block is block:
            receipts = done.receipts
        else:
            receipts = self.chain.receipts(block.height)
        self.events.publish(BlockPublished(block, tuple(receipts)))
        self.metrics.observe_commit(block.height, len(block.txs), block_time_s, rounds)
        if phases:
            self.metrics.observe_phases(phases)
        now = time.monotonic()
        pool = self.mempool
        waits = [now - arrived for arrived in pool.committed_arrivals]
        local_waits = [now - arrived for arrived in pool.committed_local_arrivals]
        pool.budget.committed(len(block.txs), now, waits, local_waits, stalls)
        local = self.mempool.committed_local
        self.mempool.budget.counted(local, len(block.txs) - local, now)
        self.metrics.admission_capacity.set(self.mempool.budget.capacity(now))
        self.metrics.admission_share.set(self.mempool.budget.share(now))
        self.metrics.set_mempool(len(self.mempool))
        self.peers.broadcast(StatusMsg(block.height))
        self.mempool.after_block(block.txs)
        self.evidence_pool.committed(block.evidence)

    def by_sync(
        self,
        block: Block,
        cert: CommitCertificate,
        receipts: Sequence[Receipt],
        progress: SyncProgress,
    ) -> None:
        self.mempool.update(block.txs)
        self.evidence_pool.committed(block.evidence)
        self.events.publish(BlockPublished(block, tuple(receipts)))
        self.metrics.observe_commit(block.height, len(block.txs), 0.0, cert.round + 1)
        p = progress
        span = max(1, p.target_height - p.start_height)
        self.metrics.set_sync(min(1.0, (p.current_height - p.start_height) / span))
