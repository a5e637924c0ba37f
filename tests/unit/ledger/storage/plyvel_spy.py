"""Records the options every ``plyvel.DB`` is opened with (for the store option tests)."""

from __future__ import annotations

from typing import Any

import plyvel
import pytest

from ledger.storage import leveldb


def record_plyvel_options(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The options of each ``plyvel.DB(...)`` opened from now on, in order."""
    seen: list[dict[str, Any]] = []
    real = plyvel.DB

    def recording(path: str, **options: Any) -> Any:
        seen.append(options)
        return real(path, **options)

    monkeypatch.setattr(leveldb.plyvel, "DB", recording)
    return seen
