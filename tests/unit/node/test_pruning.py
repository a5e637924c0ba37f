"""A pruning node ([storage] state_keep_heights): the executor's window, its reads, and
the offline audit of its store (node/audit_pruned.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from contracts import state_keys as sk
from ledger.errors import CorruptionError
from ledger.state import StateTree
from ledger.state_proof import verify_state_proof
from ledger.state_prune import StatePruned, oldest_state_height
from ledger.storage import MemoryStore, WriteBatch, keys
from node.audit import AuditReport, ChainAuditor, StoreSource
from node.service import Queries
from tests.unit.node.chainkit import Kit, register_member_tx

BLOCKS = 14


def _chain(keep: int) -> Kit:
    """``BLOCKS`` blocks of registrations, kept ``keep`` heights deep (0: archive)."""
    kit = Kit(MemoryStore())
    kit.executor.prune_state(keep)
    nonce = 0
    for height in range(1, BLOCKS + 1):
        txs = [register_member_tx(nonce + i, f"clerk-{height}-{i}", ["clerk"]) for i in range(3)]
        nonce += len(txs)
        kit.commit(txs)
    return kit


def _state_rows(kit: Kit) -> int:
    return sum(1 for _ in kit.store.iterate(keys.STATE_NODE))


def _audit(kit: Kit, workers: int = 0, scratch_dir: str | None = None) -> AuditReport:
    auditor = ChainAuditor(kit.genesis, workers=workers, scratch_dir=scratch_dir)
    return auditor.run(StoreSource(kit.store), compare_with=kit.store)


def test_a_pruning_node_keeps_its_window_and_refuses_older_state() -> None:
    pruned, archive = _chain(3), _chain(0)
    assert pruned.chain.head() == archive.chain.head()  # pruning changes no byte of the chain
    assert oldest_state_height(pruned.store) == BLOCKS - 2
    step = pruned.executor.last_prune
    assert step is not None and step.oldest == BLOCKS - 2 and step.done and step.deleted > 0
    assert archive.executor.last_prune is None  # an archive node never runs a step
    assert oldest_state_height(archive.store) == 0
    assert _state_rows(pruned) < _state_rows(archive) * 0.6
    queries = Queries(pruned.chain)
    org = sk.org_key("busan-city")
    answer = queries.state(org, BLOCKS - 2)
    verify_state_proof(answer.certified.header.state_root, answer.proof)
    with pytest.raises(StatePruned, match=f"keeps state from height {BLOCKS - 2} on"):
        queries.state(org, BLOCKS - 3)
    assert Queries(archive.chain).state(org, 1).value is not None


@pytest.mark.parametrize(
    ("workers", "streaming"), [(0, False), (2, False), (0, True)], ids=["one", "workers", "disk"]
)
def test_the_audit_of_a_pruned_store_says_what_it_could_not_check(
    workers: int, streaming: bool, tmp_path: Path
) -> None:
    report = _audit(_chain(3), workers, str(tmp_path / "scratch") if streaming else None)
    assert report.ok, report.findings
    assert report.oldest_state == BLOCKS - 2 and report.segments == 0
    (note,) = [n for n in report.not_checked if "prunes state" in n]
    assert f"keeps it from height {BLOCKS - 2} on" in note
    assert f"state of heights {BLOCKS - 2} to {BLOCKS} needs was compared" in note


@pytest.mark.parametrize("streaming", [False, True], ids=["memory", "disk"])
def test_the_audit_names_a_kept_state_row_deleted_from_a_pruned_store(
    streaming: bool, tmp_path: Path
) -> None:
    """A row that left the tree after the window's start is still needed by a kept
    height: its absence is tampering, not pruning (and so is the tip's root page)."""
    for victim in ("kept", "tip"):
        kit = _chain(3)
        if victim == "tip":
            root = kit.chain.head().state_root
            at = kit.store.get(keys.STATE_ROOT + root)
            assert at is not None
            filing = at + root
        else:  # a row that left the tree with the last block
            start = keys.RETIRED + keys.height_bytes(BLOCKS)
            key, _ = next(kit.store.iterate(keys.RETIRED, start=start))
            filing = key[len(start) :]
        batch = WriteBatch()
        batch.delete(keys.STATE_NODE + filing)
        kit.store.write(batch)
        report = _audit(kit, 0, str(tmp_path / victim) if streaming else None)
        assert [f.problem for f in report.findings] == ["missing from the store"], victim
        assert report.findings[0].key == keys.STATE_NODE + filing


def test_a_read_that_pruning_overtakes_says_pruned_not_corrupt() -> None:
    """An answer that spans commits (an API handler awaits between reads) may find its
    height pruned meanwhile: that is StatePruned, not a damaged store."""
    kit = _chain(3)
    oldest = oldest_state_height(kit.store)
    header = kit.chain.header(oldest)
    assert header is not None
    tree = Queries(kit.chain).tree_under(header.state_root, oldest)  # nothing read yet
    org = sk.org_key("busan-city")
    kit.commit([register_member_tx(3 * BLOCKS, "late-clerk", ["clerk"])])
    with pytest.raises(StatePruned, match=f"keeps state from height {oldest + 1} on"):
        tree.prove(org, header.state_root)
    with pytest.raises(CorruptionError):  # without the height, it cannot tell
        StateTree(kit.store, header.state_root).prove(org)
