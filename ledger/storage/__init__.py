"""Storage behind a small protocol: a memory and a LevelDB implementation.

Both satisfy :class:`KVStore`; one test suite runs against both.
"""

from ledger.storage.memory import MemoryStore
from ledger.storage.overlay import OverlayStore
from ledger.storage.protocol import KVReader, KVStore, WriteBatch

__all__ = ["KVReader", "KVStore", "MemoryStore", "OverlayStore", "WriteBatch", "open_leveldb"]


def open_leveldb(path: str, *, create: bool = False) -> KVStore:
    """Open the LevelDB store at ``path``; a missing one is created only with ``create``
    (``cityledger node init`` and the tools that lay out node homes), otherwise refused
    with :class:`~ledger.errors.StoreMissingError`.

    Imported lazily so pure users of the ledger never need plyvel loaded.
    """
    from ledger.storage.leveldb import LevelDBStore

    return LevelDBStore(path, create=create)
