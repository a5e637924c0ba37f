"""Storage behind a small protocol: a memory and a LevelDB implementation.

Both satisfy :class:`KVStore`; one test suite runs against both.
"""

from ledger.storage.memory import MemoryStore
from ledger.storage.overlay import OverlayStore
from ledger.storage.protocol import KVReader, KVStore, WriteBatch

__all__ = [
    "DEFAULT_BLOCK_CACHE_MB",
    "DEFAULT_COMPRESS",
    "DEFAULT_TABLE_FILE_MB",
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
# [storage] section overrides both (docs/operations.md, "Memory"). The block cache holds
# only blocks LevelDB decompressed (it reads tables through mmap, and the state tree's
# pages, mostly hashes, do not compress): 32 MiB instead of 256 cost no CPU that
# alternated runs resolve, and a node's anonymous memory peaked at 393-396 MB over
# 300,000 transactions offered, where 256 filled to 805-816 MB. A smaller memtable does
# cost CPU in compactions: 32 MiB instead of 64 cost 14 % more per transaction
# (docs/performance.md, "Memory that does not grow with the chain").
DEFAULT_BLOCK_CACHE_MB = 32
DEFAULT_WRITE_BUFFER_MB = 64
# Table blocks are written as they are, not snappy-compressed: a node's rows are mostly
# hashes, keys and signatures, which compression shrank by 13-17 %, and LevelDB
# compresses every block again in every compaction. Without it, `bench run --txs 30000
# --rate 600` alternated: 2.54/2.42 instead of 2.75/2.73 ms of node CPU per transaction,
# 566/566 instead of 506/513 tx/s committed, 17 % more bytes stored (docs/performance.md,
# "Compression"). A store reads blocks written either way.
DEFAULT_COMPRESS = False
# The size LevelDB cuts its table files at (its `max_file_size`), in MiB: LevelDB's own
# 2 by default, which [storage] table_file_mb overrides. Larger files can cost a node less
# (the state rows are keyed by hashes spread over the whole key space, so every compaction
# meets most tables below it, and LevelDB compacts a file again after a few hundred reads
# looked past it): at 64, `bench run --txs 30000 --rate 1100` alternated wrote 12.9 instead
# of 17.5 KB per transaction per node and spent 1.99 instead of 2.14 ms of node CPU per
# transaction (median of 5 pairs). But at 16, `bench run --txs 60000 --rate 3500`
# committed 7 % less in each of 3 pairs, with a higher p99, and left a node's anonymous
# memory over 300,000 transactions as it was. The streaming audit's memory no longer
# depends on it: it reopens the store it scans (ledger/storage/reopening.py).
# docs/performance.md, "Table files of 16 MiB: tried, not kept".
DEFAULT_TABLE_FILE_MB = 2


def open_leveldb(
    path: str,
    *,
    create: bool = False,
    block_cache_mb: int = DEFAULT_BLOCK_CACHE_MB,
    write_buffer_mb: int = DEFAULT_WRITE_BUFFER_MB,
    max_open_files: int | None = None,
    compress: bool = DEFAULT_COMPRESS,
    table_file_mb: int = DEFAULT_TABLE_FILE_MB,
) -> KVStore:
    """Open the LevelDB store at ``path``; a missing one is created only with ``create``
    (``cityledger node init`` and the tools that lay out node homes), otherwise refused
    with :class:`~ledger.errors.StoreMissingError`.

    ``max_open_files`` (LevelDB's default: 1000) also bounds the table files LevelDB keeps
    mapped in memory: a reader that scans a whole large store sets it low.
    ``compress=True`` snappy-compresses table blocks as they are written (see
    :data:`DEFAULT_COMPRESS` for why it is off by default). ``table_file_mb``: the size
    table files are cut at (:data:`DEFAULT_TABLE_FILE_MB`); it applies to the files
    written from now on, and a store opens whatever sizes it holds.

    Imported lazily so pure users of the ledger never need plyvel loaded.
    """
    from ledger.storage.leveldb import LevelDBStore

    return LevelDBStore(
        path,
        create=create,
        block_cache_bytes=block_cache_mb * MIB,
        write_buffer_bytes=write_buffer_mb * MIB,
        max_open_files=max_open_files,
        compress=compress,
        table_file_bytes=table_file_mb * MIB,
    )
