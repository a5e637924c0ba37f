"""Catch-up's block writes on a writer thread (node/write_behind.py): reads see what is
queued, writes land in order, a synced write waits for every queued one, and nothing is
written after a write that failed."""

from __future__ import annotations

import asyncio
import threading

import pytest

from ledger.errors import StorageError
from ledger.storage import MemoryStore, WriteBatch
from node.chain import ChainStore
from node.write_behind import WriteBehind
from tests.unit.chain_kit import copy_store
from tests.unit.node.chainkit import Kit, certify, fake_peer, register_member_tx
from tests.unit.node.synckit import Harness, response, source_chain


def batch(**rows: bytes | None) -> WriteBatch:
    b = WriteBatch()
    for key, value in rows.items():
        if value is None:
            b.delete(b"\x01" + key.encode())
        else:
            b.put(b"\x01" + key.encode(), value)
    return b


class GatedStore(MemoryStore):
    """A store whose writes wait for ``gate`` (so a test sees them queued), in a log."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.log: list[tuple[list[bytes], bool]] = []
        self.fail_at: int | None = None
        self.threads: list[str] = []

    def write(self, b: WriteBatch, *, sync: bool = True) -> None:
        if threading.current_thread().name.startswith("write-behind"):
            assert self.gate.wait(5)
        if self.fail_at == len(self.log):
            self.log.append(([], sync))
            raise StorageError("disk full")
        self.log.append(([k for k, _ in b.items()], sync))
        self.threads.append(threading.current_thread().name)
        super().write(b, sync=sync)


def test_reads_see_queued_batches_newest_first_before_they_are_written() -> None:
    base = GatedStore()
    base.write(batch(a=b"0", gone=b"old"))
    store = WriteBehind(base)
    with store.deferring():
        store.write(batch(a=b"1", b=b"1"), sync=False)
        store.write(batch(a=b"2", gone=None), sync=False)
        assert base.get(b"\x01a") == b"0"  # nothing written yet
        assert store.get(b"\x01a") == b"2" and store.get(b"\x01b") == b"1"
        assert store.get(b"\x01gone") is None
        assert list(store.iterate(b"\x01")) == [(b"\x01a", b"2"), (b"\x01b", b"1")]
        base.gate.set()
        store.drain()
    assert [keys for keys, _ in base.log[1:]] == [[b"\x01a", b"\x01b"], [b"\x01a", b"\x01gone"]]
    assert base.get(b"\x01a") == b"2" and base.get(b"\x01gone") is None
    store.finish()


def test_a_scan_of_a_table_sees_the_queued_batches_that_write_it() -> None:
    """A queued batch's tables (its keys' first two bytes) decide whether a scan must
    look at it: the validator sets are scanned for every block and rarely written."""
    base = GatedStore()
    row = WriteBatch()
    row.put(b"ef0", b"base")
    base.write(row)
    queued = WriteBatch()
    queued.put(b"ab1", b"1")
    queued.put(b"cd1", b"2")
    queued.delete(b"ef0")
    assert queued.tables() == {b"ab", b"cd", b"ef"}
    assert dict(queued.operations()) == {b"ab1": b"1", b"cd1": b"2", b"ef0": None}
    store = WriteBehind(base)
    with store.deferring():
        store.write(queued, sync=False)
        assert list(store.iterate(b"ab")) == [(b"ab1", b"1")]
        assert list(store.iterate(b"ef")) == []  # deleted by the queued batch
        assert list(store.iterate(b"gh")) == []
        assert store.get(b"cd1") == b"2" and store.get(b"ef0") is None
        base.gate.set()
    assert base.get(b"ab1") == b"1" and base.get(b"ef0") is None
    store.finish()


def test_a_synced_write_waits_for_every_queued_one_and_outside_nothing_is_deferred() -> None:
    base = GatedStore()
    store = WriteBehind(base)
    with store.deferring():
        store.write(batch(a=b"1"), sync=False)
        threading.Timer(0.05, base.gate.set).start()
        store.write(batch(head=b"h"), sync=True)
        assert [synced for _, synced in base.log] == [False, True]
    store.write(batch(c=b"3"), sync=False)  # not deferring: written in place
    assert base.log[-1] == ([b"\x01c"], False)
    store.finish()


def test_nothing_is_written_after_a_failed_write_and_the_failure_is_raised() -> None:
    base = GatedStore()
    base.fail_at = 0
    store = WriteBehind(base)
    with pytest.raises(StorageError, match="disk full"), store.deferring():
        store.write(batch(a=b"1"), sync=False)
        store.write(batch(b=b"2"), sync=False)
        base.gate.set()
        store.drain()
    assert base.get(b"\x01b") is None  # the block after the failed one never landed
    with pytest.raises(StorageError, match="disk full"):
        store.write(batch(c=b"3"), sync=True)
    assert base.get(b"\x01c") is None
    store.finish()


def test_queued_batches_are_bounded() -> None:
    base = GatedStore()
    store = WriteBehind(base)
    threading.Timer(0.1, base.gate.set).start()
    with store.deferring():
        for n in range(10):
            store.write(batch(**{f"k{n}": b"v"}), sync=False)
            assert len(store._queued) <= 4
    assert len(base.log) == 10
    store.finish()


def test_catch_up_through_a_write_behind_store_ends_at_the_same_head_synced_once() -> None:
    src = source_chain(6)
    base = GatedStore()
    base.gate.set()
    kit = Kit(store=WriteBehind(base))
    base.log.clear()  # the genesis
    base.threads.clear()
    p = fake_peer(1, 6)
    h = Harness([p], kit)
    assert asyncio.run(h.syncer.apply(p, response(src, 1, 6)))
    assert kit.chain.head().block_hash == src.chain.head().block_hash
    assert [synced for _, synced in base.log] == [False] * 5 + [True]
    assert all(t.startswith("write-behind") for t in base.threads[:5])  # beside the loop
    assert base.threads[5] == threading.current_thread().name
    assert not kit.chain.store._queued  # type: ignore[attr-defined]


def test_a_consensus_commit_is_written_behind_synced_and_the_next_block_builds_on_it() -> None:
    base = GatedStore()
    base.gate.set()
    kit = Kit(store=WriteBehind(base))
    base.gate.clear()
    base.log.clear()
    first = kit.build([register_member_tx(1, "behind-1", ["viewer"])])
    kit.executor.commit(first, certify(first.block), behind=True)
    assert kit.chain.head().height == 1  # read through the queued batch
    assert ChainStore(base, kit.genesis).head().height == 0  # not written yet
    second = kit.build([register_member_tx(2, "behind-2", ["viewer"])])
    assert second.block.header.prev_hash == first.block.hash
    kit.executor.commit(second, certify(second.block), behind=True)
    base.gate.set()
    kit.chain.store.close()
    assert [synced for _, synced in base.log] == [True, True]
    assert all(t.startswith("write-behind") for t in base.threads[-2:])
    assert ChainStore(base, kit.genesis).head().block_hash == second.block.hash


def test_nothing_is_queued_once_closed() -> None:
    store = WriteBehind(MemoryStore())
    store.close()
    with pytest.raises(StorageError, match="closed"):
        store.queue(batch(a=b"1"), sync=True)


class ViewedStore(GatedStore):
    """A gated store with read views (a copy of its rows when asked), as LevelDB has."""

    def read_view(self) -> MemoryStore:
        return copy_store(self)


def test_a_read_view_waits_for_the_queued_writes() -> None:
    """A snapshot is taken from a read view of the height just committed: the view must
    hold the batches still queued behind, not the store as the writer thread left it."""
    base = ViewedStore()
    store = WriteBehind(base)
    with store.deferring():
        store.queue(batch(a=b"1"), sync=True)
        threading.Timer(0.05, base.gate.set).start()
        view = store.read_view()
        assert view is not None
        assert view.get(b"\x01a") == b"1"
    store.close()


def test_no_read_view_without_one_in_the_store() -> None:
    assert WriteBehind(MemoryStore()).read_view() is None
