"""The store is opened with the tuned LevelDB options (docs/performance.md, fix 3)
and the integrity checks, whoever opens it."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger.storage import (
    DEFAULT_BLOCK_CACHE_MB,
    DEFAULT_TABLE_FILE_MB,
    DEFAULT_WRITE_BUFFER_MB,
    MIB,
    WriteBatch,
    open_leveldb,
)
from tests.unit.ledger.storage.plyvel_spy import record_plyvel_options
from tests.unit.ledger.storage.tables_kit import write_tables


def test_every_open_passes_the_tuned_options(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = record_plyvel_options(monkeypatch)
    open_leveldb(str(tmp_path / "db"), create=True).close()
    open_leveldb(str(tmp_path / "db")).close()
    assert [o["create_if_missing"] for o in seen] == [True, False]
    for options in seen:
        assert options["write_buffer_size"] == DEFAULT_WRITE_BUFFER_MB * MIB
        assert options["bloom_filter_bits"] == 10
        assert options["lru_cache_size"] == DEFAULT_BLOCK_CACHE_MB * MIB
        assert options["paranoid_checks"] is True
        assert options["compression"] is None  # ledger.storage.DEFAULT_COMPRESS
        assert options["max_file_size"] == DEFAULT_TABLE_FILE_MB * MIB


def test_the_cache_and_buffer_sizes_are_the_callers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = record_plyvel_options(monkeypatch)
    open_leveldb(str(tmp_path / "db"), create=True, block_cache_mb=16, write_buffer_mb=2).close()
    assert seen[0]["lru_cache_size"] == 16 * MIB
    assert seen[0]["write_buffer_size"] == 2 * MIB


def _table_sizes(path: Path, table_file_mb: int) -> list[int]:
    """Sizes of the table files of 12 MiB of incompressible rows in hash-like random
    order, written through a 1 MiB memtable, then compacted (``compact_range``)."""
    write_tables(str(path), table_file_mb, batches=48, rows=64, key_size=32, value_size=4096)
    return sorted(f.stat().st_size for f in path.iterdir() if f.suffix == ".ldb")


def test_table_files_are_cut_at_the_callers_size(tmp_path: Path) -> None:
    small = _table_sizes(tmp_path / "small", 2)
    large = _table_sizes(tmp_path / "large", 16)
    assert sum(small) > 12 * MIB and sum(large) > 12 * MIB  # the same rows, all in tables
    # LevelDB may pass the size by one block; how many files stay small (the memtable's
    # first flushes) depends on when its background compactions ran
    assert max(small) < 3 * MIB < max(large)


def _store_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.iterdir() if f.suffix == ".ldb")


def _write_compressible_rows(path: Path, *, compress: bool, first: int = 0) -> None:
    """4 MiB of rows that compress well, pushed out of the memtable into table files."""
    store = open_leveldb(str(path), create=True, write_buffer_mb=1, compress=compress)
    for chunk in range(4):
        batch = WriteBatch()
        for i in range(first + chunk * 256, first + (chunk + 1) * 256):
            batch.put(b"r" + i.to_bytes(4, "big"), b"city ledger row " * 256)
        store.write(batch)
    store.close()


def test_compression_is_the_callers_and_changes_what_is_on_disk(tmp_path: Path) -> None:
    _write_compressible_rows(tmp_path / "plain", compress=False)
    _write_compressible_rows(tmp_path / "snappy", compress=True)
    plain, snappy = _store_bytes(tmp_path / "plain"), _store_bytes(tmp_path / "snappy")
    assert plain > 2 * MIB  # the rows reached table files
    assert snappy < plain / 4


def test_a_store_reads_blocks_written_either_way(tmp_path: Path) -> None:
    path = tmp_path / "db"
    _write_compressible_rows(path, compress=True)
    _write_compressible_rows(path, compress=False, first=1024)
    store = open_leveldb(str(path), compress=True)
    rows = list(store.iterate(b"r"))
    store.close()
    assert len(rows) == 2048
    assert {value for _, value in rows} == {b"city ledger row " * 256}
