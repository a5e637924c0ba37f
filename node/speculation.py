"""Executing a proposal ahead of it, from its announced body (docs/consensus.md,
"Executing the proposal ahead").

A proposer's block is fixed before it is executed: :meth:`Executor.build_block` runs
the reaped transactions at the time it chose, with the certificate it holds, and a
failing transaction gets a failed receipt rather than leaving the block. So the
proposer first sends that body (:class:`~node.wire.AnnounceMsg`: height, round, time,
certificate, the transactions' hashes) to every validator, then executes it; each
validator executes the same body from its own mempool at the same time, instead of
after the proposal has arrived. When the proposal comes, :meth:`Executor.validate_block`
checks it as ever and takes the execution made here if, and only if, the proposal's
header is the one it made (the same hash: the same parent, transactions, time,
certificate, and so the same results).

Who may cause what: only the link of the round's proposer is listened to, for one body
a round, and only until that round's proposal has come; a body waits at most
:data:`WAIT_S` for transactions this node has not received yet. A byzantine proposer
thus costs each validator at most one wasted execution a round — what a proposal of its
own may cost already — and decides nothing: a body that does not match its proposal
is dropped unused.

On with ``[consensus] speculate = true``, the default since admission judges the waits
of a budget of blocks together (at first it raised the rate above saturation but also
the accepted p99 there; docs/performance.md, "Executing the proposal ahead" and "Judged
over a budget of blocks").
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable

from ledger.errors import LedgerError, StorageError
from ledger.tx import Transaction
from node.executor import Executor
from node.wire import AnnounceMsg

log = logging.getLogger(__name__)

WAIT_S = 0.1  # how long a body waits for transactions not in this node's mempool yet

# Outcomes, counted in Speculation.outcomes (/v1/status: consensus.speculation)
EXECUTED = "executed"  # executed ahead of its proposal
MISSING = "missing"  # some transactions never arrived in time: the proposal executes it
OVERTAKEN = "overtaken"  # its proposal came (or the round passed) before it could run
NO_BLOCK = "no_block"  # no block on our head could have its time, or executing it failed


class Pending:
    """What a speculation needs of the node: its pending transactions by hash, and
    whether the proposal of a round is still awaited."""

    def __init__(
        self,
        pick: Callable[[tuple[bytes, ...]], list[Transaction] | None],
        awaited: Callable[[int, int], bool],
    ) -> None:
        self.pick = pick
        self.awaited = awaited


class Speculation:
    """A validator's side: the bodies announced to it, each executed at most once."""

    def __init__(self, executor: Executor, pending: Pending, *, wait_s: float = WAIT_S) -> None:
        self.executor = executor
        self.pending = pending
        self.wait_s = wait_s
        self.arrived = asyncio.Event()  # set when transactions reach the mempool
        self.taken: tuple[int, int] = (0, -1)  # the last (height, round) whose body was taken
        self.held: tuple[bytes, AnnounceMsg] | None = None  # one for the next height
        self.outcomes: Counter[str] = Counter()

    def is_from_proposer(self, sender: bytes, msg: AnnounceMsg) -> bool:
        """``msg`` came from the link of its round's proposer, and names no more
        transactions than a block may hold."""
        params = self.executor.genesis.consensus
        if len(msg.tx_hashes) > params.max_block_txs:
            return False
        try:
            validators = self.executor.validators(msg.height)
        except LedgerError:  # a height too far ahead for its set to be known
            return False
        return validators.proposer(msg.height, msg.round) == sender

    def take(self, sender: bytes, msg: AnnounceMsg) -> bool:
        """Whether to execute ``msg`` (for the height and round we are in): the first
        body of its round, from the round's proposer."""
        if (msg.height, msg.round) <= self.taken or not self.is_from_proposer(sender, msg):
            return False
        self.taken = (msg.height, msg.round)
        return True

    def hold(self, sender: bytes, msg: AnnounceMsg) -> None:
        """Keep ``msg`` (for the height after ours) until we have committed ours."""
        if self.is_from_proposer(sender, msg):
            self.held = (sender, msg)

    def release(self, height: int) -> tuple[bytes, AnnounceMsg] | None:
        """The held body, if it is for ``height`` (the one just entered)."""
        held, self.held = self.held, None
        return held if held is not None and held[1].height == height else None

    async def run(self, sender: bytes, msg: AnnounceMsg) -> str:
        """Wait (up to ``wait_s``) for the body's transactions, then execute it, unless
        its proposal comes first. Returns (and counts) the outcome."""
        outcome = await self._run(sender, msg)
        self.outcomes[outcome] += 1
        return outcome

    async def _run(self, sender: bytes, msg: AnnounceMsg) -> str:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.wait_s
        while True:
            if not self.pending.awaited(msg.height, msg.round):
                return OVERTAKEN
            txs = self.pending.pick(msg.tx_hashes)
            if txs is not None:
                break
            left = deadline - loop.time()
            if left <= 0:
                return MISSING
            self.arrived.clear()
            try:
                async with asyncio.timeout(left):
                    await self.arrived.wait()
            except TimeoutError:
                pass
        if self.executor.chain.head().height + 1 != msg.height:
            return OVERTAKEN
        try:
            block_hash = self.executor.speculate(txs, msg.time_ms, sender, msg.last_cert)
        except StorageError:
            raise  # our own store: the node stops (the driver's task failure handler)
        except LedgerError as exc:
            log.debug("announced body at %d/%d failed: %s", msg.height, msg.round, exc)
            return NO_BLOCK
        return NO_BLOCK if block_hash is None else EXECUTED
