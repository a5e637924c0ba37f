"""Catch-up: fetch committed blocks and certificates from peers, check, execute, commit.

A node that is behind (it hears a status or a signed message for a higher
height) asks one peer for a batch of blocks from its next height. Each block's
certificate is the next block's ``last_cert`` (or, for the last block of the
batch, the certificate sent with it); it must carry >2/3 of the validator set's
power for exactly that block. The block is then re-executed and must produce
the identical header before it is committed. Progress (height, rate, ETA) is
logged and exposed in ``/v1/status``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from ledger.block import Block
from ledger.encoding import encode
from ledger.errors import LedgerError
from ledger.votes import CommitCertificate
from node.executor import Executor
from node.peers import Peer
from node.wire import SyncRequest, SyncResponse

log = logging.getLogger("cityledger.sync")
REQUEST_TIMEOUT_S = 10.0
MAX_RESPONSE_BYTES = 8 * 1024 * 1024


@dataclass(slots=True)
class SyncProgress:
    syncing: bool = False
    start_height: int = 0
    target_height: int = 0
    current_height: int = 0
    started_at: float = 0.0
    blocks_per_s: float = 0.0
    txs_per_s: float = 0.0
    txs_applied: int = 0

    @property
    def eta_s(self) -> float | None:
        if not self.syncing or self.blocks_per_s <= 0:
            return None
        return max(0, self.target_height - self.current_height) / self.blocks_per_s


class Syncer:
    def __init__(
        self,
        executor: Executor,
        send: Callable[[Peer, SyncRequest | SyncResponse], None],
        peers: Callable[[], list[Peer]],
        on_committed: Callable[[Block, CommitCertificate], None],
        on_batch_done: Callable[[int], None],
        *,
        batch_blocks: int = 200,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.executor = executor
        self.send = send
        self.peers = peers
        self.on_committed = on_committed
        self.on_batch_done = on_batch_done
        self.batch_blocks = batch_blocks
        self.clock = clock
        self.progress = SyncProgress()
        self._outstanding: tuple[Peer, float] | None = None
        self.rejected_batches = 0

    @property
    def height(self) -> int:
        return self.executor.chain.head().height

    # --- asking -------------------------------------------------------------------------

    def behind(self, height: int) -> None:
        """Some peer has committed ``height``: catch up if we are behind.

        One block behind is usually a race we win by ourselves a moment later, so
        only a bigger gap asks at once; the heartbeat's :meth:`maybe_request`
        covers the rest.
        """
        if height > self.progress.target_height:
            self.progress.target_height = height
        if height > self.height + 1:
            self.maybe_request()

    def maybe_request(self) -> None:
        head = self.height
        if self.progress.target_height <= head:
            if self.progress.syncing:
                self._finish()
            return
        if self._outstanding is not None:
            peer, sent = self._outstanding
            if self.clock() - sent < REQUEST_TIMEOUT_S and peer in self.peers():
                return
            self._outstanding = None
        candidates = [p for p in self.peers() if p.height > head]
        if not candidates:
            return
        peer = max(candidates, key=lambda p: p.height)
        if not self.progress.syncing:
            self.progress = SyncProgress(
                True, head, self.progress.target_height, head, self.clock()
            )
            log.info("catching up from height %d to %d", head, self.progress.target_height)
        self._outstanding = (peer, self.clock())
        self.send(peer, SyncRequest(head + 1, self.batch_blocks))

    def _finish(self) -> None:
        p = self.progress
        elapsed = max(1e-9, self.clock() - p.started_at)
        log.info(
            "caught up at height %d: %d blocks, %d txs in %.1f s (%.0f tx/s)",
            p.current_height,
            p.current_height - p.start_height,
            p.txs_applied,
            elapsed,
            p.txs_applied / elapsed,
        )
        p.syncing = False

    # --- answering ----------------------------------------------------------------------

    def serve(self, peer: Peer, req: SyncRequest) -> None:
        chain = self.executor.chain
        head = chain.head().height
        blocks: list[Block] = []
        size = 0
        for height in range(req.from_height, min(head, req.from_height + req.max_blocks - 1) + 1):
            block = chain.block(height)
            if block is None:
                break
            size += len(encode(block.to_obj()))
            if blocks and size > MAX_RESPONSE_BYTES:
                break
            blocks.append(block)
        cert = chain.certificate(blocks[-1].height) if blocks else None
        self.send(peer, SyncResponse(tuple(blocks), cert))

    # --- applying -----------------------------------------------------------------------

    def apply(self, peer: Peer, resp: SyncResponse) -> bool:
        """Apply a batch; False (and nothing more applied) at the first bad block."""
        if self._outstanding is not None and self._outstanding[0] is peer:
            self._outstanding = None
        genesis = self.executor.genesis
        applied = 0
        bad = False
        for i, block in enumerate(resp.blocks):
            if block.height <= self.height:
                continue
            cert = resp.blocks[i + 1].last_cert if i + 1 < len(resp.blocks) else resp.tip_cert
            try:
                if cert is None:
                    raise LedgerError(f"no certificate for block {block.height}")
                cert.verify(
                    genesis.validators, genesis.chain_id, height=block.height, block_hash=block.hash
                )
                executed = self.executor.validate_block(block, None, certified=True)
                self.executor.commit(executed, cert)
            except LedgerError as exc:
                self.rejected_batches += 1
                bad = True
                log.warning("sync from %s: block %d rejected: %s", peer.name, block.height, exc)
                break
            applied += 1
            self.on_committed(block, cert)
            self._note(block)
        if applied:
            self.on_batch_done(self.height)
        self.maybe_request()
        return not bad

    def _note(self, block: Block) -> None:
        p = self.progress
        p.current_height = block.height
        p.txs_applied += len(block.txs)
        elapsed = max(1e-9, self.clock() - p.started_at)
        p.blocks_per_s = (p.current_height - p.start_height) / elapsed
        p.txs_per_s = p.txs_applied / elapsed
        if block.height % 500 == 0:
            log.info(
                "catch-up at height %d of %d (%.0f blocks/s, %.0f tx/s, ETA %.0f s)",
                block.height,
                p.target_height,
                p.blocks_per_s,
                p.txs_per_s,
                p.eta_s or 0,
            )
