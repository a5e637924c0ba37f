"""LevelDB faults become one-line :class:`~ledger.errors.StorageError` s (F3, F5, F11).

A damaged table is caught by LevelDB's block checksums on every read (F3) and
reported as :class:`~ledger.errors.StoreDamagedError`, an unreadable (truncated)
one likewise instead of a raw ``plyvel.IOError`` (F5), and a store is only ever
created on request: a missing one is refused, never silently recreated empty (F11).
"""

from __future__ import annotations

import random
from pathlib import Path

import plyvel
import pytest

from ledger.errors import (
    CorruptionError,
    StorageError,
    StoreDamagedError,
    StoreMissingError,
)
from ledger.storage import WriteBatch, open_leveldb

VALUE_BYTES = 1000


def _store_with_one_table(path: Path, keys: int = 200) -> dict[bytes, bytes]:
    """A closed store whose records all sit in one ``.ldb`` table (incompressible
    values, so a flipped bit lands in a record's bytes, not in snappy's framing)."""
    rng = random.Random(7)
    values = {b"k%04d" % i: rng.randbytes(VALUE_BYTES) for i in range(keys)}
    store = open_leveldb(str(path), create=True)
    batch = WriteBatch()
    for key, value in values.items():
        batch.put(key, value)
    store.write(batch)
    store.close()
    db = plyvel.DB(str(path))
    db.compact_range()
    db.close()
    return values


def _table(path: Path) -> Path:
    (table,) = path.glob("*.ldb")
    return table


def _flip_a_record_bit(path: Path) -> None:
    table = _table(path)
    raw = bytearray(table.read_bytes())
    raw[500] ^= 0x10  # inside the first data block, in a value's bytes
    table.write_bytes(bytes(raw))


def test_a_flipped_bit_goes_unnoticed_without_checksum_verification(tmp_path: Path) -> None:
    """The premise of F3: plyvel's default read returns the damaged value as it is."""
    values = _store_with_one_table(tmp_path / "db")
    _flip_a_record_bit(tmp_path / "db")
    db = plyvel.DB(str(tmp_path / "db"))
    try:
        wrong = [key for key, value in values.items() if db.get(key) != value]
    finally:
        db.close()
    assert len(wrong) == 1


def test_get_detects_a_flipped_bit_in_a_table(tmp_path: Path) -> None:
    values = _store_with_one_table(tmp_path / "db")
    _flip_a_record_bit(tmp_path / "db")
    store = open_leveldb(str(tmp_path / "db"))
    try:
        with pytest.raises(StoreDamagedError, match="checksum mismatch") as caught:
            for key in values:
                store.get(key)
    finally:
        store.close()
    assert str(tmp_path / "db") in str(caught.value)


def test_iterate_detects_a_flipped_bit_in_a_table(tmp_path: Path) -> None:
    _store_with_one_table(tmp_path / "db")
    _flip_a_record_bit(tmp_path / "db")
    store = open_leveldb(str(tmp_path / "db"))
    try:
        with pytest.raises(StoreDamagedError, match="checksum mismatch"):
            list(store.iterate(b"k"))
        with pytest.raises(StoreDamagedError, match="checksum mismatch"):
            list(store.iterate(b"k", reverse=True))
    finally:
        store.close()


def test_a_truncated_table_is_a_one_line_storage_error(tmp_path: Path) -> None:
    """F5: plyvel raises ``IOError`` here; it becomes a one-line StorageError, no traceback."""
    values = _store_with_one_table(tmp_path / "db")
    table = _table(tmp_path / "db")
    table.write_bytes(table.read_bytes()[: table.stat().st_size // 2])
    store = open_leveldb(str(tmp_path / "db"))
    try:
        with pytest.raises(StoreDamagedError) as caught:
            for key in values:
                store.get(key)
    finally:
        store.close()
    text = str(caught.value)
    assert "\n" not in text and table.name in text and "b'" not in text


def test_damage_is_a_local_storage_error_not_a_peer_error() -> None:
    """What the sync and consensus layers rely on to blame their own disk."""
    assert issubclass(StoreDamagedError, CorruptionError)
    assert issubclass(StoreDamagedError, StorageError)
    assert issubclass(StoreMissingError, StorageError)


def test_a_missing_store_is_refused_and_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "data"
    with pytest.raises(StoreMissingError, match=r"no ledger store at .*cityledger node init"):
        open_leveldb(str(missing))
    assert not missing.exists()


def test_a_store_without_current_is_refused_and_left_as_it_is(tmp_path: Path) -> None:
    """F11: without CURRENT, opening must not start a new empty store over the tables."""
    _store_with_one_table(tmp_path / "db")
    (tmp_path / "db" / "CURRENT").unlink()
    before = sorted(p.name for p in (tmp_path / "db").iterdir())
    with pytest.raises(StoreMissingError, match="restore the data directory"):
        open_leveldb(str(tmp_path / "db"))
    assert sorted(p.name for p in (tmp_path / "db").iterdir()) == before


def test_an_empty_directory_is_no_store(tmp_path: Path) -> None:
    with pytest.raises(StoreMissingError):
        open_leveldb(str(tmp_path))
    assert list(tmp_path.iterdir()) == []


def test_create_makes_a_store_that_later_opens_find(tmp_path: Path) -> None:
    store = open_leveldb(str(tmp_path / "data"), create=True)
    batch = WriteBatch()
    batch.put(b"a", b"1")
    store.write(batch)
    store.close()
    reopened = open_leveldb(str(tmp_path / "data"))
    try:
        assert reopened.get(b"a") == b"1"
    finally:
        reopened.close()


def test_a_corrupt_manifest_is_refused_on_open(tmp_path: Path) -> None:
    _store_with_one_table(tmp_path / "db")
    (manifest,) = (tmp_path / "db").glob("MANIFEST-*")
    raw = bytearray(manifest.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    manifest.write_bytes(bytes(raw))
    with pytest.raises(StoreDamagedError, match="is corrupt"):
        open_leveldb(str(tmp_path / "db"))
