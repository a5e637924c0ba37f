"""A write-buffering view over another store: the execution overlay.

Block execution writes into an overlay; the proposer and every validator read
their own uncommitted writes through it, and on commit the overlay's batch is
written to the real store in one synced write. Discarding it changes nothing.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator

from ledger.storage.protocol import KVReader, WriteBatch


class OverlayStore:
    """Reads fall through to ``base``; writes stay in :attr:`batch` until taken."""

    def __init__(self, base: KVReader) -> None:
        self.base = base
        self.batch = WriteBatch()

    def get(self, key: bytes) -> bytes | None:
        present, value = self.batch.get(key)
        if present:
            return value
        return self.base.get(key)

    def put(self, key: bytes, value: bytes) -> None:
        self.batch.put(key, value)

    def delete(self, key: bytes) -> None:
        self.batch.delete(key)

    def iterate(
        self, prefix: bytes, *, start: bytes | None = None, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]:
        """Merge our pending writes with the base's keys, ours winning."""
        pending = sorted(
            (k, v)
            for k, v in self.batch.items()
            if k.startswith(prefix) and (start is None or (k <= start if reverse else k >= start))
        )
        if reverse:
            pending.reverse()
        base = self.base.iterate(prefix, start=start, reverse=reverse)
        # Merge two sorted streams; tag 0 (ours) sorts before 1 (base) on equal keys.
        tagged_ours = ((k, 0, v) for k, v in pending)
        tagged_base = ((k, 1, v) for k, v in base)
        if reverse:
            merged = heapq.merge(tagged_ours, tagged_base, key=lambda t: (_Desc(t[0]), t[1]))
        else:
            merged = heapq.merge(tagged_ours, tagged_base, key=lambda t: (t[0], t[1]))
        last: bytes | None = None
        for key, _tag, value in merged:
            if key == last:
                continue
            last = key
            if value is not None:
                yield key, value

    def take(self) -> WriteBatch:
        """Hand over the buffered writes and start a fresh, empty buffer."""
        batch, self.batch = self.batch, WriteBatch()
        return batch


class _Desc:
    """Sort key that orders bytes descending."""

    __slots__ = ("k",)

    def __init__(self, k: bytes) -> None:
        self.k = k

    def __lt__(self, other: _Desc) -> bool:
        return self.k > other.k

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Desc) and self.k == other.k

    def __hash__(self) -> int:
        return hash(self.k)
