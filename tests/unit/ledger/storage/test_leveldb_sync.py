"""A synced write after unsynced ones makes them durable too, even across a log
rollover (google/leveldb#193): the store syncs every LevelDB log file first."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ledger.storage import WriteBatch, leveldb, open_leveldb


def batch(i: int, size: int = 100) -> WriteBatch:
    b = WriteBatch()
    b.put(b"k%08d" % i, bytes(size))
    return b


def synced_paths(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The files the store fsyncs itself (LevelDB's own syncs are not seen)."""
    paths: dict[int, str] = {}
    synced: list[str] = []
    real_open, real_fsync = os.open, os.fsync

    def opening(path: str, flags: int, *args: int) -> int:
        fd = real_open(path, flags, *args)
        paths[fd] = path
        return fd

    def syncing(fd: int) -> None:
        synced.append(os.path.basename(paths[fd]))
        real_fsync(fd)

    monkeypatch.setattr(leveldb.os, "open", opening)
    monkeypatch.setattr(leveldb.os, "fsync", syncing)
    return synced


def test_synced_writes_alone_sync_no_extra_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_leveldb(str(tmp_path / "db"), create=True)
    synced = synced_paths(monkeypatch)
    for i in range(3):
        store.write(batch(i))
    store.close()
    assert synced == []


def test_a_synced_write_after_unsynced_ones_syncs_every_log_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "db"
    store = leveldb.LevelDBStore(str(path), create=True, write_buffer_bytes=64 * 1024)  # logs roll
    synced = synced_paths(monkeypatch)
    for i in range(40):
        store.write(batch(i, 8 * 1024), sync=False)
    assert synced == []
    logs = sorted(n for n in os.listdir(path) if n.endswith(".log"))
    store.write(WriteBatch())  # what catch-up does when a batch stops early
    assert sorted(synced) == logs and logs
    synced.clear()
    store.write(batch(99))  # nothing unsynced since: LevelDB's own sync suffices
    assert synced == []
    store.close()
    reopened = open_leveldb(str(path))
    assert all(reopened.get(b"k%08d" % i) == bytes(8 * 1024) for i in range(40))
    reopened.close()
