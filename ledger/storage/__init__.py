"""Storage behind a small protocol: a memory and a LevelDB implementation.

Both satisfy :class:`KVStore`; one test suite runs against both.
"""

from ledger.storage.memory import MemoryStore
from ledger.storage.overlay import OverlayStore
from ledger.storage.protocol import KVReader, KVStore, WriteBatch

__all__ = ["KVReader", "KVStore", "MemoryStore", "OverlayStore", "WriteBatch", "open_leveldb"]


def open_leveldb(path: str) -> KVStore:
    """Open (creating if needed) a LevelDB store at ``path``.

    Imported lazily so pure users of the ledger never need plyvel loaded.
    """
    from ledger.storage.leveldb import LevelDBStore

    return LevelDBStore(path)
