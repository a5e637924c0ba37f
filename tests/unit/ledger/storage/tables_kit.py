"""A LevelDB store of many table files, for the tests of how they are cut and mapped."""

from __future__ import annotations

import random

from ledger.storage import WriteBatch, open_leveldb
from ledger.storage.leveldb import LevelDBStore


def write_tables(
    path: str, table_file_mb: int, *, batches: int, rows: int, key_size: int, value_size: int
) -> None:
    """``batches`` × ``rows`` random rows (incompressible, keys in hash-like random order)
    written to a new store at ``path`` through a 1 MiB memtable, then compacted as a
    long-running store would be, and closed."""
    store = open_leveldb(path, create=True, write_buffer_mb=1, table_file_mb=table_file_mb)
    assert isinstance(store, LevelDBStore)
    rng = random.Random(7)
    for _ in range(batches):
        batch = WriteBatch()
        for _ in range(rows):
            batch.put(rng.randbytes(key_size), rng.randbytes(value_size))
        store.write(batch, sync=False)
    store.compact(b"")
    store.close()
