"""The evidence pool: equivocation this node found or was sent, until a block commits it.

The evidence types themselves (:class:`DuplicateVoteEvidence`,
:class:`ConflictingProposalEvidence`) live in :mod:`ledger.evidence`, since blocks
carry them; they are re-exported here. The core hands each new piece it finds to an
:class:`EvidencePool` (and emits ``EvidenceFound``); the node adds the verified pieces
peers gossip. The pool keeps a bounded number in memory (and, given a store, under
``keys.EVIDENCE``: node-local rows, not part of the chain), at most a few pending per
offender, and gives the proposer the pending ones oldest first
(:meth:`EvidencePool.pending`). Once a block commits a piece, the chain's own index
(``keys.OFFENCE``) is what counts, and the node drops it from the pool
(:meth:`EvidencePool.committed`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator

from ledger.encoding import encode
from ledger.errors import LedgerError
from ledger.evidence import (
    MAX_BLOCK_EVIDENCE,
    MAX_EVIDENCE_AGE,
    ConflictingProposalEvidence,
    DuplicateVoteEvidence,
    Evidence,
    EvidenceError,
    Offence,
    decode_evidence,
    evidence_from_obj,
)
from ledger.storage import KVStore, WriteBatch
from ledger.storage import keys as K

log = logging.getLogger("cityledger.evidence")

# Pending pieces kept per offender: one is enough to hold it to account, a few cover
# several offences, and a validator signing conflicting messages at every round cannot
# push the evidence against others out of the bounded pool.
MAX_PENDING_PER_OFFENDER = 8

__all__ = [
    "MAX_BLOCK_EVIDENCE",
    "MAX_EVIDENCE_AGE",
    "MAX_PENDING_PER_OFFENDER",
    "ConflictingProposalEvidence",
    "DuplicateVoteEvidence",
    "Evidence",
    "EvidenceError",
    "EvidencePool",
    "Offence",
    "decode_evidence",
    "evidence_from_obj",
    "evidence_key",
]


def evidence_key(evidence: Evidence) -> bytes:
    return K.EVIDENCE + K.height_bytes(evidence.height) + evidence.hash


class EvidencePool:
    """One piece of evidence per offence, newest ``max_items`` kept in memory, at most
    ``max_per_offender`` of one validator.

    With a store every new piece is written (synced) under ``keys.EVIDENCE``, and
    the newest ``max_items`` are loaded back on construction.
    """

    def __init__(
        self,
        store: KVStore | None = None,
        *,
        max_items: int = 1024,
        max_per_offender: int = MAX_PENDING_PER_OFFENDER,
    ) -> None:
        if max_items < 1 or max_per_offender < 1:
            raise ValueError("max_items and max_per_offender must be >= 1")
        self._store = store
        self._max = max_items
        self._max_per_offender = max_per_offender
        self._items: dict[Offence, Evidence] = {}
        self._per_offender: dict[bytes, int] = {}
        if store is not None:
            stored = []
            for key, data in store.iterate(K.EVIDENCE):
                try:
                    stored.append(decode_evidence(data))
                except LedgerError as exc:  # a row of an older format: not ours to keep
                    log.warning("ignoring a stored evidence row %s: %s", key.hex()[:24], exc)
            for evidence in stored:
                if self.wants(evidence):
                    self._remember(evidence)

    def add(self, evidence: Evidence) -> bool:
        """Keep ``evidence``; False when this offence is already known or its offender
        already has ``max_per_offender`` pieces here."""
        if not self.wants(evidence):
            return False
        if self._store is not None:
            batch = WriteBatch()
            batch.put(evidence_key(evidence), encode(evidence.to_obj()))
            self._store.write(batch, sync=True)
        self._remember(evidence)
        return True

    def wants(self, evidence: Evidence) -> bool:
        """Whether :meth:`add` would keep it (the cheap checks, before any signature)."""
        return (
            evidence.offence not in self._items
            and self._per_offender.get(evidence.offender, 0) < self._max_per_offender
        )

    def _remember(self, evidence: Evidence) -> None:
        self._items[evidence.offence] = evidence
        self._per_offender[evidence.offender] = self._per_offender.get(evidence.offender, 0) + 1
        while len(self._items) > self._max:
            self._forget(next(iter(self._items)), write=True)

    def _forget(self, offence: Offence, *, write: bool) -> None:
        evidence = self._items.pop(offence, None)
        if evidence is None:
            return
        left = self._per_offender[evidence.offender] - 1
        if left:
            self._per_offender[evidence.offender] = left
        else:
            del self._per_offender[evidence.offender]
        if write and self._store is not None:
            batch = WriteBatch()
            batch.delete(evidence_key(evidence))
            self._store.write(batch, sync=False)

    def pending(
        self,
        is_committed: Callable[[Evidence], bool],
        block_height: int,
        limit: int = MAX_BLOCK_EVIDENCE,
    ) -> list[Evidence]:
        """Up to ``limit`` pieces block ``block_height`` may commit: not committed yet,
        from a height below it and not too old; oldest (lowest height) first."""
        low = block_height - MAX_EVIDENCE_AGE
        candidates = sorted(
            (e for e in self._items.values() if low <= e.height < block_height),
            key=lambda e: e.height,  # stable: equal heights keep the order they came in
        )
        out: list[Evidence] = []
        for evidence in candidates:
            if len(out) >= limit:
                break
            if not is_committed(evidence):
                out.append(evidence)
        return out

    def committed(self, evidence: Iterable[Evidence]) -> None:
        """A block committed these: they (and any other piece for their offences) leave
        the pool, in memory and in the store."""
        offences = [e.offence for e in evidence]
        if not offences or self._store is None:
            for offence in offences:
                self._forget(offence, write=False)
            return
        batch = WriteBatch()
        for offence in offences:
            known = self._items.get(offence)
            if known is not None:
                batch.delete(evidence_key(known))
            self._forget(offence, write=False)
        self._store.write(batch, sync=False)

    def items(self) -> list[Evidence]:
        """Evidence in the order it was found, oldest first."""
        return list(self._items.values())

    def offenders(self) -> set[bytes]:
        return {e.offender for e in self._items.values()}

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Evidence]:
        return iter(list(self._items.values()))
