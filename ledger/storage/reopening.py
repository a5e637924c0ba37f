"""A store that is closed and opened again after every so many bytes read, so that a
whole-store scan keeps a bounded part of it mapped.

LevelDB reads its table files through ``mmap`` and keeps every table it has open
mapped, at least 64 of them whatever ``max_open_files`` says; the pages a scan touched
stay in the process's resident size until the table is closed. With tables cut at
2 MiB that bound was 128 MiB; with larger tables (``[storage] table_file_mb``) it
grows with the store, up to 64 whole tables. A reader that scans a store whole in key
order (the streaming audit) uses :class:`ReopeningStore`: after ``budget`` bytes of
keys and values it closes the database, which unmaps every table, and opens it again;
scans in progress go on from the key after the last one they gave. What it reads is
the same: it is one store opened twice, not written to in between.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Generator, Iterator

from ledger.storage.protocol import KVStore, WriteBatch

# A quarter of the 64 tables of 2 MiB a scan kept mapped before: the streaming audit reads
# two or three stores whole at once (the replay's peak resident size on a 191,710-tx chain:
# 361 MB with 128 MiB, 280 MB with 32; docs/performance.md, "The state tree beside").
DEFAULT_BUDGET_BYTES = 32 * 1024 * 1024


class ReopeningStore:
    """A :class:`~ledger.storage.protocol.KVStore` over ``open_store()``, reopened after
    every ``budget_bytes`` read (gets and scans together). Writes pass through (a store
    being scanned should not be written: a scan's later part would see them)."""

    def __init__(self, open_store: Callable[[], KVStore], budget_bytes: int | None = None) -> None:
        if budget_bytes is None:
            budget_bytes = DEFAULT_BUDGET_BYTES
        if budget_bytes <= 0:
            raise ValueError("budget_bytes must be positive")
        self._open = open_store
        self.budget_bytes = budget_bytes
        self._store: KVStore | None = open_store()
        self._read = 0  # bytes read since the store was last opened
        self.reopened = 0  # how many times (for tests and the curious)
        self._scans: weakref.WeakSet[Generator[tuple[bytes, bytes], None, None]] = weakref.WeakSet()

    @property
    def store(self) -> KVStore:
        if self._store is None:
            raise ValueError("the store is closed")
        return self._store

    def get(self, key: bytes) -> bytes | None:
        value = self.store.get(key)
        if value is not None:
            self._count(len(key) + len(value))
        return value

    def iterate(
        self, prefix: bytes, *, start: bytes | None = None, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]:
        last: bytes | None = None
        while True:
            opened = self.reopened
            scan = self._scan(prefix, start if last is None else last, reverse)
            self._scans.add(scan)  # closed by a reopen: it holds tables open
            try:
                for key, value in scan:
                    if key == last:  # the resumed scan starts at the last key given
                        continue
                    last = key
                    yield key, value
                    if self._store is None:  # else the closed scan would end as if done
                        raise ValueError("the store was closed during a scan")
                    self._count(len(key) + len(value))
                    if self.reopened != opened:
                        break  # this scan's iterator was closed with the store
                else:
                    return
            finally:
                scan.close()

    def _scan(
        self, prefix: bytes, start: bytes | None, reverse: bool
    ) -> Generator[tuple[bytes, bytes], None, None]:
        """The store's scan, in a generator whose ``close`` closes it (``yield from``)."""
        yield from self.store.iterate(prefix, start=start, reverse=reverse)

    def write(self, batch: WriteBatch, *, sync: bool = True) -> None:
        self.store.write(batch, sync=sync)

    def close(self) -> None:
        if self._store is not None:
            self._close_scans()
            self._store.close()
            self._store = None

    def _count(self, size: int) -> None:
        self._read += size
        if self._read >= self.budget_bytes:
            self._reopen()

    def _reopen(self) -> None:
        self.close()
        self._store = self._open()
        self._read = 0
        self.reopened += 1

    def _close_scans(self) -> None:
        for scan in list(self._scans):
            scan.close()
        self._scans.clear()
