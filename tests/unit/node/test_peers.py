"""Peer links in-process: frames both ways, malformed and oversize frames, bounded
send queues, scores and bans (the handshake: test_handshake.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from ledger.crypto import PrivateKey
from ledger.encoding import encode
from node.config import P2PConfig
from node.handshake import NO_GENESIS, Banned, Session
from node.peers import MINOR, Peer, PeerManager
from node.wire import PROTOCOL_VERSION, StatusMsg, decode_message, encode_message
from tests.unit.clock_kit import ManualClock
from tests.unit.node.peerkit import Recorder, dialing, listening, until

CHAIN = "test-chain"
A, B = (PrivateKey.from_label(n) for n in ("peer-a", "peer-b"))
NAMES = {A.public_key: "a", B.public_key: "b"}


def manager_of(key: PrivateKey, config: P2PConfig | None = None) -> tuple[PeerManager, Recorder]:
    rec = Recorder()
    config = config or P2PConfig(reconnect_min_ms=100, reconnect_max_ms=200)
    return PeerManager(key, CHAIN, NAMES, config, rec.on_message, rec.on_connect), rec


@asynccontextmanager
async def linked(
    server_config: P2PConfig | None = None,
) -> AsyncIterator[tuple[PeerManager, Recorder, PeerManager, Recorder]]:
    """A accepting, B dialing it, both connected: (server, its recorder, client, its)."""
    server, server_rec = manager_of(A, server_config)
    client, rec = manager_of(B)
    async with listening(server) as address, dialing(client, address):
        async with asyncio.timeout(5):
            await server_rec.connected.wait()
            await rec.connected.wait()
        yield server, server_rec, client, rec


async def test_two_validators_connect_and_exchange_frames() -> None:
    async with linked() as (server, server_rec, client, _):
        client.broadcast(StatusMsg(7))
        await until(lambda: server_rec.messages)
        assert server_rec.messages == [("b", StatusMsg(7))]
        assert set(server.peers) == {B.public_key}


async def test_malformed_frame_disconnects_and_scores() -> None:
    async with linked() as (server, server_rec, client, _):
        client.peers[A.public_key].send(b"\x92\x01")  # truncated msgpack
        await until(lambda: server.bad_frames)
        assert server.scores[B.public_key] < 0
        assert server_rec.messages == []


@pytest.mark.parametrize(
    "frame",
    [
        encode({"t": "nope", "b": {}}),
        encode({"t": "status"}),
        encode({"t": "status", "b": {"height": -1}}),
        encode({"t": "vote", "b": {"height": 1}}),
        encode({"t": "sync_req", "b": {"from": 1, "max": 10**9}}),
        encode({"t": "txs", "b": [{"kind": "x"}]}),
        b"\xc1",
        b"\x81\xa1t\xa3txs\x00",
    ],
)
def test_decode_message_rejects_bad_frames(frame: bytes) -> None:
    from ledger.errors import LedgerError

    with pytest.raises(LedgerError):
        decode_message(frame, 1 << 20)


def test_frame_size_cap() -> None:
    from ledger.errors import DecodeError

    frame = encode_message(StatusMsg(1))
    with pytest.raises(DecodeError, match="over the cap"):
        decode_message(frame, len(frame) - 1)


# --- send queues bounded in bytes ---------------------------------------------------------


def manager_with(config: P2PConfig, clock: ManualClock | None = None) -> PeerManager:
    rec = Recorder()
    return PeerManager(
        A, CHAIN, NAMES, config, rec.on_message, rec.on_connect, clock=clock or ManualClock()
    )


def test_a_send_queue_is_bounded_in_bytes_not_frames() -> None:
    """100 frames of 100 KiB to a peer that does not read: before, all 100 (10 MiB) were
    queued (the bound was 4096 frames); now no more than send_queue_bytes is held."""
    manager = manager_with(P2PConfig(send_queue_bytes=1 << 20))
    peer = manager._peer(B.public_key, None, dialed_by_us=True)  # type: ignore[arg-type]
    frame = b"\x00" * (100 * 1024)
    accepted = sum(peer.send(frame) for _ in range(100))
    assert accepted == 10 and peer.queue.qsize() == 10
    assert peer.queue.bytes == 10 * len(frame) <= 1 << 20
    assert peer.dropped == 90 and peer.dropped_bytes == 90 * len(frame)
    assert peer.send(b"\x00" * 1000) is True  # a small frame still fits
    peer.queue.get_nowait()
    assert peer.send(frame) is True  # room again once a frame has left
    assert peer.queue.bytes <= 1 << 20


def test_one_frame_larger_than_the_budget_goes_into_an_empty_queue() -> None:
    manager = manager_with(P2PConfig(send_queue_bytes=1 << 20))
    peer = manager._peer(B.public_key, None, dialed_by_us=True)  # type: ignore[arg-type]
    big = b"\x00" * (3 << 20)
    assert peer.send(big) and not peer.send(b"\x00")  # it alone, then nothing until it left
    assert peer.queue.get_nowait() == big and peer.send(b"\x00")


async def test_deliver_waits_for_room_and_gives_up_when_the_link_closes() -> None:
    manager = manager_with(P2PConfig(send_queue_bytes=1 << 20))
    peer = manager._peer(B.public_key, None, dialed_by_us=True)  # type: ignore[arg-type]
    assert peer.send(b"\x00" * (1 << 20))
    waiting = asyncio.create_task(manager.deliver(peer, b"\x01" * 1000, 5.0))
    await asyncio.sleep(0.01)
    assert not waiting.done() and peer.queue.qsize() == 1
    peer.queue.get_nowait()  # the writer took the first frame
    assert await asyncio.wait_for(waiting, 2) is True
    assert peer.queue.get_nowait() == b"\x01" * 1000
    assert peer.send(b"\x00" * (1 << 20))
    waiting = asyncio.create_task(manager.deliver(peer, b"\x02" * 1000, 5.0))
    await asyncio.sleep(0.01)
    peer.closing = True
    assert await asyncio.wait_for(waiting, 3) is False
    assert peer.dropped == 1


# --- scores and bans ------------------------------------------------------------------------


class ClosingWs:
    def __init__(self) -> None:
        self.closed = 0

    async def close(self) -> None:
        self.closed += 1


async def test_a_misbehaving_peer_is_banned_with_a_growing_back_off(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = ManualClock()
    config = P2PConfig(ban_threshold=-60, ban_min_ms=10_000, ban_max_ms=35_000)
    manager = manager_with(config, clock)

    def link() -> tuple[Peer, ClosingWs]:
        ws = ClosingWs()
        return Peer(B.public_key, "b", ws, dialed_by_us=False), ws  # type: ignore[arg-type]

    bans = []
    for _ in range(4):
        for _offence in range(3):  # three severe offences in a row reach the threshold
            assert manager.ban_left(B.public_key) == 0
            peer, ws = link()
            manager.penalise(peer, "sent an invalid frame (test)")
            await asyncio.sleep(0)
            assert ws.closed == 1 and peer.closing  # every severe offence closes the link
        bans.append(manager.ban_left(B.public_key))
        with pytest.raises(Banned):  # kept out at the handshake, before its signature
            hello = {"key": B.public_key, "genesis": NO_GENESIS, "version": PROTOCOL_VERSION}
            manager.handshake.check_hello(hello, Session())
        clock.now += bans[-1] + 0.001
    assert bans == [10.0, 20.0, 35.0, 35.0]  # doubling, up to ban_max_ms
    assert manager.bans[B.public_key] == 4
    assert "score -60 reached the ban threshold -60: disconnected and banned for 10 s" in (
        caplog.text
    )
    assert "sent an invalid frame (test)" in caplog.text


async def test_minor_offences_keep_the_link_until_the_threshold_and_scores_recover() -> None:
    clock = ManualClock()
    manager = manager_with(P2PConfig(ban_threshold=-20), clock)
    ws = ClosingWs()
    peer = Peer(B.public_key, "b", ws, dialed_by_us=False)  # type: ignore[arg-type]
    manager.penalise(peer, "sent blocks nobody asked for", MINOR, close=False)
    manager.penalise(peer, "sent blocks nobody asked for", MINOR, close=False)
    assert manager.score(B.public_key) == -10 and ws.closed == 0 and not peer.closing
    clock.now += 4
    assert manager.score(B.public_key) == -6  # SCORE_RECOVERY_PER_S a second
    clock.now += 100
    assert manager.score(B.public_key) == 0  # never above 0
    for _ in range(4):
        manager.penalise(
            peer, "asked for blocks before its last request was answered", MINOR, close=False
        )
    await asyncio.sleep(0)
    assert manager.ban_left(B.public_key) > 0 and ws.closed == 1 and peer.closing


async def test_a_banned_peer_is_refused_at_the_handshake_and_let_in_after_the_ban() -> None:
    clock = ManualClock()
    rec = Recorder()
    server = PeerManager(
        A, CHAIN, NAMES, P2PConfig(ban_min_ms=60_000), rec.on_message, rec.on_connect, clock=clock
    )
    client, _ = manager_of(B)
    async with listening(server) as address, dialing(client, address):
        async with asyncio.timeout(5):
            await rec.connected.wait()
        peer = server.peers[B.public_key]
        for _ in range(3):
            server.penalise(peer, "sent an invalid frame (test)")
        # it redials and is refused
        await until(lambda: B.public_key not in server.peers and server.refused >= 2)
        assert server.ban_left(B.public_key) == 60.0
        rec.connected.clear()
        clock.now += 61
        async with asyncio.timeout(5):
            await rec.connected.wait()  # the ban is over: it is let in again
        assert B.public_key in server.peers


async def test_an_oversize_frame_closes_the_link_and_scores() -> None:
    async with linked(P2PConfig(max_frame_bytes=1 << 16)) as (server, _, client, _):
        client.peers[A.public_key].send(b"\x00" * (1 << 17))
        await until(lambda: server.bad_frames)
        assert server.score(B.public_key) < 0


async def test_a_withdrawn_key_is_cut_off_and_refused_when_it_redials() -> None:
    rec = Recorder()
    server = PeerManager(A, CHAIN, dict(NAMES), P2PConfig(), rec.on_message, rec.on_connect)
    client, _ = manager_of(B)
    async with listening(server) as address, dialing(client, address):
        async with asyncio.timeout(5):
            await rec.connected.wait()
        server.expect([B.public_key])
        assert server.withdraw({B.public_key}) == ["b"]
        assert B.public_key not in server.names and B.public_key not in server.missing_since
        await until(lambda: B.public_key not in server.peers and server.refused >= 1)
        assert server.withdraw({B.public_key}) == [], "withdrawing twice changes nothing"
