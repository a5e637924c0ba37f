"""``private_copy``: a stopped node's store read without changing one byte of it.

Opening LevelDB replays its write-ahead log into a new table and deletes the log, so an
audit that opened a node's ``data/`` in place rewrote the evidence it audited (issue 20).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ledger.errors import StoreLockedError, StoreMissingError
from ledger.storage import WriteBatch, open_leveldb
from ledger.storage.snapshot import private_copy


def fingerprint(directory: Path) -> dict[str, str]:
    """Every file's name and SHA-256 of its bytes."""
    return {
        entry.name: hashlib.sha256(entry.read_bytes()).hexdigest()
        for entry in sorted(directory.iterdir())
        if entry.is_file()
    }


def store_with_unflushed_log(path: Path, rows: int = 200) -> None:
    """A closed store whose last writes are still only in its ``*.log`` (as a stopped
    node's usually is), so the next open in place would rewrite it."""
    store = open_leveldb(str(path), create=True)
    batch = WriteBatch()
    for i in range(rows):
        batch.put(b"k%04d" % i, b"v%04d" % i)
    store.write(batch)
    store.close()


def test_opening_in_place_rewrites_the_store_which_is_why_the_copy_exists(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    store_with_unflushed_log(data)
    before = fingerprint(data)
    open_leveldb(str(data)).close()
    assert fingerprint(data) != before, "LevelDB no longer rewrites on open: revisit the copy"


def test_reading_through_the_copy_leaves_every_file_identical(tmp_path: Path) -> None:
    data = tmp_path / "data"
    store_with_unflushed_log(data)
    open_leveldb(str(data)).close()  # some rows in a table file (hard-linked), ...
    store = open_leveldb(str(data))
    batch = WriteBatch()
    batch.put(b"late", b"only in the log")  # ... and some only in the log (copied)
    store.write(batch)
    store.close()
    before = fingerprint(data)
    with private_copy(str(data), temp_root=str(tmp_path)) as copy:
        store = open_leveldb(copy)
        assert store.get(b"k0007") == b"v0007" and store.get(b"late") == b"only in the log"
        batch = WriteBatch()
        batch.put(b"k0007", b"changed in the copy only")
        store.write(batch)
        store.close()
        kept = copy
    assert fingerprint(data) == before
    assert not os.path.exists(kept), "the copy is removed afterwards"
    assert [p.name for p in tmp_path.iterdir()] == ["data"]


def test_a_store_a_running_process_holds_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    store_with_unflushed_log(data)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import plyvel, sys, time; db = plyvel.DB(sys.argv[1]); print('open', flush=True);"
            " time.sleep(60)",
            str(data),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        copy = private_copy(str(data), temp_root=str(tmp_path))
        with pytest.raises(StoreLockedError, match="in use by another process"), copy:
            pass
    finally:
        holder.kill()
        holder.wait(timeout=10)
    assert [p.name for p in tmp_path.iterdir()] == ["data"], "no copy left behind"


def test_a_directory_without_a_store_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StoreMissingError, match="no ledger store"), private_copy(str(tmp_path)):
        pass


def test_a_table_the_manifest_does_not_list_is_copied_not_linked(tmp_path: Path) -> None:
    """A compaction cut short by a stop leaves table files the MANIFEST does not list,
    whose numbers LevelDB hands out again: the copy writes its new table under such a
    name. Linked, that would rewrite the original (seen on a 191,710-transaction bench
    store: the audit rewrote its 002393.ldb)."""
    data = tmp_path / "data"
    store_with_unflushed_log(data)
    numbers = [int(n.split(".")[0]) for n in os.listdir(data) if n[0].isdigit()]
    for number in range(max(numbers) + 1, max(numbers) + 9):  # the next numbers
        (data / f"{number:06d}.ldb").write_bytes(b"left by a cut-short compaction" * 64)
    before = fingerprint(data)
    with private_copy(str(data)) as copy:
        store = open_leveldb(copy)  # replays the log into a new table
        try:
            assert store.get(b"k0007") == b"v0007"
        finally:
            store.close()
        written = [n for n in os.listdir(copy) if n.endswith(".ldb")]
        assert any(n in before for n in written), "LevelDB did reuse an orphan's name"
    assert fingerprint(data) == before
