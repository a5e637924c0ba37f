"""The freed C heap handed back to the system every ``[storage] heap_trim_s`` seconds
(node/heap_trim.py)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ledger.storage import WriteBatch
from ledger.storage.leveldb import LevelDBStore
from ledger.storage.memory import MemoryStore
from node import background, heap_trim
from node.config import NodeConfig
from node.heap_trim import FREED_BYTES_DUE, HeapTrim
from node.write_behind import WriteBehind
from tests.unit.node.chainkit import make_node
from tests.unit.node.duties_kit import idle_node

_FRAGMENTED_HEAP = """
import json
from node.heap_trim import HeapTrim

def anon_kb():
    with open("/proc/self/status", encoding="ascii") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("RssAnon:"))

chunks = [bytes(2500) for _ in range(24_000)]  # ~60 MB from the C heap (over 512 B each)
kept = chunks[99::100]  # one in a hundred stays: the freed runs are in the middle
resident = anon_kb()
del chunks
freed = anon_kb()
assert HeapTrim(1, clock=iter([0.0, 5.0, 5.1]).__next__).check() is not None
trimmed = anon_kb()
print(json.dumps([resident, freed, trimmed, len(kept)]))
"""


@pytest.mark.skipif(heap_trim._MALLOC_TRIM is None, reason="malloc_trim is glibc's")
def test_a_trim_gives_back_what_was_freed_in_the_middle_of_the_heap() -> None:
    """Freed memory between live allocations stays resident until a trim: glibc gives
    back by itself only a free run at the top of its heap. In a process of its own, so
    that the heap is laid out as the test says, not as earlier tests left it."""
    out = subprocess.run(
        [sys.executable, "-c", _FRAGMENTED_HEAP], capture_output=True, text=True, check=True
    )
    resident, freed, trimmed, kept = json.loads(out.stdout)
    assert kept == 240
    assert resident - freed < 10_000  # free() alone kept (nearly) all of it, in kB
    assert freed - trimmed > 40_000  # the trim gave back most of the 60 MB


def test_a_trim_at_most_once_an_interval() -> None:
    now = [100.0]
    calls: list[int] = []

    def trim(pad: int) -> int:
        calls.append(pad)
        now[0] += 0.002  # a trim takes a little time
        return 1

    trimmer = HeapTrim(10, trim=trim, clock=lambda: now[0])
    for _ in range(9):  # each second, as the node's loop calls it
        now[0] += 1
        assert trimmer.check() is None
    now[0] += 1
    first = trimmer.check()
    assert calls == [0]  # malloc_trim(0): keep no padding at the top
    assert trimmer.check() is None
    now[0] += 10
    second = trimmer.check()
    assert calls == [0, 0] and first == pytest.approx(0.002) and second == pytest.approx(0.002)


def test_a_trim_as_soon_as_the_stores_buffers_have_shrunk() -> None:
    """A written-out memtable's pages go back at the next check, not an interval later;
    a smaller drop, a rise or a store without an estimate waits for the interval."""
    now = [0.0]
    calls: list[int] = []
    trimmer = HeapTrim(10, trim=lambda pad: calls.append(pad) or 1, clock=lambda: now[0])
    mib = 1024 * 1024
    for buffers in (60 * mib, 61 * mib, 61 * mib - FREED_BYTES_DUE + 1, None, 70 * mib):
        now[0] += 1
        assert trimmer.check(buffers) is None
    now[0] += 1
    assert trimmer.check(70 * mib - FREED_BYTES_DUE) is not None  # a memtable freed
    assert calls == [0]
    now[0] += 1
    assert trimmer.check(5 * mib) is not None  # and the next one, a second later
    now[0] += 1
    assert trimmer.check(5 * mib) is None
    assert calls == [0, 0]
    assert HeapTrim(0, trim=lambda pad: calls.append(pad) or 1).check(0) is None  # off
    assert calls == [0, 0]


def test_leveldbs_estimate_drops_when_a_memtable_is_written_out(tmp_path: Path) -> None:
    """What the trim waits for: a full memtable written to a table file is freed, and
    LevelDB's own estimate (what the node's loop reads) falls by at least the trigger."""
    mib = 1024 * 1024
    store = LevelDBStore(
        str(tmp_path / "db"), create=True, block_cache_bytes=8 * mib, write_buffer_bytes=16 * mib
    )
    try:
        highest = lowest_since = store.memory_bytes()[0]
        deadline = time.monotonic() + 30
        for i in range(400):  # ~40 MB of incompressible rows: two memtables and more
            batch = WriteBatch()
            for j in range(100):
                batch.put(b"k%06d%03d" % (i, j), os.urandom(1000))
            store.write(batch, sync=False)
            used = store.memory_bytes()[0]
            if used > highest:
                highest = lowest_since = used
            lowest_since = min(lowest_since, used)
            if highest - lowest_since >= FREED_BYTES_DUE or time.monotonic() > deadline:
                break
        assert highest > 16 * mib  # a memtable filled
        assert highest - lowest_since >= FREED_BYTES_DUE
    finally:
        store.close()


async def test_the_node_reads_the_stores_buffers_each_check(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The wiring, on a real node: its own LevelDB store's estimate goes to each check,
    not the write-behind queue its chain writes through (which has none: until
    2026-12-07 the loop asked that one, and the trim on a freed memtable never fired);
    a node on a memory store gives None."""
    seen: list[int | None] = []

    class Recording(HeapTrim):
        def check(self, buffers: int | None = None) -> float | None:
            seen.append(buffers)
            raise asyncio.CancelledError

    monkeypatch.setattr(background, "HeapTrim", Recording)
    monkeypatch.setattr(background, "STATUS_INTERVAL_S", 0.0)
    leveldb = LevelDBStore(str(tmp_path / "db"), create=True)
    estimates = []
    for store in (leveldb, MemoryStore()):
        node = make_node(store=store)
        node.config.storage.compaction_nice = 0  # leave this process's threads alone
        assert isinstance(node.chain.store, WriteBehind)  # as on a running node
        try:
            with pytest.raises(asyncio.CancelledError):
                await background.keep_in_touch(node)
            estimates.append(background.store_buffers(store))
        finally:
            node.chain.store.close()  # and the store under it
    assert seen == estimates and estimates[0] is not None and estimates[1] is None


@pytest.mark.parametrize("interval_s", [0, 10])
def test_no_trim_when_off_or_without_glibc(interval_s: int) -> None:
    calls: list[int] = []

    def record(pad: int) -> int:
        calls.append(pad)
        return 1

    trim = None if interval_s else record
    trimmer = HeapTrim(interval_s, trim=trim, clock=iter([0.0, 1e9, 2e9]).__next__)
    assert not trimmer.enabled
    assert trimmer.check() is None
    assert calls == []


async def test_the_node_checks_each_second_with_its_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The wiring: ``keep_in_touch`` (the node's once-a-second loop) trims with
    ``[storage] heap_trim_s`` and counts each trim's time in ``/metrics``."""
    intervals: list[float] = []
    counted: list[float] = []

    class Recording(HeapTrim):
        def check(self, buffers: int | None = None) -> float | None:
            intervals.append(self.interval_s)
            if len(intervals) == 3:
                raise asyncio.CancelledError
            return 0.003 if len(intervals) == 2 else None  # the second check trims

    monkeypatch.setattr(background, "HeapTrim", Recording)
    monkeypatch.setattr(background, "STATUS_INTERVAL_S", 0.0)
    config = NodeConfig(name="busan-0")
    config.storage.heap_trim_s = 30
    config.storage.compaction_nice = 0
    node = idle_node(config, heap_trimmed=counted.append)
    with pytest.raises(asyncio.CancelledError):
        await background.keep_in_touch(node)
    assert intervals == [30, 30, 30]
    assert counted == [0.003]
