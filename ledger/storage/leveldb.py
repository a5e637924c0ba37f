"""The LevelDB (plyvel) :class:`~ledger.storage.protocol.KVStore`.

A committed block is one synced ``write_batch`` (``transaction=True``): LevelDB
applies it atomically, and ``sync=True`` makes it durable before we return, so
a node killed at any instant restarts either before or after the block.
Catch-up writes all but the last block of a batch unsynced (node/sync.py): a
synced write must then make every earlier write durable, in order, and LevelDB
alone does not when its log rolled over in between (see :meth:`LevelDBStore.write`).

Only ``cityledger node init`` (and the tools that lay out node homes) creates a
store; every other opener refuses a missing one rather than start over empty.
Every read verifies LevelDB's block checksums, and every plyvel error becomes a
:class:`~ledger.errors.StorageError` with a one-line reason naming the path:
:class:`~ledger.errors.StoreDamagedError` when the store itself is damaged.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import plyvel

from ledger.errors import StorageError, StoreDamagedError, StoreLockedError, StoreMissingError
from ledger.storage import (
    DEFAULT_BLOCK_CACHE_MB,
    DEFAULT_COMPRESS,
    DEFAULT_TABLE_FILE_MB,
    DEFAULT_WRITE_BUFFER_MB,
    MIB,
)
from ledger.storage.damage import DamagedTable, locate, where
from ledger.storage.protocol import WriteBatch, prefix_upper_bound

# Tuned for the node's load (docs/performance.md, "What to fix" 3): plyvel's defaults
# (4 MiB write buffer, no bloom filter, 8 MiB block cache) made `bench stages` spend a
# third more CPU per transaction, mostly in reads that miss and in compactions. The
# cache and buffer sizes come from the node's [storage] section (open_leveldb's defaults).
BLOOM_FILTER_BITS = 10  # per key: a read of an absent key skips ~99 % of the tables


class LevelDBStore:
    """One LevelDB directory, held exclusively by this process.

    ``create=True`` creates the store if it is missing; only the commands that
    initialise a node home pass it.
    """

    def __init__(
        self,
        path: str,
        *,
        create: bool = False,
        block_cache_bytes: int = DEFAULT_BLOCK_CACHE_MB * MIB,
        write_buffer_bytes: int = DEFAULT_WRITE_BUFFER_MB * MIB,
        max_open_files: int | None = None,
        compress: bool = DEFAULT_COMPRESS,
        table_file_bytes: int = DEFAULT_TABLE_FILE_MB * MIB,
    ) -> None:
        self.path = path
        # LevelDB's memory: the block cache and up to two memtables (one being flushed).
        self.buffer_limit_bytes = block_cache_bytes + 2 * write_buffer_bytes
        self._unsynced = False  # an unsynced write since the last synced one
        if create:
            # Every confidential record is in here: owner only (docs/operations.md).
            os.makedirs(path, mode=0o700, exist_ok=True)
            os.chmod(path, 0o700)  # makedirs' mode went through the umask
        elif not os.path.isfile(os.path.join(path, "CURRENT")):
            raise StoreMissingError(
                f"no ledger store at {path} (run `cityledger node init` first, "
                "or restore the data directory)"
            )
        # LevelDB maps every table file it keeps open (up to 1000): a bound here bounds
        # the mapped pages too (the streaming audit scans whole stores: node/audit_scratch.py).
        more = {} if max_open_files is None else {"max_open_files": max_open_files}
        try:
            self._db = plyvel.DB(
                path,
                create_if_missing=create,
                paranoid_checks=True,
                write_buffer_size=write_buffer_bytes,
                bloom_filter_bits=BLOOM_FILTER_BITS,
                lru_cache_size=block_cache_bytes,
                max_file_size=table_file_bytes,  # see ledger.storage.DEFAULT_TABLE_FILE_MB
                # Table blocks are compressed (snappy) as LevelDB writes them, in every
                # compaction again; without, blocks are stored as they are. Either reads
                # both: the choice applies to what is written from now on.
                compression="snappy" if compress else None,
                **more,
            )
        except plyvel.CorruptionError as exc:
            raise self._damaged(exc, "is corrupt") from None
        except plyvel.Error as exc:
            if "lock" in _reason(exc).lower():
                raise StoreLockedError(
                    f"the database at {path} is in use by another process "
                    "(is a node already running on this home?)"
                ) from None
            raise StorageError(f"cannot open the database at {path}: {_reason(exc)}") from None

    def get(self, key: bytes) -> bytes | None:
        try:
            value: bytes | None = self._db.get(key, verify_checksums=True)
        except plyvel.Error as exc:
            raise self._damaged(exc) from None
        return value

    def iterate(
        self, prefix: bytes, *, start: bytes | None = None, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]:
        return self._iterate(self._db, prefix, start, reverse)

    def memory_bytes(self) -> tuple[int, int]:
        """(LevelDB's estimate of its memtables and block cache, their bound)."""
        try:
            used = self._db.get_property(b"leveldb.approximate-memory-usage")
        except plyvel.Error as exc:
            raise self._damaged(exc) from None
        return int(used or 0), self.buffer_limit_bytes

    def approximate_bytes(self, prefix: bytes) -> int:
        """LevelDB's estimate of the table bytes of the rows under ``prefix`` (deleted
        rows not yet compacted away included; rows still in the memtable not)."""
        with self._failing("measure"):
            size: int = self._db.approximate_size(prefix, _range_end(prefix))
        return size

    def compact(self, prefix: bytes) -> None:
        """Compact the range of ``prefix`` down to the last level: deleted rows and their
        markers are dropped and the space goes back to the file system."""
        with self._failing("compact"):
            self._db.compact_range(start=prefix, stop=_range_end(prefix))

    def _iterate(
        self, source: Any, prefix: bytes, start: bytes | None, reverse: bool
    ) -> Iterator[tuple[bytes, bytes]]:
        """:meth:`iterate` over ``source``: the database, or a snapshot of it."""
        upper = prefix_upper_bound(prefix)
        try:
            if reverse:
                if start is not None:
                    it = source.iterator(
                        start=prefix,
                        stop=start,
                        include_stop=True,
                        reverse=True,
                        verify_checksums=True,
                    )
                else:
                    it = source.iterator(
                        start=prefix, stop=upper, reverse=True, verify_checksums=True
                    )
            else:
                it = source.iterator(
                    start=start if start is not None else prefix,
                    stop=upper,
                    verify_checksums=True,
                )
            with it:
                yield from it
        except plyvel.Error as exc:
            raise self._damaged(exc) from None

    def read_view(self) -> LevelDBView:
        """A read-only view of the store as of now (a LevelDB snapshot): later writes do
        not show in it, so a thread may read one committed height while blocks go on
        being committed (the state snapshots of node/snapshots.py)."""
        try:
            return LevelDBView(self, self._db.snapshot())
        except plyvel.Error as exc:
            raise self._damaged(exc) from None

    def snapshot_items(self) -> Iterator[tuple[bytes, bytes]]:
        """Every row as of one instant (a LevelDB snapshot), in key order, while writes
        go on: every committed block is one write batch, so the rows are those of one
        committed height (an online backup, node/backup.py)."""
        try:
            snapshot = self._db.snapshot()
            with snapshot.iterator(verify_checksums=True) as it:
                yield from it
        except plyvel.Error as exc:
            raise self._damaged(exc) from None

    def write(self, batch: WriteBatch, *, sync: bool = True) -> None:
        """Apply ``batch`` atomically; ``sync``: durable, with every write before it.

        LevelDB syncs only its current log file. When the memtable fills it starts a
        new log and does not sync the old one (google/leveldb#193): a power cut could
        then keep a later synced write and lose earlier unsynced ones. So a synced write
        after unsynced ones first syncs every log file (one or two: a few ms per run)."""
        if sync and self._unsynced:
            self._sync_logs()
        self._unsynced = not sync
        with self._failing("write to"), self._db.write_batch(transaction=True, sync=sync) as wb:
            for key, value in batch.items():
                if value is None:
                    wb.delete(key)
                else:
                    wb.put(key, value)

    @contextmanager
    def _failing(self, doing: str) -> Iterator[None]:
        """LevelDB's errors as ours: corruption names the damaged files, anything else
        says what could not be done (``doing``: "write to", "compact", "measure")."""
        try:
            yield
        except plyvel.CorruptionError as exc:
            raise self._damaged(exc) from None
        except plyvel.Error as exc:
            reason = _reason(exc)
            raise StorageError(f"cannot {doing} the database at {self.path}: {reason}") from None

    def _sync_logs(self) -> None:
        try:
            names = [n for n in os.listdir(self.path) if n.endswith(".log")]
            for name in names:
                try:
                    fd = os.open(os.path.join(self.path, name), os.O_RDONLY)
                except FileNotFoundError:  # compacted meanwhile: its table is synced
                    continue
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
        except OSError as exc:
            raise StorageError(
                f"cannot sync the logs of the database at {self.path}: {exc}"
            ) from None

    def close(self) -> None:
        if not self._db.closed:
            self._db.close()

    def _damaged(self, exc: plyvel.Error, what: str = "is damaged") -> StoreDamagedError:
        """The error, naming the damaged files and what they hold (ledger/storage/damage.py)
        when LevelDB reports corruption, with what an operator does about it."""
        located = ""
        found: list[DamagedTable] = []
        if isinstance(exc, plyvel.CorruptionError):
            try:
                found = locate(self.path)
                located = f"; {where(found, self.path)}"
            except OSError:
                pass  # unreadable files: LevelDB's reason is all there is
        return StoreDamagedError(
            f"the database at {self.path} {what}: {_reason(exc)}{located} (stop the node; "
            "restore the data directory from a backup, or rebuild it from the peers: "
            "docs/operations.md, 'A damaged or missing store')",
            damaged=tuple((d.name, d.holds) for d in found),
        )


def _range_end(prefix: bytes) -> bytes:
    """The exclusive end of ``prefix``'s range (for a prefix of 0xff bytes only, a key
    past every key the store holds: none is 64 bytes long)."""
    return prefix_upper_bound(prefix) or prefix + b"\xff" * 64


def _reason(exc: plyvel.Error) -> str:
    """plyvel's message (bytes from LevelDB) as one line of text."""
    raw = exc.args[0] if exc.args else exc
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    return " ".join(text.split())


class LevelDBView:
    """:meth:`LevelDBStore.read_view`: ``get`` and ``iterate`` of one instant."""

    def __init__(self, store: LevelDBStore, snapshot: Any) -> None:
        self._store = store
        self._snapshot = snapshot

    def get(self, key: bytes) -> bytes | None:
        try:
            value: bytes | None = self._snapshot.get(key, verify_checksums=True)
        except plyvel.Error as exc:
            raise self._store._damaged(exc) from None
        return value

    def iterate(
        self, prefix: bytes, *, start: bytes | None = None, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]:
        return self._store._iterate(self._snapshot, prefix, start, reverse)

    def close(self) -> None:
        """Release the snapshot (LevelDB keeps the rows it sees until then)."""
        self._snapshot.close()
