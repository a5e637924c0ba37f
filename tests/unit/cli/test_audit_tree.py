"""The streaming audit with the state tree in a process beside the replay (node/audit_tree.py):
the same findings as the replay that keeps the tree in its own process, on a clean chain,
on tampered rows, on tampered blocks and on a chain whose validators certified a wrong
state root; anything that does not check out there starts the replay over."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ledger.state import StateTree
from ledger.state_retire import Retired
from ledger.storage import MemoryStore, OverlayStore, WriteBatch, keys, open_leveldb
from node import audit_compare, audit_tree
from node.audit import AuditReport, ChainAuditor, StoreSource
from node.audit_tree import SplitScratch
from tests.unit.chain_kit import copy_store
from tests.unit.cli.kit import CliNode, rewrite_block, run
from tests.unit.cli.test_audit import STREAMED_CHANGES, first_key, flip, leveldb_home

BOGUS_ROOT = b"\x07" * 32


def beside(node: CliNode, store: MemoryStore, scratch: Path) -> AuditReport:
    """The streaming audit on two processes: the tree beside the replay."""
    auditor = ChainAuditor(node.genesis, workers=2, scratch_dir=str(scratch))
    return auditor.run(StoreSource(store), compare_with=store)


def in_memory(node: CliNode, store: MemoryStore) -> AuditReport:
    return ChainAuditor(node.genesis, workers=0).run(StoreSource(store), compare_with=store)


def both_ways(
    node: CliNode, change: Callable[[MemoryStore], None], scratch: Path
) -> tuple[AuditReport, AuditReport]:
    """The in-memory replay's report and the tree-beside one on a changed copy of the
    chain: both find something, and the same."""
    store = copy_store(node.store)  # type: ignore[arg-type]
    change(store)
    expected, report = in_memory(node, store), beside(node, store, scratch)
    assert not expected.ok and not report.ok
    assert report.findings == expected.findings
    assert report.not_checked == expected.not_checked
    return expected, report


def test_a_clean_chain_is_checked_with_the_tree_beside(node: CliNode, tmp_path: Path) -> None:
    report = beside(node, node.store, tmp_path / "s")  # type: ignore[arg-type]
    assert report.ok, report.findings
    assert report.tree_beside and report.streamed and report.segments == 0
    assert report.rows_compared == len(node.store)  # type: ignore[arg-type]
    assert report.heights == node.chain.head().height


def test_the_split_scratch_reads_the_tree_tables_from_the_tree_process(tmp_path: Path) -> None:
    rows, tree = (audit_tree.DiskScratch(str(tmp_path / name)) for name in ("rows", "tree"))
    for store, items, height in (
        (rows, {b"\x01a": b"1", keys.STATE_NODE + b"g": b"genesis copy", b"\x01z": b"2"}, 0),
        (tree, {keys.STATE_NODE + b"g": b"g", keys.STATE_ROOT + b"r": b"r"}, 3),
    ):
        batch = WriteBatch()
        for key, value in items.items():
            batch.put(key, value)
        store.height = height
        store.write(batch)
    split = SplitScratch(rows, tree)
    assert list(split.iterate(b"")) == [
        (b"\x01a", b"1"),
        (keys.STATE_NODE + b"g", b"g"),
        (keys.STATE_ROOT + b"r", b"r"),
        (b"\x01z", b"2"),
    ]
    assert split.get(keys.STATE_NODE + b"g") == b"g"
    assert split.written_height(keys.STATE_ROOT + b"r") == 3
    assert split.written_height(b"\x01z") == 0
    assert list(split.iterate(keys.STATE_NODE)) == [(keys.STATE_NODE + b"g", b"g")]
    with pytest.raises(NotImplementedError):
        list(split.iterate(b"", reverse=True))
    split.close()


@pytest.mark.parametrize("change", STREAMED_CHANGES)
def test_tampered_rows_are_found_as_the_replay_finds_them(
    node: CliNode, change: Callable[[MemoryStore], None], tmp_path: Path
) -> None:
    expected, report = both_ways(node, change, tmp_path / "s")
    replayed_whole = expected.heights == expected.tip  # the rows differ, not the blocks
    assert report.tree_beside == replayed_whole, "a stored row that differs: no second pass"
    assert report.rows_compared == expected.rows_compared


@pytest.mark.parametrize(
    "change",
    [
        rewrite_block(2, lambda b: b["txs"][0]["payload"].update(to="globex")),
        rewrite_block(4, lambda b: b["txs"][0].update(signature=bytes(64))),
        lambda s: flip(s, keys.block_key(3), 40),
    ],
    ids=["payload", "signature", "block bytes"],
)
def test_a_bad_block_starts_the_replay_over_and_is_named_as_before(
    node: CliNode, change: Callable[[MemoryStore], None], tmp_path: Path
) -> None:
    expected, report = both_ways(node, change, tmp_path / "s")
    assert not report.tree_beside
    assert (report.heights, report.linked) == (expected.heights, expected.linked)


class _LyingTree(StateTree):
    """Commits the real tree but claims another root: validators that all agreed on a
    wrong state root and certified it."""

    def apply(
        self,
        changes: dict[bytes, bytes | None],
        batch: WriteBatch,
        retired: list[Retired] | None = None,
        *,
        height: int,
    ) -> bytes:
        super().apply(changes, batch, retired, height=height)
        self.root = BOGUS_ROOT
        return BOGUS_ROOT


def test_a_certified_wrong_state_root_is_found_by_the_tree_process(
    node: CliNode, tmp_path: Path
) -> None:
    def lying(store: OverlayStore, root: bytes) -> StateTree:
        return _LyingTree(store, root)

    node.executor.state_tree = lying  # type: ignore[method-assign]
    node.commit([])  # the tip: certified by three of four, its state root a lie
    tip = node.chain.head().height
    store = copy_store(node.store)  # type: ignore[arg-type]
    expected = in_memory(node, store)
    assert [(f.height, f.problem) for f in expected.findings][:1] == [
        (tip, "re-execution differs: state_root differs")
    ]
    report = beside(node, store, tmp_path / "s")
    assert not report.tree_beside, "the tree's answer sent the audit back to one process"
    assert report.findings == expected.findings


def fail_at_once(_jobs: object, answers: Any, *_: object) -> None:
    """A tree process that fails (run in the spawned process: importable by name)."""
    answers.put((-1, b"", "the tree process failed: OSError: disk full"))


def wrong_roots(jobs: Any, answers: Any, *_: object) -> None:
    """A tree process that answers every block with a root no header claims."""
    while (job := jobs.get()) is not None:
        answers.put((job[0], BOGUS_ROOT, None))
    answers.put((0, b"", None))


def die(*_: object) -> None:
    os._exit(3)  # gone without a word


@pytest.mark.parametrize("target", [fail_at_once, wrong_roots, die], ids=["fails", "lies", "dies"])
def test_a_tree_process_that_does_not_answer_right_starts_the_replay_over(
    node: CliNode, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target: Callable[..., None]
) -> None:
    monkeypatch.setattr(audit_tree, "serve_tree", target)
    monkeypatch.setattr(audit_tree, "ANSWER_WAIT_S", 0.05)
    report = beside(node, node.store, tmp_path / "s")  # type: ignore[arg-type]
    assert report.ok and not report.tree_beside, report.findings
    assert report.rows_compared == len(node.store)  # type: ignore[arg-type]


def test_the_tree_process_is_spawned_not_forked(node: CliNode, tmp_path: Path) -> None:
    """A forked child inherits LevelDB's "background thread started" flag but not the
    thread: its store stalls for ever at its first due compaction (it did, on a
    191,710-transaction chain). A spawned one starts its own."""
    rows = audit_tree.DiskScratch(str(tmp_path / "rows"))
    beside = audit_tree.TreeBeside.start(str(tmp_path / "tree"), rows, node.chain)
    try:
        assert beside.process._start_method == "spawn"
    finally:
        beside.stop()
        rows.close()


def test_cli_the_tree_process_compares_its_tables_and_a_changed_row_is_named(
    node: CliNode, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`audit verify --home --streaming` on two cores: the tree's process compares the state
    nodes against a second private copy of the store while the replay compares the rest;
    a state node or a receipt changed in the store is named as the replay names it (a
    state node by the replay comparing every table again)."""
    skipped: list[tuple[bytes, ...]] = []  # what each comparison in this process left out
    compare = audit_compare.compare_stores

    def spy(*args: Any, **kw: Any) -> None:
        skipped.append(kw.get("skip", ()))
        compare(*args, **kw)

    monkeypatch.setattr(audit_compare, "compare_stores", spy)
    home = leveldb_home(node, tmp_path)
    args = ["audit", "verify", "--home", str(home), "--json"]
    whole = json.loads(run([*args, "--workers", "0"]).stdout)
    skipped.clear()
    beside_doc = json.loads(run([*args, "--streaming", "--workers", "2"]).stdout)
    assert beside_doc["ok"] and beside_doc["tree_beside"]
    assert beside_doc["rows_compared"] == whole["rows_compared"]
    assert skipped == [audit_tree.TREE_TABLES], "the state nodes compared by the tree only"
    for table, passes in ((keys.STATE_NODE, 2), (keys.RECEIPT, 1)):
        copy = tmp_path / f"copy-{table.hex()}"
        shutil.copytree(home, copy)
        store = open_leveldb(str(copy / "data"))
        flip(store, first_key(store, table))  # type: ignore[arg-type]
        store.close()
        genesis = ["--genesis", str(home / "genesis.json")]
        args = ["audit", "verify", "--home", str(copy), "--json", *genesis]
        expected = json.loads(run([*args, "--workers", "0"]).stdout)
        skipped.clear()
        found = json.loads(run([*args, "--streaming", "--workers", "2"]).stdout)
        assert not found["ok"] and found["tree_beside"]
        assert len(skipped) == passes, skipped
        assert found["findings"] == expected["findings"]
        assert found["rows_compared"] == expected["rows_compared"]
