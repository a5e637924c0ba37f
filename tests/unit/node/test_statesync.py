"""Joining by state sync against peers that misbehave (node/statesync.py): the real
checks and a real store, with the links replaced by peers that answer from a real
snapshot of a real chain — or corrupt it, vanish mid-transfer, no longer hold it, or
describe it with a certificate that does not verify. Each is named in one log line, the
chunk is fetched elsewhere, and the synced store executes the next block to the same
header as the chain's."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import pytest

from ledger import state_snapshot
from ledger.encoding import decode, encode
from ledger.state_snapshot import snapshot_chunks
from ledger.storage import MemoryStore
from node import statesync
from node.chain import ChainStore
from node.executor import Executor
from node.peers import Peer
from node.sigcache import SignatureCache
from node.snapshots import describe
from node.statesync import StateSync, _Fetcher
from node.statesync_check import base_height, check_description
from tests.unit.node.chainkit import GENESIS, Kit, certify, fake_peer, register_member_tx

HEIGHT = 12
PER_BLOCK = 30  # members registered per block: a state of several pages


def source_chain(blocks: int) -> Kit:
    """A deterministic chain: the same blocks whatever its length."""
    src = Kit()
    for b in range(blocks):
        first = b * PER_BLOCK
        src.commit(
            [
                register_member_tx(n, f"ss-member-{n}", ["inspector"])
                for n in range(first, first + PER_BLOCK)
            ]
        )
    return src


Answer = Callable[[int, int, bytes], bytes | None]  # (height, index, honest) -> what is sent


class _Links:
    def __init__(self, peers: list[Peer]) -> None:
        self.peers = {p.key: p for p in peers}
        self.penalised: list[str] = []

    def penalise(self, peer: Peer, why: str, *args: object, **kw: object) -> None:
        self.penalised.append(peer.name)


class _Fake(_Fetcher):
    """Answers from ``parts`` (height -> index -> bytes) through each peer's behaviour."""

    def __init__(self, parts: dict[int, list[bytes]], behaviour: dict[str, Answer]) -> None:
        super().__init__()
        self.parts = parts
        self.behaviour = behaviour
        self.asked: list[tuple[str, int, int]] = []
        self.connected.set()

    async def ask(self, peer: Peer, height: int, index: int, timeout_s: float) -> bytes | None:
        await asyncio.sleep(0)
        assert self.links is not None
        if peer.key not in self.links.peers:
            return None
        self.asked.append((peer.name, height, index))
        if height == 0:
            return encode(
                [{"height": h, "chunks": len(p) - 1, "size": 1} for h, p in self.parts.items()]
            )
        honest = self.parts[height][index]
        return self.behaviour.get(peer.name, lambda h, i, d: d)(height, index, honest)


@pytest.fixture(autouse=True)
def _quick(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(statesync, "GATHER_S", 0.0)
    monkeypatch.setattr(state_snapshot, "CHUNK_BYTES", 4096)


def _snapshot_parts(store: MemoryStore, height: int) -> list[bytes]:
    description, manifest = describe(store, GENESIS, height)
    return [description, *snapshot_chunks(store, manifest)]


def _run(behaviour: dict[str, Answer], parts: dict[int, list[bytes]] | None = None):  # type: ignore[no-untyped-def]
    src = source_chain(HEIGHT)
    parts = parts if parts is not None else {HEIGHT: _snapshot_parts(src.store, HEIGHT)}  # type: ignore[arg-type]
    fetcher = _Fake(parts, behaviour)
    links = _Links([fake_peer(i) for i in range(4)])
    fetcher.links = links  # type: ignore[assignment]
    target = MemoryStore()
    sync = StateSync(target, GENESIS, fetcher)
    height = asyncio.run(sync.run())
    return src, target, height, fetcher, links, sync


def _continues(src, target) -> None:  # type: ignore[no-untyped-def]
    """The synced store validates and commits the chain's next block, to its header."""
    nxt = src.commit([register_member_tx(HEIGHT * PER_BLOCK, "after", ["inspector"])]).block
    executor = Executor(ChainStore(target, GENESIS), SignatureCache())
    executed = executor.validate_block(nxt, None, certified=True)
    executor.commit(executed, certify(nxt))
    assert ChainStore(target, GENESIS).head().state_root == nxt.header.state_root


def test_honest_peers_give_a_store_that_goes_on_from_the_snapshot() -> None:
    src, target, height, fetcher, links, sync = _run({})
    assert height == HEIGHT and base_height(target) == HEIGHT
    assert sync.progress.chunks > 3 and sync.progress.chunks_done == sync.progress.chunks
    assert {name for name, _, i in fetcher.asked if i > 0} == {"v0", "v1", "v2", "v3"}  # spread
    assert not links.penalised
    assert ChainStore(target, GENESIS).head().state_root == src.chain.head().state_root
    _continues(src, target)


def _corrupt(h: int, i: int, d: bytes) -> bytes:
    return d if i == 0 else d[:-1] + bytes([d[-1] ^ 1])


def test_a_peer_serving_corrupt_chunks_is_blamed_and_the_chunk_fetched_elsewhere(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, "cityledger.statesync")
    src, target, height, fetcher, links, _ = _run({"v1": _corrupt})
    assert height == HEIGHT and links.penalised == ["v1"]
    blamed = [r.getMessage() for r in caplog.records if "v1" in r.getMessage()]
    assert (
        len(blamed) == 1
        and "does not check out" in blamed[0]
        and "not asking it again" in blamed[0]
    )
    assert sum(1 for name, _, i in fetcher.asked if name == "v1" and i > 0) == 1  # never again
    _continues(src, target)


def test_a_peer_that_vanishes_mid_transfer_is_replaced(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "cityledger.statesync")
    gone: list[bool] = []

    def vanish(h: int, i: int, d: bytes) -> bytes | None:
        if i >= 2 or gone:
            gone.append(True)
            return None  # the link closed: nothing more from it
        return d

    src, target, height, _, links, _ = _run({"v2": vanish})
    assert height == HEIGHT and gone and not links.penalised  # gone is not a lie
    assert any("v2 did not send chunk" in r.getMessage() for r in caplog.records)
    _continues(src, target)


def test_a_peer_that_no_longer_holds_the_snapshot_is_replaced(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, "cityledger.statesync")
    src, target, height, _, links, _ = _run({"v3": lambda h, i, d: b"" if i else d})
    assert height == HEIGHT and not links.penalised
    assert any("v3 no longer holds chunk" in r.getMessage() for r in caplog.records)
    _continues(src, target)


def _forged_certificate(h: int, i: int, d: bytes) -> bytes:
    if i:
        return d
    obj = decode(d)
    assert isinstance(obj, dict)
    cert = dict(obj["certificate"])  # type: ignore[arg-type]
    cert["height"] = h - 1  # a certificate of another block
    return encode({**obj, "certificate": cert})


def test_a_snapshot_whose_certificate_does_not_verify_falls_back_to_an_older_one(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "cityledger.statesync")
    older = source_chain(8)  # the same chain (deterministic), 8 blocks long
    parts = {HEIGHT: _snapshot_parts(source_chain(HEIGHT).store, HEIGHT)}
    parts[8] = _snapshot_parts(older.store, 8)

    def forged_newest(h: int, i: int, d: bytes) -> bytes:
        return _forged_certificate(h, i, d) if h == HEIGHT else d

    def deleted_newest(h: int, i: int, d: bytes) -> bytes:
        return b"" if h == HEIGHT else d

    # v0 describes the newest snapshot with a certificate that does not verify; the others
    # have deleted it since they listed it: the newest cannot be had, the older one can
    behaviour = {"v0": forged_newest} | {f"v{i}": deleted_newest for i in (1, 2, 3)}
    _, target, height, fetcher, links, _ = _run(behaviour, parts)
    assert height == 8 and links.penalised == ["v0"]
    assert ChainStore(target, GENESIS).head().state_root == older.chain.head().state_root
    assert not any(name == "v0" and h == 8 for name, h, _ in fetcher.asked)  # blamed: not asked
    lines = [r.getMessage() for r in caplog.records]
    assert sum("does not verify from genesis" in line for line in lines) == 1
    assert any("snapshot of height 8 checked from genesis" in line for line in lines)


def test_with_no_snapshot_to_be_had_nothing_is_left_behind(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, "cityledger.statesync")
    _, target, height, _, _, _ = _run({f"v{i}": _corrupt for i in range(4)})
    assert height is None and len(target) == 0  # block sync from genesis: the node goes on
    assert any("no snapshot could be had" in r.getMessage() for r in caplog.records)


def test_the_one_chunk_comes_from_the_last_honest_peer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(state_snapshot, "CHUNK_BYTES", 1024 * 1024)  # the state: one chunk
    src, target, height, _, links, sync = _run({f"v{i}": _corrupt for i in range(3)})
    assert sync.progress.chunks == 1 and height == HEIGHT
    assert sorted(links.penalised) == ["v0", "v1", "v2"]
    _continues(src, target)


def test_a_snapshot_after_a_validator_set_change_carries_it() -> None:
    """The set changes before the snapshot are checked from genesis, put in force on the
    synced node, and served again by it (its API and its own snapshots), with no block
    before its base to read them from."""
    from ledger.crypto import PrivateKey
    from ledger.validators import ValidatorUpdate, apply_updates
    from lightclient import validator_history as vh
    from node.api.validator_history import history
    from tests.unit.node.chainkit import ADMIN, CHAIN
    from tests.unit.node.valset_kit import registered, updates_tx

    newcomer = PrivateKey.from_label("statesync-new-validator")
    changes = (
        ValidatorUpdate(newcomer.public_key, 1, "v-new"),
        ValidatorUpdate(fake_peer(3).key, 0, "v3"),
    )
    with registered():
        src = Kit()
        src.commit([updates_tx(ADMIN, CHAIN, 0, *changes)])  # in force from height 3
        for _ in range(5):
            src.commit([])
        parts = {6: _snapshot_parts(src.store, 6)}  # type: ignore[arg-type]
        fetcher = _Fake(parts, {})
        fetcher.links = _Links([fake_peer(i) for i in range(3)])  # type: ignore[assignment]
        target = MemoryStore()
        assert asyncio.run(StateSync(target, GENESIS, fetcher).run()) == 6
        vh.forget(GENESIS)
    synced = ChainStore(target, GENESIS)
    new_set = apply_updates(GENESIS.validators, list(changes))
    assert synced.validators_at(7) == new_set == src.chain.validators_at(7)
    assert synced.validators_at(6) == new_set and synced.validators_at(2) == GENESIS.validators
    assert history(synced) == history(src.chain) and len(history(synced)) == 1
    check = describe(target, GENESIS, 6)[0]  # the synced node serves the snapshot it holds
    assert check_description(check, GENESIS, 6).history.at(6) == new_set


def test_a_snapshot_left_half_written_leaves_nothing_in_the_older_one() -> None:
    """Chunks of the newest snapshot arrive, then nobody can give the rest: the older
    snapshot is taken instead, and its flat table holds nothing of the newer state."""
    from ledger.storage import keys

    older = source_chain(8)
    parts = {HEIGHT: _snapshot_parts(source_chain(HEIGHT).store, HEIGHT)}
    parts[8] = _snapshot_parts(older.store, 8)
    served: list[int] = []

    def first_chunks_only(h: int, i: int, d: bytes) -> bytes | None:
        if h == HEIGHT and i > 0:
            served.append(i)
            return d if len(served) <= 3 else b""
        return d

    behaviour = {f"v{i}": first_chunks_only for i in range(4)}
    _, target, height, _, links, _ = _run(behaviour, parts)
    assert height == 8 and not links.penalised and len(served) > 3
    assert list(target.iterate(keys.STATE_LEAF)) == list(older.store.iterate(keys.STATE_LEAF))
