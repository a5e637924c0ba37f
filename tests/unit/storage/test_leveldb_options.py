"""The store is opened with the tuned LevelDB options (docs/performance.md, fix 3)
and the integrity checks, whoever opens it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import plyvel
import pytest

from ledger.storage import leveldb, open_leveldb


def test_every_open_passes_the_tuned_options(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[dict[str, Any]] = []
    real = plyvel.DB

    def recording(path: str, **options: Any) -> Any:
        seen.append(options)
        return real(path, **options)

    monkeypatch.setattr(leveldb.plyvel, "DB", recording)
    open_leveldb(str(tmp_path / "db"), create=True).close()
    open_leveldb(str(tmp_path / "db")).close()
    assert [o["create_if_missing"] for o in seen] == [True, False]
    for options in seen:
        assert options["write_buffer_size"] == 64 * 1024 * 1024
        assert options["bloom_filter_bits"] == 10
        assert options["lru_cache_size"] == 256 * 1024 * 1024
        assert options["paranoid_checks"] is True
