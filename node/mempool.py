"""The mempool: admitted transactions waiting for a block.

Admission checks, cheapest first, so that what will be refused costs little — above
all, no Ed25519 verification for a sender the node does not know:

1. chain id and size; already pending;
2. the sender is an active member in the latest state (its member record, cached);
3. already committed; the nonce window (the committed next nonce .. +
   :data:`MAX_NONCE_GAP`; past it, 429 ``sender_backlog`` for the nonce right after the
   sender's pending ready run, which will move the window), the nonce not already
   pending;
4. pinning limits: at most ``max_gapped_per_sender`` transactions of one sender waiting
   behind a nonce gap (*gapped*: not part of the run of consecutive nonces that starts
   at its committed next nonce), at most ``max_pending_per_org`` pending for the
   sender's organisation, and room: a full pool makes room for a *ready* transaction
   by evicting a gapped one (from the sender with the most, its highest nonce); a
   gapped transaction never evicts anything;
5. the signature, once: :class:`SignatureCache` remembers good and bad verdicts, also
   those of the signature worker;
6. the contract's admission check (kind known, role allowed, payload shape).

:meth:`Mempool.precheck_many` runs 1-4 alone on a batch (nothing changes), so that only
its survivors are handed to the signature worker; :meth:`Mempool.add` runs them all
again (the state may have moved while the worker ran) and admits. A refusal changes
nothing.

Each pending transaction has an arrival time, ``now`` as the caller gives it (seconds
of a monotonic clock; nothing here reads a clock), and is dropped ``ttl_s`` after it
by :meth:`Mempool.expire` (also run by :meth:`Mempool.add`). Transactions wait per
sender in nonce order; a proposal takes, round-robin across senders, each sender's run
of consecutive nonces starting at its next expected one.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable

from contracts import identity
from contracts.engine import ContractError, StateReader, authenticate, check_transaction
from ledger.errors import SignatureError
from ledger.genesis import Genesis
from ledger.tx import MAX_TX_BYTES, Transaction
from node.admission_reads import AdmissionReads
from node.latency_budget import LatencyBudget
from node.mempool_errors import MempoolError as MempoolError
from node.mempool_errors import OverloadedError as OverloadedError
from node.mempool_errors import SenderBacklogError
from node.sender_queue import ImaginedRun, SenderQueue
from node.sigcache import SignatureCache

MAX_NONCE_GAP = 256
# The only kinds that write member records — what admission reads besides the nonce.
MEMBERSHIP_KINDS = frozenset(h.kind for h in identity.HANDLERS)
RECHECK_MAX_PENDING = 5000  # a larger backlog is not re-checked (it would stall the node)
DEFAULT_MAX_GAPPED_PER_SENDER = 128
DEFAULT_MAX_PENDING_PER_ORG = 10_000
DEFAULT_TTL_S = 300.0
TYPICAL_TX_BYTES = 400  # about a transaction of the bench mix, body and signature
DEFAULT_MAX_BYTES = 64 * 1024 * 1024
"""Encoded bytes pending at most (a transaction may be 65 KiB: the count alone would let
50,000 of them hold 3 GiB); decoded, they take about three times as much memory."""


class Mempool:
    """Pending transactions, per sender, in nonce order."""

    def __init__(
        self,
        genesis: Genesis,
        sigs: SignatureCache,
        state: Callable[[], StateReader],
        is_committed: Callable[[bytes], bool],
        *,
        max_txs: int = 50_000,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_gapped_per_sender: int = DEFAULT_MAX_GAPPED_PER_SENDER,
        max_pending_per_org: int = DEFAULT_MAX_PENDING_PER_ORG,
        ttl_s: float = DEFAULT_TTL_S,
        budget: LatencyBudget | None = None,
    ) -> None:
        """``budget``: what clients may add, from the commit rate (default: off)."""
        self.genesis = genesis
        self.sigs = sigs
        self._state = state  # returns a fresh reader of the latest committed state
        self._is_committed = is_committed
        self.max_txs = max_txs
        self.max_bytes = max_bytes
        self.bytes = 0  # encoded size of the pending transactions (body + signature)
        self.max_gapped_per_sender = max_gapped_per_sender
        self.max_pending_per_org = max_pending_per_org
        self.ttl_s = ttl_s
        self.budget = budget if budget is not None else LatencyBudget(0.0, 0)
        self._by_hash: dict[bytes, Transaction] = {}
        self._by_sig: dict[bytes, Transaction] = {}  # the same, by signature (wire decode)
        self._arrived: dict[bytes, float] = {}  # hash -> arrival, in arrival order
        self._local: set[bytes] = set()  # hashes of the pending ones this node's clients sent
        self._came_gapped: set[bytes] = set()  # pending ones that arrived behind a nonce gap
        self._local_came_gapped = 0  # of them, how many this node's clients sent
        self.committed_arrivals: list[float] = []  # when the last update's committed ones arrived
        self.committed_local_arrivals: list[float] = []  # of them, those this node's clients sent
        self.committed_local = 0  # of the last update's committed ones, how many were local
        self._queues: OrderedDict[bytes, SenderQueue] = OrderedDict()
        self._reads = AdmissionReads(state)  # the latest state, cached for admission
        self._org_pending: dict[str, int] = {}
        self._gapped_of: dict[bytes, int] = {}  # senders with gapped transactions -> how many
        self._gapped = 0
        self.expired = 0  # dropped by the TTL
        self.evicted = 0  # gapped ones dropped to make room

    def __len__(self) -> int:
        return len(self._by_hash)

    @property
    def mean_tx_bytes(self) -> float:
        """The pending transactions' mean encoded size (:data:`TYPICAL_TX_BYTES` when
        none is pending)."""
        return self.bytes / len(self._by_hash) if self._by_hash else TYPICAL_TX_BYTES

    @property
    def cached_senders(self) -> int:
        """Senders whose next nonce is cached (at most
        ``node.admission_reads.NONCE_CACHE_SENDERS``)."""
        return self._reads.cached_senders

    @property
    def cached_read_bytes(self) -> int:
        """Estimated memory of admission's cached state reads (at most
        ``node.admission_reads.READ_CACHE_BYTES``)."""
        return self._reads.cached_bytes

    @property
    def gapped(self) -> int:
        """Pending transactions waiting behind a nonce gap of their sender."""
        return self._gapped

    @property
    def ready(self) -> int:
        """Pending transactions a proposal could take now (not behind a nonce gap)."""
        return len(self._by_hash) - self._gapped

    @property
    def local_pending(self) -> int:
        """Pending transactions that this node's own clients sent (not gossiped) and
        that arrived ready. One that arrived behind its sender's nonce gap is not
        counted: it cannot be proposed, and counted it held the node's share while the
        earlier nonce that would free it was refused for want of that share."""
        return len(self._local) - self._local_came_gapped

    def client_room(self, now: float) -> int:
        """How many more transactions this node's clients may add within the latency
        budget (:mod:`node.latency_budget`)."""
        return self.budget.client_room(self.ready, self.local_pending, now)

    def overloaded(self, now: float, count: int = 1) -> MempoolError | None:
        """The refusal of ``count`` client transactions while the budget has no room for
        one more, or None."""
        if self.client_room(now) > 0:
            return None
        return self.overload_error(count, now)

    def overload_error(self, refused: int, now: float, in_flight: int = 0) -> OverloadedError:
        """The refusal of ``refused`` client transactions beyond the budget's room, with
        ``in_flight`` more on their way in: the client's turn, once there is room for
        the first of them.

        The drain is reckoned for what waits before the request (the ready ones and those
        in flight), not for the request itself, whose size takes its place among the
        turns instead — and at most the node's share of the capacity, the most one
        commit lets it take (the rest is refused again then, with a later turn).
        Reckoned for all of a request, a client's retry of hundreds of transactions was
        told the whole budget while the next commit had room for it, and the next
        proposer waited 220-315 ms of each saturated height for its clients (measured
        2026-12-07, docs/performance.md "Where a height's time goes")."""
        self.budget.turned_away()
        turn_txs = min(refused, self.budget.own_capacity(now))
        return OverloadedError(
            self.budget.retry_after_s(
                self.ready + in_flight,
                now,
                local_pending=self.local_pending + in_flight,
                refused=turn_txs,
            )
        )

    @property
    def full(self) -> bool:
        """No room even for a ready transaction: :meth:`add` refuses with ``mempool_full``."""
        return len(self._by_hash) - self._gapped >= self.max_txs

    def __contains__(self, tx_hash: object) -> bool:
        return tx_hash in self._by_hash

    def by_signature(self, signature: bytes) -> Transaction | None:
        """The pending transaction carrying ``signature``, if any (see ``node.wire``)."""
        return self._by_sig.get(signature)

    def pick(self, tx_hashes: Iterable[bytes]) -> list[Transaction] | None:
        """The pending transactions with these hashes, in order; None if any is not here."""
        by_hash, out = self._by_hash, []
        for tx_hash in tx_hashes:
            tx = by_hash.get(tx_hash)
            if tx is None:
                return None
            out.append(tx)
        return out

    def pending_of_org(self, org: str) -> int:
        return self._org_pending.get(org, 0)

    # --- admission ----------------------------------------------------------------------

    def sender_refusal(self, sender: bytes) -> MempoolError | None:
        """Why nothing from ``sender`` is admitted (not an active member), or None.

        The API asks this of a transaction's sender field before decoding the rest.
        """
        try:
            self._sender_org(sender)
        except MempoolError as exc:
            return exc
        return None

    def precheck(self, tx: Transaction) -> MempoolError | None:
        """The checks before the signature (1-4 of the module docstring); changes nothing."""
        return self.precheck_many([tx])[0]

    def precheck_many(self, txs: Iterable[Transaction]) -> list[MempoolError | None]:
        """:meth:`precheck` of a batch that :meth:`add` will take in this order.

        The pinning limits are checked as if every earlier transaction of the batch that
        passed were admitted, so that a batch closing its sender's nonce gap is not taken
        for a gapped one: nothing is refused here that :meth:`add` would admit after the
        earlier ones. (If an earlier one then fails its signature, a later one refused
        here for a limit might have fitted; so might a gapped one at a full pool, where
        which gapped transaction is evicted is not imagined. Either was answered 429/409
        and can be sent again.) Everything let through is checked again by :meth:`add`.
        """
        out: list[MempoolError | None] = []
        runs: dict[bytes, ImaginedRun] = {}  # what the batch would do to each sender's queue
        org_added: dict[str, int] = {}
        size, gapped = len(self._by_hash), self._gapped
        for tx in txs:
            try:
                imagined = runs.get(tx.sender)
                org, expected, queue = self._stable_checks(
                    tx, None if imagined is None else imagined.end
                )
            except MempoolError as exc:
                out.append(exc.as_answer())
                continue
            run = runs.get(tx.sender)
            if run is None:
                run = runs[tx.sender] = ImaginedRun.of(queue, expected)
            if tx.nonce in run.added:  # the same nonce twice in one batch: add decides
                out.append(None)
                continue
            ready = tx.nonce == run.end
            try:
                self._limit_checks(
                    org, self._org_pending.get(org, 0) + org_added.get(org, 0),
                    run.gapped, run.end, ready, size, gapped,
                )  # fmt: skip
            except MempoolError as exc:
                out.append(exc.as_answer())
                continue
            out.append(None)
            org_added[org] = org_added.get(org, 0) + 1
            if size >= self.max_txs:
                gapped -= 1  # a gapped one is evicted for it
            else:
                size += 1
            gapped += run.admit(tx.nonce, queue)
        return out

    def add(self, tx: Transaction, *, now: float = 0.0, local: bool = False) -> None:
        """Admit ``tx`` (arrived at ``now``; ``local``: from this node's own clients) or
        raise :class:`MempoolError` with the answer."""
        self.expire(now)
        org, expected, queue = self._stable_checks(tx)
        run_end = expected if queue is None else queue.run_end
        self._limit_checks(
            org, self._org_pending.get(org, 0),
            0 if queue is None else queue.gapped, run_end, tx.nonce == run_end,
            len(self._by_hash), self._gapped,
        )  # fmt: skip
        if self.bytes + len(tx.body) + 64 > self.max_bytes:
            raise MempoolError(
                f"mempool full ({self.max_bytes} bytes pending), retry later",
                code="mempool_full",
                http_status=429,
            )
        try:
            self.sigs.verify(tx)
        except SignatureError as exc:
            raise MempoolError(str(exc), code="bad_signature", http_status=401) from None
        problem = check_transaction(self._reads, self.genesis, tx, expected_nonce=tx.nonce)
        if problem is not None:
            raise MempoolError(
                problem.message, code=problem.code, http_status=getattr(problem, "http_status", 400)
            )
        if len(self._by_hash) >= self.max_txs:  # _limit_checks: ready, and a gapped one exists
            self._evict_gapped()
        self._insert(tx, org, now)
        if local:
            self._local.add(tx.hash)
            self._local_came_gapped += tx.hash in self._came_gapped

    def _stable_checks(
        self, tx: Transaction, run_end: int | None = None
    ) -> tuple[str, int, SenderQueue | None]:
        """Checks 1-3: raise the refusal; else the sender's organisation, its committed next
        nonce and its queue. ``run_end``: where the sender's ready run ends if not where
        its queue says (a batch's earlier transactions imagined admitted)."""
        if tx.chain_id != self.genesis.chain_id:
            raise MempoolError(
                f"transaction is for chain {tx.chain_id!r}", code="wrong_chain", http_status=400
            )
        if len(tx.body) + 64 > MAX_TX_BYTES:
            raise MempoolError("transaction too large", code="too_large", http_status=413)
        if tx.hash in self._by_hash:
            raise MempoolError("transaction already pending", code="duplicate", http_status=409)
        org = self._sender_org(tx.sender)
        if self._is_committed(tx.hash):
            raise MempoolError("transaction already committed", code="duplicate", http_status=409)
        expected = self._reads.next_nonce(tx.sender)
        queue = self._queues.get(tx.sender)
        if tx.nonce < expected:
            raise MempoolError(
                f"nonce {tx.nonce} already used; next is {expected}",
                code="bad_nonce",
                http_status=409,
            )
        if queue is not None and tx.nonce in queue.txs:
            raise MempoolError(
                f"another transaction with nonce {tx.nonce} is pending",
                code="bad_nonce",
                http_status=409,
            )
        if tx.nonce > expected + MAX_NONCE_GAP:
            if run_end is None and queue is not None:
                run_end = queue.run_end
            if tx.nonce == run_end:  # the next after a pending ready run
                raise SenderBacklogError(tx.nonce, expected, run_end - expected, MAX_NONCE_GAP)
            raise MempoolError(
                f"nonce {tx.nonce} is too far ahead of {expected}",
                code="bad_nonce",
                http_status=409,
            )
        return org, expected, queue

    def _sender_org(self, sender: bytes) -> str:
        """The organisation of an active member ``sender``; else raise the refusal."""
        try:
            return authenticate(self._reads, sender).org
        except ContractError as exc:
            raise MempoolError(exc.message, code=exc.code, http_status=exc.http_status) from None

    def _limit_checks(
        self,
        org: str,
        org_pending: int,
        sender_gapped: int,
        run_end: int,
        ready: bool,
        size: int,
        gapped: int,
    ) -> None:
        """Check 4, the pinning limits, on the counts given."""
        if not ready and sender_gapped >= self.max_gapped_per_sender:
            raise MempoolError(
                f"the sender already has {sender_gapped} transactions waiting behind a nonce "
                f"gap (at most {self.max_gapped_per_sender}); send nonce {run_end} first",
                code="too_many_gapped",
                http_status=409,
            )
        if org_pending >= self.max_pending_per_org:
            raise MempoolError(
                f"organisation {org!r} already has {self.max_pending_per_org} transactions "
                "pending; retry later",
                code="org_quota",
                http_status=429,
            )
        if size >= self.max_txs and not (ready and gapped > 0):
            raise MempoolError("mempool full, retry later", code="mempool_full", http_status=429)

    # --- time ---------------------------------------------------------------------------

    def expire(self, now: float) -> int:
        """Drop what arrived ``ttl_s`` or more before ``now``; how many were dropped.

        Arrival order is the order of insertion, so only the oldest entries are looked at
        (``now`` must not go backwards: the caller's clock is monotonic).
        """
        cutoff = now - self.ttl_s
        dropped = 0
        arrived = self._arrived
        while arrived:
            tx_hash = next(iter(arrived))
            if arrived[tx_hash] > cutoff:
                break
            self._drop(tx_hash)
            dropped += 1
        self.expired += dropped
        return dropped

    # --- proposals and commits ----------------------------------------------------------

    def reap(self, max_txs: int, max_bytes: int) -> list[Transaction]:
        """Transactions for a proposal: per-sender consecutive nonces, senders round-robin."""
        runs: list[list[Transaction]] = []
        for sender, queue in list(self._queues.items()):
            if queue.base != self._reads.next_nonce(sender):
                self._rebase(sender)
                queue = self._queues.get(sender)  # type: ignore[assignment]
                if queue is None:
                    continue
            run = [queue.txs[n] for n in range(queue.base, queue.run_end)]
            if run:
                runs.append(run)
        out: list[Transaction] = []
        size = 0
        depth = 0
        while len(out) < max_txs and runs:
            still = []
            for run in runs:
                if depth < len(run):
                    tx = run[depth]
                    tx_size = len(tx.body) + 64
                    if size + tx_size > max_bytes or len(out) >= max_txs:
                        return out
                    out.append(tx)
                    size += tx_size
                    still.append(run)
            runs = still
            depth += 1
        return out

    def update(self, committed: Iterable[Transaction]) -> None:
        """Forget committed transactions (and their signature verdicts) and every pending
        one whose nonce is now used; ``committed_arrivals`` then holds the arrival times
        of the committed ones that were pending here and arrived ready, and
        ``committed_local_arrivals`` those of them this node's clients sent (the latency
        budget learns from them; one that arrived behind its sender's nonce gap waited
        for its sender, not for the queue — counted, they shrank the capacity for
        what clients sent out of order)."""
        committed = list(committed)
        self.sigs.forget(committed)
        arrived, gapped, local = self._arrived, self._came_gapped, self._local
        ready = [tx.hash for tx in committed if tx.hash in arrived and tx.hash not in gapped]
        self.committed_arrivals = [arrived[h] for h in ready]
        self.committed_local_arrivals = [arrived[h] for h in ready if h in local]
        self.committed_local = sum(1 for tx in committed if tx.hash in local)
        touched = {tx.sender for tx in committed}
        for tx in committed:
            self._drop(tx.hash)
        self._reads.after_commit(touched, any(tx.kind in MEMBERSHIP_KINDS for tx in committed))
        for sender in touched:
            if sender in self._queues:  # else its nonce is read again when needed
                self._rebase(sender)

    def after_block(self, committed: Iterable[Transaction]) -> int:
        """After a commit: re-check what is pending if the block changed a member record.

        Admission reads only the sender's member record (and its nonce, which
        :meth:`update` refreshes), and only membership kinds write member records: any
        other block leaves every pending transaction's check as it was.
        """
        if not any(tx.kind in MEMBERSHIP_KINDS for tx in committed):
            return 0
        if len(self._by_hash) > RECHECK_MAX_PENDING:
            return 0
        return self.recheck()

    def recheck(self) -> int:
        """Re-run the contract admission check on everything pending; drop what fails."""
        state = self._state()
        dropped = 0
        for tx in list(self._by_hash.values()):
            if check_transaction(state, self.genesis, tx, expected_nonce=tx.nonce) is not None:
                self._drop(tx.hash)
                dropped += 1
        return dropped

    # --- internals ----------------------------------------------------------------------

    def _insert(self, tx: Transaction, org: str, now: float) -> None:
        queue = self._queues.get(tx.sender)
        if queue is None:
            base = self._reads.next_nonce(tx.sender)
            queue = self._queues[tx.sender] = SenderQueue(org, base, base, {})
        before = queue.gapped
        queue.txs[tx.nonce] = tx
        if tx.nonce == queue.run_end:
            end = tx.nonce + 1
            while end in queue.txs:
                end += 1
            queue.run_end = end
        else:
            self._came_gapped.add(tx.hash)
        self._count_gapped(tx.sender, before, queue.gapped)
        self._org_pending[org] = self._org_pending.get(org, 0) + 1
        self._by_hash[tx.hash] = tx
        self._by_sig[tx.signature] = tx
        self._arrived[tx.hash] = now
        self.bytes += len(tx.body) + 64

    def _drop(self, tx_hash: bytes) -> None:
        tx = self._by_hash.pop(tx_hash, None)
        if tx is None:
            return
        self.bytes -= len(tx.body) + 64
        self._arrived.pop(tx_hash, None)
        if tx_hash in self._came_gapped:
            self._came_gapped.discard(tx_hash)
            self._local_came_gapped -= tx_hash in self._local
        self._local.discard(tx_hash)
        if self._by_sig.get(tx.signature) is tx:
            del self._by_sig[tx.signature]
        queue = self._queues.get(tx.sender)
        if queue is None or queue.txs.get(tx.nonce) is not tx:
            return
        before = queue.gapped
        del queue.txs[tx.nonce]
        if queue.base <= tx.nonce < queue.run_end:
            queue.run_end = tx.nonce  # what followed it now waits behind a gap
        self._count_gapped(tx.sender, before, queue.gapped)
        left = self._org_pending[queue.org] - 1
        if left:
            self._org_pending[queue.org] = left
        else:
            del self._org_pending[queue.org]
        if not queue.txs:
            del self._queues[tx.sender]

    def _rebase(self, sender: bytes) -> None:
        """The sender's committed next nonce moved: drop what it used, find the run again."""
        queue = self._queues.get(sender)
        if queue is None:
            return
        expected = self._reads.next_nonce(sender)
        for nonce, tx in list(queue.txs.items()):
            if nonce < expected:
                self._drop(tx.hash)
        queue = self._queues.get(sender)
        if queue is None:
            return
        before = queue.gapped
        end = expected
        while end in queue.txs:
            end += 1
        queue.base, queue.run_end = expected, end
        self._count_gapped(sender, before, queue.gapped)

    def _count_gapped(self, sender: bytes, before: int, after: int) -> None:
        if before == after:
            return
        self._gapped += after - before
        if after:
            self._gapped_of[sender] = after
        else:
            self._gapped_of.pop(sender, None)

    def _evict_gapped(self) -> None:
        """Make room: the sender with the most gapped transactions loses its farthest one."""
        sender = max(self._gapped_of, key=self._gapped_of.__getitem__)
        queue = self._queues[sender]
        self._drop(queue.txs[max(queue.txs)].hash)
        self.evicted += 1
