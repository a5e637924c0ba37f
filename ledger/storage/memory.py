"""An in-memory :class:`~ledger.storage.protocol.KVStore` for tests and simulations."""

from __future__ import annotations

import bisect
from collections.abc import Iterator

from ledger.storage.protocol import WriteBatch, prefix_upper_bound


class MemoryStore:
    """A sorted dict with the same semantics as the LevelDB store."""

    def __init__(self) -> None:
        self._data: dict[bytes, bytes] = {}
        self._keys: list[bytes] = []
        self.closed = False
        self.writes = 0

    def get(self, key: bytes) -> bytes | None:
        return self._data.get(key)

    def iterate(
        self, prefix: bytes, *, start: bytes | None = None, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]:
        upper = prefix_upper_bound(prefix)
        if not reverse:
            lo = bisect.bisect_left(self._keys, start if start is not None else prefix)
            hi = len(self._keys) if upper is None else bisect.bisect_left(self._keys, upper)
            keys = self._keys[lo:hi]
        else:
            lo = bisect.bisect_left(self._keys, prefix)
            if start is not None:
                hi = bisect.bisect_right(self._keys, start)
            else:
                hi = len(self._keys) if upper is None else bisect.bisect_left(self._keys, upper)
            keys = self._keys[lo:hi][::-1]
        for k in keys:
            if k.startswith(prefix):
                yield k, self._data[k]

    def write(self, batch: WriteBatch, *, sync: bool = True) -> None:
        for key, value in batch.items():
            if value is None:
                if key in self._data:
                    del self._data[key]
                    self._keys.pop(bisect.bisect_left(self._keys, key))
            else:
                if key not in self._data:
                    bisect.insort(self._keys, key)
                self._data[key] = value
        self.writes += 1

    def close(self) -> None:
        self.closed = True

    def __len__(self) -> int:
        return len(self._data)
