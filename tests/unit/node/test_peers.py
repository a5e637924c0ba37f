"""Authenticated peer links in-process: handshake, refusal, malformed frames."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from ledger.crypto import PrivateKey
from ledger.encoding import decode, encode
from node.config import P2PConfig
from node.peers import Peer, PeerManager
from node.wire import Message, StatusMsg, decode_message, encode_message

CHAIN = "test-chain"
A, B, OUTSIDER = (PrivateKey.from_label(n) for n in ("peer-a", "peer-b", "peer-outsider"))
NAMES = {A.public_key: "a", B.public_key: "b"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Recorder:
    def __init__(self) -> None:
        self.messages: list[tuple[str, Message]] = []
        self.connected = asyncio.Event()

    async def on_message(self, peer: Peer, msg: Message) -> None:
        self.messages.append((peer.name, msg))

    async def on_connect(self, peer: Peer) -> None:
        self.connected.set()


async def serve(manager: PeerManager, port: int) -> web.AppRunner:
    app = web.Application()
    app.router.add_get("/p2p", manager.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


@pytest.fixture
async def acceptor() -> AsyncIterator[tuple[PeerManager, Recorder, int]]:
    rec = Recorder()
    manager = PeerManager(A, CHAIN, NAMES, P2PConfig(), rec.on_message, rec.on_connect)
    port = free_port()
    runner = await serve(manager, port)
    yield manager, rec, port
    await manager.close()
    await runner.cleanup()


async def test_two_validators_connect_and_exchange_frames(
    acceptor: tuple[PeerManager, Recorder, int],
) -> None:
    server, server_rec, port = acceptor
    rec = Recorder()
    client = PeerManager(B, CHAIN, NAMES, P2PConfig(), rec.on_message, rec.on_connect)
    dial = asyncio.create_task(client.dial_forever(f"127.0.0.1:{port}"))
    try:
        async with asyncio.timeout(5):
            await rec.connected.wait()
            await server_rec.connected.wait()
        client.broadcast(StatusMsg(7))
        async with asyncio.timeout(5):
            while not server_rec.messages:
                await asyncio.sleep(0.01)
        assert server_rec.messages == [("b", StatusMsg(7))]
        assert set(server.peers) == {B.public_key}
    finally:
        dial.cancel()
        await client.close()


async def test_unknown_key_is_refused(acceptor: tuple[PeerManager, Recorder, int]) -> None:
    server, _server_rec, port = acceptor
    rec = Recorder()
    names = NAMES | {OUTSIDER.public_key: "outsider"}  # the outsider thinks it is welcome
    client = PeerManager(OUTSIDER, CHAIN, names, P2PConfig(), rec.on_message, rec.on_connect)
    dial = asyncio.create_task(client.dial_forever(f"127.0.0.1:{port}"))
    try:
        async with asyncio.timeout(5):
            while server.refused == 0:
                await asyncio.sleep(0.02)
        assert not rec.connected.is_set()
        assert server.peers == {}
    finally:
        dial.cancel()
        await client.close()


async def test_a_forged_handshake_signature_is_refused(
    acceptor: tuple[PeerManager, Recorder, int],
) -> None:
    server, _, port = acceptor
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(f"http://127.0.0.1:{port}/p2p") as ws,
    ):
        hello = decode((await ws.receive()).data)
        assert hello["key"] == A.public_key
        # Claims to be B, but cannot sign as B.
        await ws.send_bytes(
            encode({"challenge": b"\x00" * 32, "key": B.public_key, "sig": b"\x01" * 64})
        )
        reply = await ws.receive()
        assert reply.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    assert server.refused == 1
    assert server.peers == {}


async def test_malformed_frame_disconnects_and_scores(
    acceptor: tuple[PeerManager, Recorder, int],
) -> None:
    server, server_rec, port = acceptor
    rec = Recorder()
    client = PeerManager(B, CHAIN, NAMES, P2PConfig(), rec.on_message, rec.on_connect)
    dial = asyncio.create_task(client.dial_forever(f"127.0.0.1:{port}"))
    try:
        async with asyncio.timeout(5):
            await server_rec.connected.wait()
            await rec.connected.wait()
        peer = client.peers[A.public_key]
        peer.send(b"\x92\x01")  # truncated msgpack
        async with asyncio.timeout(5):
            while server.bad_frames == 0:
                await asyncio.sleep(0.01)
        assert server.scores[B.public_key] < 0
        assert server_rec.messages == []
    finally:
        dial.cancel()
        await client.close()


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
