"""The mempool: admitted transactions waiting for a block.

Admission checks, in order of cost: size and chain id, duplicates (pending or
committed), the nonce window, the signature (once: the result goes into the
shared :class:`SignatureCache`), then the contract's own admission check
(sender registered and not revoked, role allowed, payload shape). Transactions
wait per sender in nonce order; a proposal takes, round-robin across senders,
each sender's run of consecutive nonces starting at its next expected one.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from contracts import identity
from contracts.engine import StateReader, check_transaction, next_nonce
from ledger.errors import LedgerError, SignatureError
from ledger.genesis import Genesis
from ledger.tx import MAX_TX_BYTES, Transaction
from node.sigcache import SignatureCache

MAX_NONCE_GAP = 256
# The only kinds that write member records — what admission reads besides the nonce.
MEMBERSHIP_KINDS = frozenset(h.kind for h in identity.HANDLERS)
RECHECK_MAX_PENDING = 5000  # a larger backlog is not re-checked (it would stall the node)


class MempoolError(LedgerError):
    """A transaction the mempool will not take; ``http_status`` says how the API answers."""

    def __init__(self, message: str, *, code: str, http_status: int) -> None:
        super().__init__(message, code=code)
        self.http_status = http_status


@dataclass(frozen=True, slots=True)
class Admitted:
    tx: Transaction
    size: int


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
    ) -> None:
        self.genesis = genesis
        self.sigs = sigs
        self._state = state  # returns a fresh reader of the latest committed state
        self._is_committed = is_committed
        self.max_txs = max_txs
        self._by_hash: dict[bytes, Transaction] = {}
        self._by_sig: dict[bytes, Transaction] = {}  # the same, by signature (wire decode)
        self._by_sender: OrderedDict[bytes, dict[int, Transaction]] = OrderedDict()
        self._next: dict[bytes, int] = {}  # committed next nonce per sender (cached)
        self._reads: dict[bytes, bytes | None] = {}  # admission's state reads (see _Reader)

    def __len__(self) -> int:
        return len(self._by_hash)

    @property
    def full(self) -> bool:
        """No room for another transaction: :meth:`add` refuses with ``mempool_full``."""
        return len(self._by_hash) >= self.max_txs

    def __contains__(self, tx_hash: object) -> bool:
        return tx_hash in self._by_hash

    def by_signature(self, signature: bytes) -> Transaction | None:
        """The pending transaction carrying ``signature``, if any (see ``node.wire``)."""
        return self._by_sig.get(signature)

    def add(self, tx: Transaction) -> None:
        """Admit ``tx`` or raise :class:`MempoolError` with the answer for the client."""
        if tx.chain_id != self.genesis.chain_id:
            raise MempoolError(
                f"transaction is for chain {tx.chain_id!r}", code="wrong_chain", http_status=400
            )
        if len(tx.body) + 64 > MAX_TX_BYTES:
            raise MempoolError("transaction too large", code="too_large", http_status=413)
        if tx.hash in self._by_hash:
            raise MempoolError("transaction already pending", code="duplicate", http_status=409)
        if self._is_committed(tx.hash):
            raise MempoolError("transaction already committed", code="duplicate", http_status=409)
        expected = self._expected_nonce(tx.sender)
        pending = self._by_sender.get(tx.sender, {})
        if tx.nonce < expected:
            raise MempoolError(
                f"nonce {tx.nonce} already used; next is {expected}",
                code="bad_nonce",
                http_status=409,
            )
        if tx.nonce in pending:
            raise MempoolError(
                f"another transaction with nonce {tx.nonce} is pending",
                code="bad_nonce",
                http_status=409,
            )
        if tx.nonce > expected + MAX_NONCE_GAP:
            raise MempoolError(
                f"nonce {tx.nonce} is too far ahead of {expected}",
                code="bad_nonce",
                http_status=409,
            )
        if self.full:
            raise MempoolError("mempool full, retry later", code="mempool_full", http_status=429)
        try:
            self.sigs.verify(tx)
        except SignatureError as exc:
            raise MempoolError(str(exc), code="bad_signature", http_status=401) from None
        problem = check_transaction(_Reader(self), self.genesis, tx, expected_nonce=tx.nonce)
        if problem is not None:
            raise MempoolError(
                problem.message, code=problem.code, http_status=getattr(problem, "http_status", 400)
            )
        self._by_hash[tx.hash] = tx
        self._by_sig[tx.signature] = tx
        self._by_sender.setdefault(tx.sender, {})[tx.nonce] = tx

    def reap(self, max_txs: int, max_bytes: int) -> list[Transaction]:
        """Transactions for a proposal: per-sender consecutive nonces, senders round-robin."""
        runs: list[list[Transaction]] = []
        for sender, by_nonce in self._by_sender.items():
            nonce = self._expected_nonce(sender)
            run = []
            while nonce in by_nonce:
                run.append(by_nonce[nonce])
                nonce += 1
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
        """Forget committed transactions and every pending one whose nonce is now used."""
        touched: set[bytes] = set()
        for tx in committed:
            touched.add(tx.sender)
            self._drop(tx.hash)
            if tx.kind in MEMBERSHIP_KINDS:
                self._reads.clear()
        for sender in touched:
            self._next.pop(sender, None)
            if sender not in self._by_sender:
                continue  # nothing pending: its nonce is read again when needed
            expected = self._expected_nonce(sender)
            for nonce, tx in list(self._by_sender.get(sender, {}).items()):
                if nonce < expected:
                    self._drop(tx.hash)

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

    def _cached_get(self, key: bytes) -> bytes | None:
        if key in self._reads:
            return self._reads[key]
        value = self._state().get(key)
        if len(self._reads) >= 100_000:
            self._reads.clear()
        self._reads[key] = value
        return value

    def _expected_nonce(self, sender: bytes) -> int:
        if sender not in self._next:
            self._next[sender] = next_nonce(self._state(), sender)
            if len(self._next) > 100_000:
                self._next.clear()
        return self._next[sender]

    def _drop(self, tx_hash: bytes) -> None:
        tx = self._by_hash.pop(tx_hash, None)
        if tx is None:
            return
        if self._by_sig.get(tx.signature) is tx:
            del self._by_sig[tx.signature]
        by_nonce = self._by_sender.get(tx.sender)
        if by_nonce is not None:
            by_nonce.pop(tx.nonce, None)
            if not by_nonce:
                del self._by_sender[tx.sender]


class _Reader:
    """The latest committed state as admission reads it (member records), cached until
    a block with a membership kind is committed (:meth:`Mempool.update`)."""

    __slots__ = ("_pool",)

    def __init__(self, pool: Mempool) -> None:
        self._pool = pool

    def get(self, key: bytes) -> bytes | None:
        return self._pool._cached_get(key)
