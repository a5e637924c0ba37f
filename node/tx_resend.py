"""When to send pending transactions to the peers again: the network stalled with work.

A node gossips each transaction it admits once, in the next batch to every peer, and
validators do not relay each other's batches (they are a full mesh). A batch can still
miss a peer — dropped from a full send queue, refused by a full mempool, sent while a
link was down — and then the transaction sits in some mempools only. While blocks are
committed that costs little: each validator proposes in turn and takes its own. When
only such transactions are left, the validators without them have nothing to commit,
and a height starts only once validators with f+1 of the power have something, or
the idle heartbeat falls due (``empty_block_interval_ms``, 30 s by default;
node/consensus/rules.py): the transactions wait for it, once per height it takes for
one of their holders to propose.

So a node holding ready transactions, with no proposal for its current round and no
block committed for ``first_s``, sends what it would propose to every peer again (a
peer that holds them drops them as duplicates before their signatures are checked:
``Mempool.precheck_many``), and while the height stays where it is, again after
doubling intervals up to ``max_interval_s`` — a network stalled for another reason
(fewer than 2/3 of the power online) is not sent the same batch every few seconds. A
proposal that has come means a busy network, not an idle proposer: a loaded network
whose blocks take more than 2 s sent thousands of transactions again at every such
height before this condition.

Clock-free: callers pass ``now`` (seconds of a monotonic clock).
"""

from __future__ import annotations

FIRST_RESEND_S = 2.0  # two propose timeouts of the default genesis: a round has failed
MAX_RESEND_INTERVAL_S = 60.0


class StalledResend:
    """Says when a node with ready transactions and a height that does not move should
    send them again."""

    def __init__(
        self, first_s: float = FIRST_RESEND_S, max_interval_s: float = MAX_RESEND_INTERVAL_S
    ) -> None:
        self.first_s = first_s
        self.max_interval_s = max_interval_s
        self._height = -1  # the head height the current stall is at
        self.since = 0.0  # when it began: work here, and that head
        self._next_at = 0.0
        self._interval = first_s
        self.resends = 0  # how many times it said so (status, tests)

    def due(self, height: int, has_work: bool, now: float) -> bool:
        """Whether to send now: ``height`` is the committed head, ``has_work`` whether the
        node holds a ready transaction and no proposal has come for its current round.
        The count starts when both hold (a new head, or no work, starts it again): what
        just arrived was just gossiped."""
        if height != self._height or not has_work:
            self._height = height
            self.since = now
            self._interval = self.first_s
            self._next_at = now + self.first_s
            return False
        if now < self._next_at:
            return False
        self._interval = min(2 * self._interval, self.max_interval_s)
        self._next_at = now + self._interval
        self.resends += 1
        return True
