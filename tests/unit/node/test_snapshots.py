"""Snapshots as a node takes and serves them (node/snapshots.py): from a read view of one
height while blocks go on, kept to the newest ``keep``, served part by part, each part
passing the joining node's checks; and a peer asking too fast is refused."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ledger import state_snapshot
from ledger.storage import open_leveldb
from ledger.storage.leveldb import LevelDBStore
from node.config import SnapshotConfig
from node.snapshots import BUCKET_BURST, SnapshotBook, decode_list
from node.statesync_check import check_description
from tests.unit.node.chainkit import GENESIS, Kit, fake_peer, register_member_tx


def _chain(path: Path) -> Kit:
    store = open_leveldb(str(path / "data"), create=True)
    assert isinstance(store, LevelDBStore)
    return Kit(store=store)


def _grow(kit: Kit, to_height: int) -> None:
    while kit.chain.head().height < to_height:
        n = kit.chain.head().height * 10
        kit.commit(
            [register_member_tx(n + i, f"snap-member-{n + i}", ["inspector"]) for i in range(10)]
        )


def test_a_snapshot_is_of_its_height_while_blocks_go_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(state_snapshot, "CHUNK_BYTES", 4096)
    kit = _chain(tmp_path)
    _grow(kit, 6)
    store = kit.store
    assert isinstance(store, LevelDBStore)
    view = store.read_view()
    _grow(kit, 9)  # committed after the view was opened: not in the snapshot
    book = SnapshotBook(str(tmp_path / "snapshots"), SnapshotConfig(keep=2), GENESIS)
    held = book.write(view, 6)
    view.close()
    assert held.height == 6 and held.chunks > 1
    assert oct(os.stat(tmp_path / "snapshots").st_mode & 0o777) == "0o700"
    description = check_description(book.part(6, 0), GENESIS, 6)
    assert description.header.state_root == kit.chain.header(6).state_root  # type: ignore[union-attr]
    for i, roots in enumerate(description.manifest.chunks):
        assert state_snapshot.read_chunk(book.part(6, i + 1), roots, 6)
    assert book.part(6, held.chunks + 1) == b"" and book.part(7, 0) == b""
    kit.store.close()


def test_the_newest_are_kept_and_listed(tmp_path: Path) -> None:
    kit = _chain(tmp_path)
    store = kit.store
    assert isinstance(store, LevelDBStore)
    book = SnapshotBook(str(tmp_path / "snapshots"), SnapshotConfig(keep=2), GENESIS)
    for height in (2, 4, 6):
        _grow(kit, height)
        view = store.read_view()
        book.write(view, height)
        view.close()
    assert sorted(os.listdir(tmp_path / "snapshots")) == ["4", "6"]
    assert [h.height for h in decode_list(book.part(0, 0))] == [6, 4]
    again = SnapshotBook(str(tmp_path / "snapshots"), SnapshotConfig(keep=2), GENESIS)
    assert [h.height for h in again.held] == [6, 4]  # found again after a restart
    kit.store.close()


def test_a_peer_asking_too_fast_is_refused() -> None:
    now = [100.0]
    book = SnapshotBook("", SnapshotConfig(serve_per_s=2), GENESIS, clock=lambda: now[0])
    peer = fake_peer(1)
    assert book.admit(peer)
    assert not book.admit(peer)  # one answer at a time
    book._serving.clear()
    for _ in range(BUCKET_BURST - 1):
        assert book.admit(peer)
        book._serving.clear()
    assert not book.admit(peer)  # the burst is spent
    now[0] += 0.5  # serve_per_s=2: one more token
    assert book.admit(peer)
    assert book.admit(fake_peer(2))  # another peer has its own bucket


def test_snapshot_frames_round_trip_and_are_bounded() -> None:
    from ledger.errors import DecodeError
    from node.wire import (
        MAX_SNAP_PART,
        SnapRequest,
        SnapResponse,
        decode_message,
        encode_message,
    )

    for msg in (SnapRequest(0, 0), SnapRequest(7, 3), SnapResponse(7, 3, b"\x01" * 100)):
        assert decode_message(encode_message(msg), 1 << 24) == msg
    too_big = encode_message(SnapResponse(7, 1, b"\x00" * (MAX_SNAP_PART + 1)))
    with pytest.raises(DecodeError):
        decode_message(too_big, 1 << 24)
    with pytest.raises(DecodeError):
        decode_message(encode_message(SnapRequest(7, 2_000_000)), 1 << 24)


def test_a_snapshot_keeps_to_its_share_of_a_core(monkeypatch: pytest.MonkeyPatch) -> None:
    from node import snapshots

    clock = [0.0]

    class _Time:
        @staticmethod
        def monotonic() -> float:
            return clock[0]

        @staticmethod
        def sleep(seconds: float) -> None:
            clock[0] += seconds

    monkeypatch.setattr(snapshots, "time", _Time)
    pacer = snapshots.Pacer(0.25)
    for _ in range(1000):  # 1,000 pages read, 1 ms of work each
        clock[0] += 0.001
        pacer()
    worked = 1.0
    assert pacer.slept == pytest.approx(3 * worked, rel=0.05)  # 25 %: 3 s paused per s worked
    free = snapshots.Pacer(1.0)
    clock[0] += 1.0
    free()
    assert free.slept == 0
