"""Verify each transaction signature once per node.

The mempool verifies on admission; block validation and execution then find
the result here instead of paying for Ed25519 again. Keyed by (hash of the
signed body, signature): the body hash alone would let a valid transaction
vouch for a copy with a forged signature. Bad verdicts are remembered too (a
smaller table): a signature the worker found bad is not checked again inline,
and a forged transaction sent again costs a lookup. A verdict is a
pure function of the key, so neither table can be wrong, only forgetful.

Memory: each verdict is kept as one 32-byte digest of (hash, signature) — collision
resistant like the pair, at a third of its memory (a tuple of the two bytes objects cost
323 bytes an entry once the transaction itself was gone, the digest 170 with the
OrderedDict's links; measured with tracemalloc). The good table holds ``capacity``
(200,000: four times the default mempool, so every pending transaction and the blocks
being validated find theirs; about 34 MB), the bad one ``bad_capacity`` (65,536: 11 MB).
A committed transaction's verdict is dropped at its commit (:meth:`SignatureCache.forget`),
so under a steady load the good table holds what is pending, not the chain's past.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from contracts.signed_payloads import payload_signature
from ledger.digest import sha256_digest
from ledger.errors import SignatureError
from ledger.tx import Transaction
from ledger.verdicts import GOOD, verdict_key
from node.sigcheck import die_with_parent, verify_batch

log = logging.getLogger("cityledger.node")


DEFAULT_CAPACITY = 200_000


def tx_verdict_key(tx: Transaction) -> bytes:
    """What a verdict is filed under: SHA-256 of the signed body's hash and the signature."""
    return sha256_digest(tx.hash + tx.signature)


class SignatureCache:
    """A bounded LRU set of transactions whose signatures verified."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY, bad_capacity: int = 65_536) -> None:
        self.capacity = capacity
        self.bad_capacity = bad_capacity
        self._ok: OrderedDict[bytes, None] = OrderedDict()
        self._bad: OrderedDict[bytes, None] = OrderedDict()
        self.hits = 0
        self.verifications = 0

    @property
    def good_count(self) -> int:
        return len(self._ok)

    @property
    def bad_count(self) -> int:
        return len(self._bad)

    def verify(self, tx: Transaction) -> None:
        """Raise :class:`SignatureError` unless ``tx`` is signed by its sender."""
        key = tx_verdict_key(tx)
        if key in self._ok:
            self.hits += 1
            return
        if key in self._bad:
            self.hits += 1
            raise SignatureError(f"bad transaction signature for key {tx.sender.hex()[:16]}…")
        self.verifications += 1
        try:
            tx.verify_signature()
        except SignatureError:
            self.add_bad(tx)
            raise
        self.add(tx)

    def add(self, tx: Transaction) -> None:
        """Record ``tx`` as verified (the caller checked it, e.g. in a worker process)."""
        self._ok[tx_verdict_key(tx)] = None
        if len(self._ok) > self.capacity:
            self._ok.popitem(last=False)

    def forget(self, committed: Iterable[Transaction]) -> None:
        """Drop the good verdicts of committed transactions: nothing asks for them again
        (a committed transaction is refused as a duplicate before its signature is
        looked at, in admission and in a block), and kept they would fill the table
        with the chain's history — 34 MB that grew over the first 200,000 transactions."""
        ok = self._ok
        for tx in committed:
            ok.pop(tx_verdict_key(tx), None)

    def add_bad(self, tx: Transaction) -> None:
        """Record that ``tx``'s signature does not verify (the caller checked it)."""
        self._bad[tx_verdict_key(tx)] = None
        if len(self._bad) > self.bad_capacity:
            self._bad.popitem(last=False)

    def checked(self, tx: Transaction) -> bool:
        """Whether a verdict on ``tx``'s signature, good or bad, is at hand."""
        key = tx_verdict_key(tx)
        return key in self._ok or key in self._bad

    def is_valid(self, tx: Transaction) -> bool:
        try:
            self.verify(tx)
        except SignatureError:
            return False
        return True

    def __contains__(self, tx: object) -> bool:
        return isinstance(tx, Transaction) and tx_verdict_key(tx) in self._ok

    def __len__(self) -> int:
        return len(self._ok) + len(self._bad)


class SignatureWorker:
    """Checks the signatures of a batch in a separate process before admission looks at it.

    Ed25519 is the largest single cost of admitting a transaction; in a worker process
    it runs on another core while the event loop goes on serving peers, votes and
    blocks. (A thread does not do it: PyNaCl releases the GIL while libsodium verifies,
    but taking it back after every signature cost the loop more than it saved —
    docs/performance.md.) Only the loop's thread touches the cache: the worker returns
    the positions of the bad signatures, and both verdicts are recorded here. Admission
    then finds every one of them cached: each signature is checked once. Callers hand
    over only what passed the cheaper checks (``Mempool.precheck_many``). Batches smaller
    than ``min_batch`` are left to admission: the hand-over costs more than it saves.
    ``processes=0`` turns the worker off.
    """

    def __init__(
        self, cache: SignatureCache, chain_id: str, *, processes: int = 1, min_batch: int = 16
    ) -> None:
        self.cache = cache
        self.chain_id = chain_id
        self.processes = processes
        self.min_batch = min_batch
        self._pool: ProcessPoolExecutor | None = None

    async def check(self, txs: Sequence[Transaction], *, signatures: bool = True) -> None:
        """Check the signatures of ``txs`` and those in their payloads (a meter's over its
        reading: :mod:`contracts.signed_payloads`, recorded in :mod:`ledger.verdicts`);
        ``signatures=False``: only the payloads' (catch-up: a certified block's
        transaction signatures are not checked again)."""
        if self.processes <= 0:
            return
        todo = [tx for tx in txs if not self.cache.checked(tx)] if signatures else []
        inner = payload_signatures(txs)
        if len(todo) + len(inner) < self.min_batch:
            return
        items = [(0, i, tx.sender, tx.body, tx.signature) for i, tx in enumerate(todo)]
        signed = [(key, signature, message) for key, signature, message, _ in inner]
        loop = asyncio.get_running_loop()
        try:
            bad, bad_signed = await loop.run_in_executor(
                self._executor(), verify_batch, (self.chain_id, items, signed)
            )
        except (BrokenProcessPool, OSError) as exc:  # execution and admission check them
            log.warning("signature worker failed (%s); starting a new one", exc)
            self.close()
            return
        self.cache.verifications += len(todo)
        refused = set(bad)
        for i, tx in enumerate(todo):
            if i in refused:
                self.cache.add_bad(tx)
            else:
                self.cache.add(tx)
        record_good(inner, bad_signed)

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # spawn: a node has threads (LevelDB's, the event loop's helpers) a fork would copy
            self._pool = ProcessPoolExecutor(
                self.processes,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=die_with_parent,
                initargs=(os.getpid(),),
            )
        return self._pool

    def close(self, *, wait: bool = False) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=wait, cancel_futures=True)
            self._pool = None


def payload_signatures(txs: Iterable[Transaction]) -> list[tuple[bytes, bytes, bytes, bytes]]:
    """(public key, signature, signed bytes, verdict key) of each payload signature in
    ``txs`` without a good verdict yet."""
    out = []
    for tx in txs:
        found = payload_signature(tx)
        if found is not None:
            verdict = verdict_key(*found)
            if verdict not in GOOD:
                out.append((*found, verdict))
    return out


def record_good(
    checked: Sequence[tuple[bytes, bytes, bytes, bytes]], bad_positions: Iterable[int]
) -> None:
    """Record in :mod:`ledger.verdicts` the payload signatures of ``checked`` (as
    :func:`payload_signatures` gives them) that a worker verified: all but those at
    ``bad_positions``."""
    refused = set(bad_positions)
    for i, (*_, verdict) in enumerate(checked):
        if i not in refused:
            GOOD.add(verdict)
