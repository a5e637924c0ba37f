"""Catch-up's block writes on a thread of their own, while the next block executes.

A committed block is one LevelDB write batch of some 10,000 rows (state pages, leaves,
receipts, indexes, the log). plyvel releases the GIL while LevelDB applies a batch
(its memtable and log), so that work can run on the second core while the event loop
re-executes the next certified block. :class:`WriteBehind` stands between the chain and
its store: outside :meth:`deferring` it passes every call through; inside, an unsynced
write is queued to one writer thread and returns at once, and every read looks at the
queued batches (newest first) before the store, so the node reads exactly what it would
have read had each write been made in place.

Ordering and crash safety (docs/performance.md, "Catch-up"): one thread writes the
queued batches in the order they were queued, each as the one atomic LevelDB batch it
was; only unsynced writes are queued — catch-up's blocks before the last of a batch,
which may already be lost to a power cut until the next synced write — and a synced
write (or :meth:`drain`) first waits for every queued one. So after a crash the store
holds a prefix of the committed blocks, exactly as it could before: the lost ones are
certified and fetched again. A write that fails on the thread is raised by the next
write or drain, as the :class:`~ledger.errors.StorageError` it was: the node stops.
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from ledger.errors import StorageError
from ledger.storage import KVReader, KVStore, OverlayStore, WriteBatch

MAX_QUEUED = 4  # batches written behind at most: a block's rows are held in memory till then


@dataclass(frozen=True, slots=True)
class _Queued:
    """A batch waiting for the writer thread."""

    batch: WriteBatch
    ops: Mapping[bytes, bytes | None]  # its operations by key: what reads look up
    tables: set[bytes]  # the tables it writes (its keys' first two bytes): what iterate skips
    written: Future[None]


class WriteBehind:
    """A :class:`~ledger.storage.KVStore` over ``base`` whose unsynced writes, while
    :meth:`deferring`, are made by a writer thread."""

    def __init__(self, base: KVStore) -> None:
        self.base = base
        self._queued: deque[_Queued] = deque()
        self._thread: ThreadPoolExecutor | None = None
        self._defer = False
        self._failed: BaseException | None = None  # a queued write failed: none after it
        self._closed = False

    @property
    def path(self) -> str | None:
        """The base store's directory (for messages), if it has one."""
        path = getattr(self.base, "path", None)
        return path if isinstance(path, str) else None

    @contextlib.contextmanager
    def deferring(self) -> Iterator[None]:
        """Unsynced writes go behind while inside; every one is written on leaving."""
        self._defer = True
        try:
            yield
        finally:
            self._defer = False
            self.drain()

    # --- reads -----------------------------------------------------------------------

    def get(self, key: bytes) -> bytes | None:
        for queued in reversed(self._queued):  # dict look-ups: execution reads through here
            ops = queued.ops
            if key in ops:
                return ops[key]
        return self.base.get(key)

    def read_view(self) -> KVReader | None:
        """A consistent read view of the store with every queued batch written (a
        snapshot of the height just committed), or None where the base store has none."""
        view_of = getattr(self.base, "read_view", None)
        if view_of is None:
            return None
        self.drain()
        view: KVReader = view_of()
        return view

    def iterate(
        self, prefix: bytes, *, start: bytes | None = None, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]:
        touched = [q.batch for q in self._queued if len(prefix) < 2 or prefix[:2] in q.tables]
        if not touched:  # e.g. the validator sets, read for every block, changed by few
            return self.base.iterate(prefix, start=start, reverse=reverse)
        view = OverlayStore(self.base)
        for batch in touched:
            view.batch.update(batch)
        return view.iterate(prefix, start=start, reverse=reverse)

    # --- writes ----------------------------------------------------------------------

    def write(self, batch: WriteBatch, *, sync: bool = True) -> None:
        self._forget_written()
        if self._failed is not None:
            raise self._failed
        if sync or not self._defer:
            self.drain()
            self.base.write(batch, sync=sync)
            return
        self.queue(batch, sync=False)

    def queue(self, batch: WriteBatch, *, sync: bool) -> None:
        """Write ``batch`` on the thread, after every batch queued before it (a block
        committed by consensus: its synced write, while the next height starts)."""
        self._forget_written()
        if self._failed is not None:
            raise self._failed
        if self._closed:
            raise StorageError("the store is closed: the node is stopping")
        while len(self._queued) >= MAX_QUEUED:
            self._wait_oldest()
        if self._thread is None:
            self._thread = ThreadPoolExecutor(1, thread_name_prefix="write-behind")
        ops, tables = batch.operations(), batch.tables()
        self._queued.append(
            _Queued(batch, ops, tables, self._thread.submit(self._write_next, batch, sync))
        )

    def drain(self) -> None:
        """Wait until every queued batch is written; raise the first write's error."""
        while self._queued:
            self._wait_oldest()

    def finish(self) -> None:
        """Write what is queued and stop the thread (the base store stays open)."""
        try:
            self.drain()
        finally:
            if self._thread is not None:
                self._thread.shutdown(wait=True)
                self._thread = None

    def close(self) -> None:
        """Write what is queued, then close the base store; later writes are refused."""
        self._closed = True
        try:
            self.finish()
        finally:
            self.base.close()

    def _write_next(self, batch: WriteBatch, sync: bool) -> None:
        """On the thread: write ``batch`` unless an earlier queued write failed (the
        store must never hold a block without the ones before it)."""
        if self._failed is not None:
            raise self._failed
        try:
            self.base.write(batch, sync=sync)
        except BaseException as exc:
            self._failed = exc
            raise

    def _wait_oldest(self) -> None:
        done = self._queued[0].written
        try:
            done.result()
        finally:
            self._queued.popleft()

    def _forget_written(self) -> None:
        while self._queued and self._queued[0].written.done():
            self._wait_oldest()
