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

from contracts.engine import StateReader, check_transaction, next_nonce
from ledger.errors import LedgerError, SignatureError
from ledger.genesis import Genesis
from ledger.tx import MAX_TX_BYTES, Transaction
from node.sigcache import SignatureCache

MAX_NONCE_GAP = 256


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
        self._by_sender: OrderedDict[bytes, dict[int, Transaction]] = OrderedDict()
        self._next: dict[bytes, int] = {}  # committed next nonce per sender (cached)

    def __len__(self) -> int:
        return len(self._by_hash)

    def __contains__(self, tx_hash: object) -> bool:
        return tx_hash in self._by_hash

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
        if len(self._by_hash) >= self.max_txs:
            raise MempoolError("mempool full, retry later", code="mempool_full", http_status=429)
        try:
            self.sigs.verify(tx)
        except SignatureError as exc:
            raise MempoolError(str(exc), code="bad_signature", http_status=401) from None
        problem = check_transaction(self._state(), self.genesis, tx, expected_nonce=tx.nonce)
        if problem is not None:
            raise MempoolError(
                problem.message, code=problem.code, http_status=getattr(problem, "http_status", 400)
            )
        self._by_hash[tx.hash] = tx
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
        for sender in touched:
            self._next.pop(sender, None)
            expected = self._expected_nonce(sender)
            for nonce, tx in list(self._by_sender.get(sender, {}).items()):
                if nonce < expected:
                    self._drop(tx.hash)

    def recheck(self) -> int:
        """Re-run the contract admission check on everything pending; drop what fails."""
        state = self._state()
        dropped = 0
        for tx in list(self._by_hash.values()):
            if check_transaction(state, self.genesis, tx, expected_nonce=tx.nonce) is not None:
                self._drop(tx.hash)
                dropped += 1
        return dropped

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
        by_nonce = self._by_sender.get(tx.sender)
        if by_nonce is not None:
            by_nonce.pop(tx.nonce, None)
            if not by_nonce:
                del self._by_sender[tx.sender]
