"""Catch-up (node/sync.py): one synced write per batch, and a batch cut short (a bad
block, a local fault, the node stopping) is synced too."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from ledger.block import Block
from ledger.errors import CorruptionError
from ledger.storage import MemoryStore, WriteBatch
from node.peers import Peer
from node.wire import SyncResponse
from tests.unit.node.chainkit import Kit, certify, fake_peer, register_member_tx
from tests.unit.node.synckit import Harness, response, source_chain


class SyncLog(MemoryStore):
    """A store that records each write: (operations in it, synced)."""

    def __init__(self) -> None:
        super().__init__()
        self.log: list[tuple[int, bool]] = []

    def write(self, batch: WriteBatch, *, sync: bool = True) -> None:
        self.log.append((len(batch), sync))
        super().write(batch, sync=sync)


def logged_harness(peers: list[Peer]) -> tuple[Harness, SyncLog]:
    store = SyncLog()
    h = Harness(peers, Kit(store=store))
    store.log.clear()  # the genesis write
    return h, store


def test_a_batch_is_synced_once_by_its_last_block() -> None:
    src = source_chain(4)
    p = fake_peer(1, 4)
    h, store = logged_harness([p])
    assert asyncio.run(h.syncer.apply(p, response(src, 1, 4)))
    assert [synced for _, synced in store.log] == [False, False, False, True]
    assert all(n > 0 for n, _ in store.log)  # four blocks, no extra flush
    assert h.kit.chain.head().block_hash == src.chain.head().block_hash


def test_consensus_commits_stay_synced() -> None:
    store = SyncLog()
    kit = Kit(store=store)
    kit.commit([register_member_tx(1, "synced-member", ["viewer"])])
    assert store.log[-1][1] is True


def test_a_batch_cut_short_by_a_bad_block_is_synced() -> None:
    src = source_chain(3)
    p = fake_peer(1, 3)
    h, store = logged_harness([p])
    resp = response(src, 1, 3)
    bad_tip = certify(resp.blocks[2], signers=range(1))
    assert not asyncio.run(h.syncer.apply(p, SyncResponse(resp.blocks, bad_tip)))
    assert h.kit.chain.head().height == 2
    assert store.log[-1] == (0, True)  # one synced empty write after blocks 1 and 2
    assert [synced for _, synced in store.log[:-1]] == [False, False]


def test_a_batch_cut_short_by_a_local_fault_is_synced(monkeypatch: pytest.MonkeyPatch) -> None:
    src = source_chain(3)
    p = fake_peer(1, 3)
    h, store = logged_harness([p])
    validate = h.kit.executor.validate_block

    def fail_at_2(block: Block, now_ms: int | None, **kwargs: bool) -> Any:
        if block.height == 2:
            raise CorruptionError("corrupt record")
        return validate(block, now_ms, **kwargs)

    monkeypatch.setattr(h.kit.executor, "validate_block", fail_at_2)
    assert asyncio.run(h.syncer.apply(p, response(src, 1, 3)))
    assert [height for height, _ in h.faults] == [2]
    assert store.log == [(store.log[0][0], False), (0, True)]


def test_a_batch_cut_short_by_the_node_stopping_is_synced() -> None:
    src = source_chain(4)
    p = fake_peer(1, 4)
    h, store = logged_harness([p])

    async def main() -> None:
        task = asyncio.create_task(h.syncer.apply(p, response(src, 1, 4)))
        while h.kit.chain.head().height < 2:
            await asyncio.sleep(0)
        task.cancel()  # as the node's TaskGroup does on shutdown
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert h.kit.chain.head().height == 2
    assert [synced for _, synced in store.log] == [False, False, True]
    assert store.log[-1] == (0, True)
