"""The re-executed chain on disk, for an audit whose memory does not grow with the chain.

The replay writes every row it re-executes into a scratch store; the comparison
(:mod:`node.audit_compare`) then walks it beside the audited store, both in key order.
:class:`ScratchStore` keeps those rows in a dict — fast, and fine for a small
chain, but a 100,000-transaction chain took 1.3 GB that way (docs/audit.md, "Memory").
:class:`DiskScratch` keeps them in a LevelDB store of its own, in the audit's private
temporary directory: LevelDB holds a bounded write buffer and block cache in memory and
the rest on disk, already sorted, so the comparison streams both stores in key order and
nothing in the audit grows with the chain but a few integers per block.

Each value is stored behind the 8-byte height of the block that wrote it, so a finding
can still name that height (:func:`node.audit_compare.describe_key`). Writes are not
synced: the scratch is thrown away with its directory, whatever happens.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Mapping
from functools import partial

from ledger.storage import WriteBatch, open_leveldb
from ledger.storage.protocol import KVStore, prefix_upper_bound
from ledger.storage.reopening import ReopeningStore

CACHE_MB = 32  # LevelDB block cache of the scratch store
WRITE_BUFFER_MB = 32  # ... and its memtable (up to two while one is written out)
# LevelDB keeps the table files it has open mapped in memory (up to 1000 by default): a
# whole-store scan would map, and count in the resident size, the whole store. Fewer open
# tables (about 2 MB each) bound that; both stores of a streaming audit use it.
MAX_OPEN_FILES = 64
# The scratch is written once and thrown away, its rows mostly hashes: uncompressed,
# whatever the nodes' default (snappy cost a streaming audit a quarter of its CPU, in
# LevelDB's compaction thread: docs/audit.md, "Streaming").
COMPRESS = False
# Cut at 2 MiB whatever the nodes' default: the comparison scans the scratch whole, and
# LevelDB keeps at least 64 tables mapped (64 x 2 MiB), where the audited store is
# reopened as it is read instead (ledger/storage/reopening.py).
TABLE_FILE_MB = 2


class ScratchStore:
    """The re-executed chain: a dict, sorted only when iterated, remembering row heights."""

    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}
        self.written_at: dict[bytes, int] = {}
        self.height = 0
        self._sorted: list[bytes] | None = None

    def get(self, key: bytes) -> bytes | None:
        return self.data.get(key)

    def iterate(
        self, prefix: bytes, *, start: bytes | None = None, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]:
        if self._sorted is None:
            self._sorted = sorted(self.data)
        ordered = self._sorted
        upper = prefix_upper_bound(prefix)
        lo = bisect.bisect_left(ordered, prefix if start is None or reverse else start)
        hi = len(ordered) if upper is None else bisect.bisect_left(ordered, upper)
        if reverse and start is not None:
            hi = min(hi, bisect.bisect_right(ordered, start))
        picked = ordered[lo:hi]
        for key in reversed(picked) if reverse else picked:
            yield key, self.data[key]

    def write(self, batch: WriteBatch, *, sync: bool = True) -> None:
        self._sorted = None
        data, written, height = self.data, self.written_at, self.height
        for key, value in batch.items():
            if value is None:
                data.pop(key, None)
            else:
                data[key] = value
            written[key] = height

    def written_height(self, key: bytes) -> int | None:
        return self.written_at.get(key)

    def close(self) -> None:
        pass


class DiskScratch:
    """A :class:`~ledger.storage.protocol.KVStore` in ``path`` remembering row heights."""

    def __init__(self, path: str, *, reopen_every: int | None = None) -> None:
        """``reopen_every``: only read from now on, whole, in key order — closed and opened
        again after that many bytes read, so that it keeps a bounded part mapped
        (:class:`~ledger.storage.reopening.ReopeningStore`)."""
        opener = partial(
            open_leveldb,
            path,
            create=True,
            block_cache_mb=CACHE_MB,
            write_buffer_mb=WRITE_BUFFER_MB,
            max_open_files=MAX_OPEN_FILES,
            compress=COMPRESS,
            table_file_mb=TABLE_FILE_MB,
        )
        self.store: KVStore = (
            opener() if reopen_every is None else ReopeningStore(opener, reopen_every)
        )
        self.height = 0  # the block being committed (set by the auditor before each write)

    def get(self, key: bytes) -> bytes | None:
        raw = self.store.get(key)
        return None if raw is None else raw[8:]

    def written_height(self, key: bytes) -> int | None:
        raw = self.store.get(key)
        return None if raw is None else int.from_bytes(raw[:8], "big")

    def iterate(
        self, prefix: bytes, *, start: bytes | None = None, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]:
        for key, raw in self.store.iterate(prefix, start=start, reverse=reverse):
            yield key, raw[8:]

    def write(self, batch: WriteBatch, *, sync: bool = True) -> None:
        self.store.write(_Tagged(batch, self.height), sync=False)

    def close(self) -> None:
        self.store.close()


class _Tagged(WriteBatch):
    """``batch`` with every value behind ``height``, made as LevelDB takes the rows
    (no second batch is built: a block writes tens of thousands of rows). A read-only
    view: it answers what ``batch`` holds, tagged, and refuses to be written to."""

    def __init__(self, batch: WriteBatch, height: int) -> None:
        super().__init__()
        self.batch = batch
        self.prefix = height.to_bytes(8, "big")

    def items(self) -> Iterator[tuple[bytes, bytes | None]]:
        prefix = self.prefix
        for key, value in self.batch.items():
            yield key, None if value is None else prefix + value

    def get(self, key: bytes) -> tuple[bool, bytes | None]:
        present, value = self.batch.get(key)
        return present, None if value is None else self.prefix + value

    def operations(self) -> Mapping[bytes, bytes | None]:
        return dict(self.items())

    def tables(self) -> set[bytes]:
        return self.batch.tables()

    def __len__(self) -> int:
        return len(self.batch)

    def put(self, key: bytes, value: bytes) -> None:
        raise TypeError("a tagged batch is a view of another: write to that one")

    def delete(self, key: bytes) -> None:
        raise TypeError("a tagged batch is a view of another: write to that one")

    def update(self, other: WriteBatch) -> None:
        raise TypeError("a tagged batch is a view of another: write to that one")
