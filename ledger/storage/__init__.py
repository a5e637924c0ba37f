"""Storage behind a small protocol: a memory and a LevelDB implementation.

Both satisfy :class:`KVStore`; one test suite runs against both.
"""

from ledger.storage.memory import MemoryStore
from ledger.storage.overlay import OverlayStore
from ledger.storage.protocol import KVReader, KVStore, WriteBatch

__all__ = [
    "DEFAULT_BLOCK_CACHE_MB",
    "DEFAULT_WRITE_BUFFER_MB",
    "MIB",
    "KVReader",
    "KVStore",
    "MemoryStore",
    "OverlayStore",
    "WriteBatch",
    "open_leveldb",
]

MIB = 1024 * 1024
# LevelDB's own memory: a cache of uncompressed table blocks, filled as reads need it, up
# to this size, and a memtable of this size (two while one is being compacted). A node's
# [storage] section overrides both (docs/operations.md, "Memory"). Smaller buffers cost
# CPU in compactions: 64/32 MiB instead of these cost one validator 25 % more per
# transaction for no lower peak, and four validators over 100,000 transactions 8 % more
# for 130 MB less each (docs/performance.md).
DEFAULT_BLOCK_CACHE_MB = 256
DEFAULT_WRITE_BUFFER_MB = 64


def open_leveldb(
    path: str,
    *,
    create: bool = False,
    block_cache_mb: int = DEFAULT_BLOCK_CACHE_MB,
    write_buffer_mb: int = DEFAULT_WRITE_BUFFER_MB,
    max_open_files: int | None = None,
) -> KVStore:
    """Open the LevelDB store at ``path``; a missing one is created only with ``create``
    (``cityledger node init`` and the tools that lay out node homes), otherwise refused
    with :class:`~ledger.errors.StoreMissingError`.

    ``max_open_files`` (LevelDB's default: 1000) also bounds the table files LevelDB keeps
    mapped in memory: a reader that scans a whole large store sets it low.

    Imported lazily so pure users of the ledger never need plyvel loaded.
    """
    from ledger.storage.leveldb import LevelDBStore

    return LevelDBStore(
        path,
        create=create,
        block_cache_bytes=block_cache_mb * MIB,
        write_buffer_bytes=write_buffer_mb * MIB,
        max_open_files=max_open_files,
    )
