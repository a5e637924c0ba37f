"""The store is opened with the tuned LevelDB options (docs/performance.md, fix 3)
and the integrity checks, whoever opens it."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger.storage import DEFAULT_BLOCK_CACHE_MB, DEFAULT_WRITE_BUFFER_MB, MIB, open_leveldb
from tests.unit.ledger.storage.plyvel_spy import record_plyvel_options


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


def test_the_cache_and_buffer_sizes_are_the_callers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = record_plyvel_options(monkeypatch)
    open_leveldb(str(tmp_path / "db"), create=True, block_cache_mb=16, write_buffer_mb=2).close()
    assert seen[0]["lru_cache_size"] == 16 * MIB
    assert seen[0]["write_buffer_size"] == 2 * MIB
