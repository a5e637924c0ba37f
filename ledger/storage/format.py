"""The store's format version: one metadata row, checked before a store is used.

Format 1 (no version row: every store made before the row existed) kept the state tree
one binary node per row; format 2 kept it in pages of four levels filed by hash;
format 3 files those pages and leaves under the height of the block that wrote them
(docs/store-format-3.md). The state roots, proofs and every other row are the same in
all. A store of an older format is refused with the one command that migrates it; a
store of a newer format (made by a later CityLedger) is refused too, rather than half
understood.
"""

from __future__ import annotations

from ledger.errors import StorageError
from ledger.storage import keys
from ledger.storage.protocol import KVReader, WriteBatch

STORE_FORMAT = 3
"""The format this code reads and writes."""


class StoreFormatError(StorageError):
    """The store was written in another format than this code's."""


def stamp_format(batch: WriteBatch, version: int = STORE_FORMAT) -> None:
    """Record :data:`STORE_FORMAT` (in the batch that writes a new store's first rows), or
    the ``version`` a migration step has reached."""
    batch.put(keys.STORE_FORMAT, str(version).encode())


def stored_format(store: KVReader) -> int | None:
    """The store's format: None for a store with no state in it yet (any code may fill
    it), 1 for a state stored without a version row (the genesis state root row is
    written with the genesis state, in every format)."""
    raw = store.get(keys.STORE_FORMAT)
    if raw is None:
        return None if store.get(keys.GENESIS_STATE_ROOT) is None else 1
    if not raw.isdigit() or len(raw) > 6:
        raise StorageError(f"the store's format record is corrupt: {raw[:16]!r}")
    return int(raw)


LEGACY_TABLES = (
    keys.LEGACY_STATE_NODE,
    keys.LEGACY_PAGE_NODE,
    keys.LEGACY_RETIRED,
    keys.LEGACY_RETIRED_LAST,
)
"""Where older formats kept rows this one does not read (removed by a migration)."""


def migration_unfinished(store: KVReader) -> bool:
    """Whether rows of an older state layout are left (a migration stopped while removing
    them): the store reads correctly, but an audit would find the extra rows."""
    return any(next(store.iterate(table), None) is not None for table in LEGACY_TABLES)


def check_format(store: KVReader, home: str = "DIR") -> None:
    """Raise :class:`StoreFormatError` (one line, naming the fix) unless ``store`` is in
    :data:`STORE_FORMAT` or empty. ``home`` is the node home named in the message."""
    found = stored_format(store)
    migrate = f"`cityledger node migrate-store --home {home}`"
    if found is None:
        return
    if found < STORE_FORMAT:
        raise StoreFormatError(
            f"this store is in format {found}, older than this CityLedger's {STORE_FORMAT}: "
            f"stop the node and migrate it with {migrate} (docs/operations.md, "
            '"Upgrading the store")'
        )
    if found > STORE_FORMAT:
        raise StoreFormatError(
            f"this store is in format {found}, made by a newer CityLedger than this one "
            f"(format {STORE_FORMAT}): run that version"
        )
    if migration_unfinished(store):
        raise StoreFormatError(
            f"this store's migration to format {STORE_FORMAT} did not finish: run {migrate} again"
        )
