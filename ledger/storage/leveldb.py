"""The LevelDB (plyvel) :class:`~ledger.storage.protocol.KVStore`.

A committed block is one synced ``write_batch`` (``transaction=True``): LevelDB
applies it atomically, and ``sync=True`` makes it durable before we return, so
a node killed at any instant restarts either before or after the block.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import plyvel

from ledger.errors import CorruptionError, StorageError, StoreLockedError
from ledger.storage.protocol import WriteBatch, prefix_upper_bound


class LevelDBStore:
    """One LevelDB directory, held exclusively by this process."""

    def __init__(self, path: str) -> None:
        self.path = path
        os.makedirs(path, exist_ok=True)
        try:
            self._db = plyvel.DB(path, create_if_missing=True, paranoid_checks=True)
        except plyvel.IOError as exc:
            if "lock" in str(exc).lower():
                raise StoreLockedError(
                    f"the database at {path} is in use by another process "
                    "(is a node already running on this home?)"
                ) from None
            raise StorageError(f"cannot open the database at {path}: {exc}") from None
        except plyvel.CorruptionError as exc:
            raise CorruptionError(f"the database at {path} is corrupt: {exc}") from None

    def get(self, key: bytes) -> bytes | None:
        try:
            value: bytes | None = self._db.get(key)
        except plyvel.CorruptionError as exc:
            raise CorruptionError(f"corrupt record in {self.path}: {exc}") from None
        return value

    def iterate(
        self, prefix: bytes, *, start: bytes | None = None, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]:
        upper = prefix_upper_bound(prefix)
        if reverse:
            if start is not None:
                it = self._db.iterator(start=prefix, stop=start, include_stop=True, reverse=True)
            else:
                it = self._db.iterator(start=prefix, stop=upper, reverse=True)
        else:
            it = self._db.iterator(start=start if start is not None else prefix, stop=upper)
        try:
            with it:
                yield from it
        except plyvel.CorruptionError as exc:
            raise CorruptionError(f"corrupt record in {self.path}: {exc}") from None

    def write(self, batch: WriteBatch, *, sync: bool = True) -> None:
        with self._db.write_batch(transaction=True, sync=sync) as wb:
            for key, value in batch.items():
                if value is None:
                    wb.delete(key)
                else:
                    wb.put(key, value)

    def close(self) -> None:
        if not self._db.closed:
            self._db.close()
