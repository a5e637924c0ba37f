"""Catch-up (node/sync.py): a block that does not apply because of our own store or
code is a local fault, not the peer's (finding F4)."""

from __future__ import annotations

import asyncio

import pytest

from ledger.errors import CorruptionError
from ledger.storage import WriteBatch, keys
from node.peers import Peer
from node.wire import SyncResponse
from tests.unit.node.chainkit import register_member_tx
from tests.unit.node.synckit import Harness, one_peer_ahead, response


def failing_validation(
    monkeypatch: pytest.MonkeyPatch, exc: Exception
) -> tuple[Harness, Peer, SyncResponse]:
    """A harness whose executor raises ``exc`` for every block, a peer, and 3 blocks from it."""
    src, p, h = one_peer_ahead(3)

    def fail(*args: object, **kwargs: object) -> None:
        raise exc

    monkeypatch.setattr(h.kit.executor, "validate_block", fail)
    return h, p, response(src, 1, 3)


def test_a_corrupt_local_store_stops_the_node_and_does_not_blame_the_peer(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    corrupt = CorruptionError("corrupt record in data: Corruption: block checksum mismatch")
    h, p, resp = failing_validation(monkeypatch, corrupt)
    with caplog.at_level("ERROR", logger="cityledger.sync"):
        assert asyncio.run(h.syncer.apply(p, resp))  # not the peer's fault
    assert h.syncer.failures(p) == 0
    assert len(h.faults) == 1 and h.faults[0][0] == 1
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1
    assert "local store is damaged or diverged at height 1" in errors[0]
    assert "checksum mismatch" in errors[0] and "resync from peers" in errors[0]
    h.sent.clear()
    h.syncer.maybe_request()  # stopped: asks nobody any more
    assert h.sent == []


def test_a_bug_of_ours_is_not_reported_as_a_damaged_store(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Only ledger and storage errors are the store's fault: a programming error while a
    certified block is applied propagates, visible, and the node does not stop as if
    its store were damaged."""
    bug = AttributeError("'NoneType' object has no attribute 'state_root'")
    h, p, resp = failing_validation(monkeypatch, bug)
    with (
        caplog.at_level("ERROR", logger="cityledger.sync"),
        pytest.raises(AttributeError, match="state_root"),
    ):
        asyncio.run(h.syncer.apply(p, resp))
    assert h.faults == [] and h.syncer.failed is None
    assert not any("local store is damaged" in r.getMessage() for r in caplog.records)
    assert h.syncer.failures(p) == 0  # nor is it the peer's fault


def test_a_bug_reading_our_head_is_not_reported_as_a_damaged_store(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    src, p, h = one_peer_ahead(1)

    def bug() -> None:
        raise TypeError("head() takes 1 positional argument but 2 were given")

    monkeypatch.setattr(h.kit.chain, "head", bug)
    with pytest.raises(TypeError, match="positional argument"):
        asyncio.run(h.syncer.apply(p, response(src, 1, 1)))
    assert h.faults == [] and h.syncer.failed is None


def test_a_head_record_that_does_not_read_back_is_a_local_fault() -> None:
    src, p, h = one_peer_ahead(3)
    assert asyncio.run(h.syncer.apply(p, response(src, 1, 1)))
    batch = WriteBatch()
    batch.put(keys.HEAD, b"\xc1 not a head record")
    h.kit.store.write(batch)
    assert asyncio.run(h.syncer.apply(p, response(src, 2, 3)))
    assert [height for height, _ in h.faults] == [2]
    assert "head record is corrupt" in h.faults[0][1]
    assert h.syncer.failures(p) == 0


def test_a_diverged_head_is_a_local_fault() -> None:
    """Our block 1 is not the chain's (a store rolled back or damaged): the certified
    block 2 does not extend it — our fault."""
    src, p, h = one_peer_ahead(2)
    h.kit.commit([register_member_tx(1, "a-different-member", ["viewer"])])
    assert asyncio.run(h.syncer.apply(p, response(src, 2, 2)))
    assert [height for height, _ in h.faults] == [2]
    assert "does not extend our head" in h.faults[0][1]
