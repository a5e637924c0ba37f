"""A node that prunes blocks ([storage] block_keep_heights, ledger/block_prune.py): the
window, one atomic batch per step, a backlog over several steps, a restart, the config's
refusal, the reads that answer ``block_pruned``, sync serving and snapshots below the
oldest kept block, and the audit of such a store (node/audit_block_pruned.py)."""

from __future__ import annotations

import asyncio

import pytest

from ledger.block_prune import (
    BlockPruned,
    oldest_block_height,
    prune_blocks_step,
    pruned_to,
)
from ledger.crypto import PrivateKey
from ledger.encoding import decode
from ledger.errors import StorageError
from ledger.storage import MemoryStore, WriteBatch, keys
from ledger.validators import ValidatorUpdate
from lightclient import validator_history as vh
from node.api.validator_history import history
from node.audit_block_pruned import audit_block_pruned
from node.config import ConfigError, NodeConfig
from node.executor import Executor
from node.service import Queries
from node.snapshots import Held, SnapshotBook, describe
from node.statesync_check import check_description
from node.wire import SyncRequest, decode_message
from tests.unit.node.chainkit import ADMIN, CHAIN, GENESIS, Kit, fake_peer, register_member_tx
from tests.unit.node.synckit import Harness
from tests.unit.node.valset_kit import registered, updates_tx

BLOCKS = 12
TXS = 2


def _chain(keep: int = 0) -> Kit:
    """``BLOCKS`` blocks of ``TXS`` registrations each, pruned to ``keep`` (0: archive)."""
    kit = Kit(MemoryStore())
    kit.executor.prune_blocks(keep)
    for height in range(1, BLOCKS + 1):
        base = (height - 1) * TXS
        kit.commit(
            [register_member_tx(base + i, f"bp-{height}-{i}", ["clerk"]) for i in range(TXS)]
        )
    return kit


def _consistent(kit: Kit) -> int:
    """Check the store's invariant (below the oldest: header and certificate only; from
    it on: the block and its receipts) and return the oldest kept height."""
    oldest, head = oldest_block_height(kit.store), kit.chain.head().height
    for height in range(1, head + 1):
        receipts = list(kit.store.iterate(keys.RECEIPT + keys.height_bytes(height)))
        kept = kit.store.get(keys.pruned_header_key(height))
        assert kit.chain.certificate(height) is not None
        if height < oldest:
            assert kit.chain.block(height) is None and not receipts and kept is not None
        else:
            block = kit.chain.block(height)
            assert block is not None and len(receipts) == len(block.txs) > 0
            assert kept is None
    return oldest


def test_a_pruning_node_keeps_the_window_and_every_header_and_certificate() -> None:
    pruned, archive = _chain(4), _chain(0)
    assert pruned.chain.head() == archive.chain.head()  # no byte of the chain changes
    assert _consistent(pruned) == BLOCKS - 3 == pruned_to(pruned.store)
    assert _consistent(archive) == 1 and archive.executor.last_block_prune is None
    for height in range(1, BLOCKS + 1):  # the hash chain is whole
        assert pruned.chain.header(height) == archive.chain.header(height)
    step = pruned.executor.last_block_prune
    assert step is not None and step.done and step.oldest == BLOCKS - 3
    size = sum(len(k) + len(v) for k, v in pruned.store.iterate(b""))
    assert size < sum(len(k) + len(v) for k, v in archive.store.iterate(b""))


def test_each_step_is_one_atomic_batch_and_a_backlog_is_worked_off_over_steps() -> None:
    """Pruning switched on over a long history: steps of at most ``limit`` rows; the
    store is consistent between any two, and a failed write leaves it as it was."""
    kit = _chain(0)
    head = kit.chain.head().height
    writes: list[WriteBatch] = []
    real_write = kit.store.write

    def one_write(batch: WriteBatch, *, sync: bool = True) -> None:
        writes.append(batch)
        real_write(batch, sync=sync)

    kit.store.write = one_write  # type: ignore[method-assign]
    steps = 0
    while True:
        before = len(writes)
        step = prune_blocks_step(kit.store, head, 2, limit=2 * (TXS + 1))
        steps += 1
        assert len(writes) - before == (0 if step.blocks == 0 else 1)
        assert step.blocks <= 2 and _consistent(kit) == step.oldest
        if step.done:
            break
    assert steps == 5 and oldest_block_height(kit.store) == head - 1  # 10 blocks, 2 a step

    def failing(batch: WriteBatch, *, sync: bool = True) -> None:
        raise StorageError("disk full")

    more = _chain(0)
    rows = dict(more.store.iterate(b""))
    more.store.write = failing  # type: ignore[method-assign]
    with pytest.raises(StorageError):
        prune_blocks_step(more.store, head, 2)
    assert dict(more.store.iterate(b"")) == rows  # the crash left nothing half done


def test_a_restarted_node_goes_on_from_the_oldest_it_recorded() -> None:
    kit = _chain(0)
    prune_blocks_step(kit.store, BLOCKS, 2, limit=1)  # one block, then the node stops
    assert pruned_to(kit.store) == 2
    again = Executor(kit.chain, kit.sigs)  # a new process over the same store
    again.prune_blocks(6)
    kit.executor = again
    kit.commit([register_member_tx(BLOCKS * TXS, "bp-late", ["clerk"])])
    assert _consistent(kit) == BLOCKS + 1 - 5


def test_a_state_synced_store_prunes_from_after_its_base() -> None:
    kit = _chain(0)
    batch = WriteBatch()
    batch.put(keys.STATE_BASE, keys.height_bytes(5))
    for height in range(1, 6):  # what a state sync at 5 holds: no block up to its base
        batch.delete(keys.block_key(height))
    kit.store.write(batch)
    assert oldest_block_height(kit.store) == 6
    step = prune_blocks_step(kit.store, BLOCKS, 4)
    assert (step.oldest, step.blocks) == (BLOCKS - 3, BLOCKS - 3 - 6)


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ("[storage]\nblock_keep_heights = 1999\n", "below [snapshots] interval × keep = 1000 × 2"),
        ("[storage]\nblock_keep_heights = 50\n[snapshots]\ninterval = 0\n", "needs snapshots"),
    ],
)
def test_the_config_refuses_a_window_peers_could_not_join_from(settings: str, problem: str) -> None:
    with pytest.raises(ConfigError, match="block_keep_heights") as caught:
        NodeConfig.from_toml(settings)
    assert problem in str(caught.value) and "\n" not in str(caught.value)
    ok = NodeConfig.from_toml(
        "[storage]\nblock_keep_heights = 30\n[snapshots]\ninterval = 10\nkeep = 3\n"
    )
    assert ok.storage.block_keep_heights == 30
    assert NodeConfig.from_toml("[snapshots]\ninterval = 0\n").storage.block_keep_heights == 0


def test_reads_of_a_pruned_height_say_block_pruned() -> None:
    kit = _chain(4)
    queries = Queries(kit.chain)
    old, oldest = 3, BLOCKS - 3
    with pytest.raises(BlockPruned, match=f"from height {oldest} on") as caught:
        queries.block(old)
    assert (caught.value.code, caught.value.http_status) == ("block_pruned", 410)
    tx = Kit().build([register_member_tx(2 * TXS, f"bp-{old}-0", ["clerk"])]).block.txs[0]
    assert kit.chain.tx_location(tx.hash) == (old, 0)  # the index row is kept
    with pytest.raises(BlockPruned, match=f"committed at height {old} \\(index 0\\)"):
        queries.receipt(tx.hash)
    certified = queries.certified(old)  # the light-client answer still works
    assert certified.header.height == old and certified.cert.height == old
    header = certified.header
    assert queries.header_with_log_size(header.log_size) == old
    assert queries.tx_inclusion(tx.hash, header.log_size) is not None
    assert queries.block(oldest).height == oldest


def test_sync_serving_below_the_oldest_block_answers_none_without_blame() -> None:
    kit = _chain(4)
    harness = Harness([], kit)
    frame = asyncio.run(harness.syncer.response_frame(SyncRequest(2, 5)))
    assert frame is not None
    resp = decode_message(frame, len(frame))
    assert resp.blocks == () and harness.syncer.below_oldest == 1  # type: ignore[union-attr]
    frame = asyncio.run(harness.syncer.response_frame(SyncRequest(BLOCKS - 3, 5)))
    assert frame is not None
    blocks = decode_message(frame, len(frame)).blocks  # type: ignore[union-attr]
    assert [b.height for b in blocks] == list(range(BLOCKS - 3, BLOCKS + 1))
    assert harness.syncer.below_oldest == 1


def test_a_snapshot_whose_next_blocks_are_pruned_is_not_served() -> None:
    kit = _chain(4)  # keeps blocks from BLOCKS - 3 on
    book = SnapshotBook.of(None, NodeConfig().snapshots, kit.genesis, kit.store)
    book.held = [Held(BLOCKS - 2, 1, 10), Held(BLOCKS - 4, 1, 10), Held(BLOCKS - 6, 1, 10)]
    assert [h.height for h in book.servable()] == [BLOCKS - 2, BLOCKS - 4]
    assert book.part(BLOCKS - 6, 0) == b""  # its next block is pruned: not served
    assert [h["height"] for h in decode(book.part(0, 0))] == [BLOCKS - 2, BLOCKS - 4]  # type: ignore[index,union-attr]


def test_the_audit_of_a_block_pruned_store_checks_what_it_holds_and_says_the_rest() -> None:
    kit = _chain(4)
    report = audit_block_pruned(kit.store, kit.genesis)
    assert report.ok, report.findings
    assert (report.linked, report.oldest_block, report.txs) == (BLOCKS, BLOCKS - 3, 4 * TXS)
    assert f"blocks 1 to {BLOCKS - 4}: this node prunes blocks" in report.not_checked[0]
    assert any("no block was re-executed" in gap for gap in report.not_checked)


@pytest.mark.parametrize(
    ("victim", "first"),
    [
        ("header", "height 3: certificate 3: certificate at height 3 is for block"),
        ("certificate", "height 3: certificate 3: certificate is for height 2"),
        ("receipt", f"height {BLOCKS}: receipts: do not make the header's results root"),
        ("valset", "height 2: validator set: the validator set of height 2 is corrupt"),
        ("garbled", "height 3: header: the kept header of pruned block 3 is corrupt"),
    ],
)
def test_the_audit_names_a_changed_record_of_a_block_pruned_store(victim: str, first: str) -> None:
    kit = _chain(4)
    batch = WriteBatch()
    if victim == "header":  # a pruned height's kept header, its time changed
        header = kit.chain.header(3)
        assert header is not None
        forged = type(header).from_obj({**header.to_obj(), "time_ms": header.time_ms + 1})
        batch.put(keys.pruned_header_key(3), forged.encoded)
    elif victim == "certificate":
        batch.put(keys.cert_key(3), kit.chain.certificate(2).encode())  # type: ignore[union-attr]
    elif victim == "receipt":
        key, _ = next(kit.store.iterate(keys.RECEIPT + keys.height_bytes(BLOCKS)))
        batch.put(key, next(kit.store.iterate(keys.RECEIPT + keys.height_bytes(BLOCKS - 1)))[1])
    elif victim == "valset":
        batch.put(keys.valset_key(2), b"\x90")  # no set at all
    else:
        batch.put(keys.pruned_header_key(3), b"\xc1")  # not msgpack at all
    kit.store.write(batch)
    report = audit_block_pruned(kit.store, kit.genesis)
    assert str(report.findings[0]).startswith(first), report.findings


def test_a_lagging_node_asks_another_peer_after_a_pruning_one_held_none() -> None:
    """The pruning peer's empty answer (not blamed as invalid) makes the syncer ask the
    archive peer next, which serves the blocks: the node catches up."""
    pruning, archive = _chain(4), _chain(0)
    server = Harness([], pruning)
    frame = asyncio.run(server.syncer.response_frame(SyncRequest(1, 50)))
    assert frame is not None
    answer = decode_message(frame, len(frame))
    pruner, keeper = fake_peer(1, BLOCKS), fake_peer(2, BLOCKS)
    lagging = Harness([pruner, keeper], Kit(MemoryStore()), seed=3)
    lagging.syncer.choose = lambda peers: pruner if pruner in peers else peers[0]  # type: ignore[method-assign]
    lagging.syncer.maybe_request()
    assert lagging.asked() == ["v1"]
    assert asyncio.run(lagging.syncer.apply(pruner, answer))  # type: ignore[arg-type]
    assert lagging.asked() == ["v1", "v2"] and lagging.syncer.failures(pruner) == 1
    served = asyncio.run(Harness([], archive).syncer.response_frame(SyncRequest(1, 50)))
    assert served is not None
    assert asyncio.run(lagging.syncer.apply(keeper, decode_message(served, len(served))))  # type: ignore[arg-type]
    assert lagging.kit.chain.head() == archive.chain.head()


def _changed_set_chain(keep: int) -> Kit:
    """A validator-set change at height 1 (in force from 3), then eight empty blocks."""
    changes = (
        ValidatorUpdate(PrivateKey.from_label("bp-new-validator").public_key, 1, "v-new"),
        ValidatorUpdate(fake_peer(3).key, 0, "v3"),
    )
    with registered():
        kit = Kit(MemoryStore())
        kit.executor.prune_blocks(keep)
        kit.commit([updates_tx(ADMIN, CHAIN, 0, *changes)])
        for _ in range(8):
            kit.commit([])
    return kit


def test_set_history_snapshots_and_audit_go_through_pruned_headers() -> None:
    """The change's block is pruned: its kept header still proves the change to a light
    client, a snapshot taken at the head describes it, and the audit follows it."""
    pruned, archive = _changed_set_chain(3), _changed_set_chain(0)
    assert pruned.chain.block(1) is None and pruned_to(pruned.store) == 7
    assert history(pruned.chain) == history(archive.chain) and len(history(pruned.chain)) == 1
    head = pruned.chain.head().height
    description = describe(pruned.store, GENESIS, head)[0]
    assert check_description(description, GENESIS, head).history.at(head) == (
        archive.chain.validators_at(head)
    )
    vh.forget(GENESIS)
    report = audit_block_pruned(pruned.store, GENESIS)
    assert report.ok and report.linked == head, report.findings
