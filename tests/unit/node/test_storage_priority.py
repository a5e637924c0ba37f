"""The threads not run by Python (LevelDB's compaction thread among them) are lowered by
``[storage] compaction_nice``; Python's are not."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from pathlib import Path

import pytest

from ledger.storage import KVStore, open_leveldb
from ledger.storage.protocol import WriteBatch
from node import background, storage_priority
from node.config import NodeConfig
from node.storage_priority import StorageThreadPriority
from tests.unit.node.duties_kit import idle_node

linux_only = pytest.mark.skipif(
    not os.path.isdir(storage_priority.TASKS), reason="needs /proc/self/task (Linux)"
)


def _compacting_store(path: Path) -> KVStore:
    """A store that has filled its 1 MiB memtable a few times: LevelDB's background
    thread has been started to write it out."""
    store = open_leveldb(str(path), create=True, write_buffer_mb=1)
    for round_ in range(8):
        batch = WriteBatch()
        for i in range(4000):
            batch.put(b"%d/%d" % (round_, i), bytes(100))
        store.write(batch)
    return store


def _tasks() -> set[int]:
    return {int(name) for name in os.listdir(storage_priority.TASKS)}


@linux_only
def test_the_thread_leveldb_starts_is_lowered_and_the_node_threads_are_not(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    own = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    store = _compacting_store(tmp_path / "db")
    try:
        python = {t.native_id for t in threading.enumerate()}
        leveldb = _tasks() - python - {os.getpid()}  # (started by this test, or an earlier one)
        assert leveldb, "LevelDB has no thread of its own"
        # 19, the lowest: an earlier test's node may have lowered this process's LevelDB
        # thread already, and from there a higher priority would be a raise (refused to
        # an unprivileged process); how the value is reckoned: the test below
        priority = StorageThreadPriority(19)
        assert priority.check() == []  # first seen: lowered at the next check
        with caplog.at_level(logging.INFO, logger="cityledger.node"):
            lowered = priority.check()
        assert "run at nice 19" in caplog.text  # the operator is told
        assert set(lowered) == leveldb
        for tid in lowered:
            assert os.getpriority(os.PRIO_PROCESS, tid) == 19
        assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == own
        assert priority.check() == []  # once each
    finally:
        store.close()


@linux_only
def test_a_python_thread_keeps_its_priority() -> None:
    own = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    release = threading.Event()
    worker = threading.Thread(target=release.wait)
    worker.start()
    try:
        priority = StorageThreadPriority(10)
        lowered = priority.check() + priority.check()
        assert worker.native_id is not None and worker.native_id not in lowered
        assert os.getpriority(os.PRIO_PROCESS, worker.native_id) == own
    finally:
        release.set()
        worker.join()


def test_nice_zero_leaves_every_thread_as_it_is(tmp_path: Path) -> None:
    store = _compacting_store(tmp_path / "db")
    try:
        assert StorageThreadPriority(0).check() == []
    finally:
        store.close()


def test_without_proc_it_does_nothing_and_stops_looking(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(storage_priority, "TASKS", str(tmp_path / "no-such-dir"))
    priority = StorageThreadPriority(10)
    assert priority.check() == []
    assert priority.failed
    monkeypatch.setattr(storage_priority, "TASKS", "/proc/self/task")
    assert priority.check() == []  # given up: not listed once a second for nothing


@linux_only
def test_the_value_is_the_nodes_own_plus_the_setting_at_most_19(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """An operator who started the node niced gets its storage threads lowered from there
    (set absolutely, 10 would be a raise, which an unprivileged node may not make)."""
    set_to: list[int] = []
    store = _compacting_store(tmp_path / "db")
    try:
        monkeypatch.setattr(os, "getpriority", lambda which, who: 15)
        monkeypatch.setattr(os, "setpriority", lambda which, tid, nice: set_to.append(nice))
        priority = StorageThreadPriority(10)
        priority.check()
        assert priority.check() and set(set_to) == {19}
    finally:
        store.close()


@linux_only
def test_a_refused_change_is_logged_once_and_not_tried_again(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[int] = []

    def refuse(which: int, tid: int, nice: int) -> None:
        calls.append(tid)
        raise PermissionError(1, "Operation not permitted")

    store = _compacting_store(tmp_path / "db")
    try:
        monkeypatch.setattr(os, "setpriority", refuse)
        priority = StorageThreadPriority(10)
        with caplog.at_level(logging.WARNING, logger="cityledger.node"):
            assert priority.check() == []  # first seen
            assert priority.check() == []  # refused: given up
            assert priority.check() == []
        assert len(calls) == 1
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1 and "could not lower storage thread" in warnings[0]
    finally:
        store.close()


async def test_the_node_checks_each_second_with_its_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The wiring: ``keep_in_touch`` (the node's once-a-second loop) checks with
    ``[storage] compaction_nice``."""
    checks: list[int] = []

    class Recording(StorageThreadPriority):
        def check(self) -> list[int]:
            checks.append(self.nice)
            if len(checks) == 2:
                raise asyncio.CancelledError
            return []

    monkeypatch.setattr(background, "StorageThreadPriority", Recording)
    monkeypatch.setattr(background, "STATUS_INTERVAL_S", 0.0)
    config = NodeConfig(name="busan-0")
    config.storage.compaction_nice = 7
    node = idle_node(config)
    with pytest.raises(asyncio.CancelledError):
        await background.keep_in_touch(node)
    assert checks == [7, 7]
