"""The store an offline audit reads (``audit verify --home``): opened from private
copies, so that the audit changes none of the node's files, and whether to hold its rows
in memory or stream them (docs/audit.md, "Memory")."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from functools import partial

from cli.output import err_console, fail
from ledger.errors import StoreDamagedError
from ledger.genesis import Genesis
from ledger.storage import KVStore, keys, open_leveldb
from ledger.storage.format import check_format
from ledger.storage.reopening import ReopeningStore
from ledger.storage.snapshot import private_copy
from node.audit import genesis_mismatch
from node.audit_scratch import MAX_OPEN_FILES
from node.config import Home

# The in-memory offline audit holds the store's chain rows. Measured on a 100,000-transaction
# chain (162 MB of LevelDB files): peak resident size 949 MB in segments, 1,327 MB in one
# replay (docs/audit.md, "Memory").
MEMORY_PER_STORE_BYTE = 8
STREAM_ABOVE_MB = 512  # holding more than this streams instead (see should_stream)


@contextmanager
def offline_store(
    home: str, genesis: Genesis, streaming: bool
) -> Iterator[tuple[KVStore, str | None]]:
    """A stopped node's store, opened from a private copy so the audit changes none of
    its files (ledger/storage/snapshot.py: opening LevelDB itself rewrites its log); and,
    streaming, a second copy of it, unopened, made before the first is opened (so both
    hold the same rows), where the state tree's process compares its tables."""
    data = Home(home).data
    warning = None if streaming else memory_warning(data)
    if warning is not None:
        err_console.print(f"[yellow]warning:[/] {warning}")
    with private_copy(data) as copy, ExitStack() as second:
        second_copy = second.enter_context(private_copy(copy)) if streaming else None
        # Streaming, the store is read in order once or twice: a small cache, few open
        # tables, reopened as it is read to unmap them (ledger/storage/reopening.py).
        bounded = partial(open_leveldb, copy, block_cache_mb=32, max_open_files=MAX_OPEN_FILES)
        store: KVStore = ReopeningStore(bounded) if streaming else open_leveldb(copy)
        try:
            stored = store.get(keys.GENESIS_HASH)
            if stored is not None and stored != genesis.hash:
                fail(f"{home}'s store: {genesis_mismatch(stored, genesis.hash).problem}")
            check_format(store, home)  # a store of another format would differ in every state row
            base = store.get(keys.STATE_BASE)
            if base is not None:
                fail(
                    f"{home}'s store joined by state sync at height "
                    f"{int.from_bytes(base, 'big')}: it holds no blocks before it, so it cannot "
                    "be audited from genesis; audit a node that keeps the whole chain"
                )
            yield store, second_copy
        finally:
            store.close()


def damaged_store_message(exc: StoreDamagedError, data: str) -> str:
    """What a damaged audited store means for the evidence, and what to do instead."""
    if exc.damaged:
        held = (f"{os.path.join(data, name)} holds {holds}" for name, holds in exc.damaged)
        files = "; ".join(held)
    else:
        files = f"no table file fails its checksums: the damage is in a log or MANIFEST of {data}"
    return (
        f"the audited store is damaged (its bytes fail LevelDB's checksums): {files}. "
        "For the evidence: those records cannot be read from this copy, so the audit cannot "
        "vouch for them, and it stopped there (nothing after them was checked); a disk fault "
        "and tampering look the same. Audit another copy of the same chain: the agency's "
        "backup of this store, or another agency's node (audit verify --node URL, or --home "
        "on a copy of its home). For the operator: restore the data directory from a backup "
        "or rebuild it from the peers (docs/operations.md, 'A damaged or missing store')."
    )


def _store_bytes(data_dir: str) -> int:
    return sum(entry.stat().st_size for entry in os.scandir(data_dir) if entry.is_file())


def should_stream(data_dir: str) -> bool:
    """Stream unless holding the store's rows in memory (faster: parallel segments) takes
    at most STREAM_ABOVE_MB and fits in the memory available."""
    need = MEMORY_PER_STORE_BYTE * _store_bytes(data_dir)
    available = available_memory()
    return need > STREAM_ABOVE_MB * 2**20 or (available is not None and need > available)


def memory_warning(data_dir: str) -> str | None:
    """What to tell an auditor whose machine may not hold the audit of this store."""
    size = _store_bytes(data_dir)
    need = MEMORY_PER_STORE_BYTE * size
    available = available_memory()
    if available is None or need <= available:
        return None
    return (
        f"this audit keeps the store's rows in memory: about {need / 2**30:.1f} GiB for "
        f"{size / 2**30:.2f} GiB of store files, and {available / 2**30:.1f} GiB is available; "
        "the system may stop it before it ends (leave out --in-memory to stream instead)"
    )


def available_memory() -> int | None:
    """MemAvailable from /proc/meminfo, in bytes (None where there is none)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None
