"""The peer handshake (node/handshake.py): the cheap checks of a hello, and refusals of
an unknown key and of a forged signature on a live link (over TLS: test_peer_tls.py)."""

from __future__ import annotations

import aiohttp
import pytest

from ledger.crypto import PrivateKey
from ledger.encoding import decode, encode
from node.config import P2PConfig
from node.handshake import NO_GENESIS, Banned, Handshake, HandshakeError, Session
from node.peers import PeerManager
from node.wire import PROTOCOL_VERSION
from tests.unit.node.peerkit import Recorder, dialing, listening, until

CHAIN = "test-chain"
A, B, OUTSIDER = (PrivateKey.from_label(n) for n in ("peer-a", "peer-b", "peer-outsider"))
NAMES = {A.public_key: "a", B.public_key: "b"}


def hello(key: PrivateKey = B, **over: object) -> dict[str, object]:
    return {"key": key.public_key, "genesis": NO_GENESIS, "version": PROTOCOL_VERSION} | over


@pytest.mark.parametrize(
    ("m", "session", "why"),
    [
        (hello(version=1), Session(), "protocol version differs: ours 3, theirs 1"),
        (hello(version=2), Session(), "protocol version differs: ours 3, theirs 2"),
        (hello(genesis=b"\x01" * 32), Session(), "genesis hash differs: ours 00000000"),
        (hello(OUTSIDER), Session(), "is not in the validator set"),
        (hello(A), Session(), "refusing a link to ourselves"),
        (hello(), Session(tls_key=A.public_key), "TLS binding invalid: certificate of a"),
    ],
)
def test_a_hello_is_refused_before_its_signature(
    m: dict[str, object], session: Session, why: str
) -> None:
    with pytest.raises(HandshakeError, match=why):
        Handshake(A, CHAIN, NAMES).check_hello(m, session)


def test_a_hello_of_an_allowed_key_passes_until_it_is_banned() -> None:
    bans = {B.public_key: 0.0}
    handshake = Handshake(A, CHAIN, NAMES, ban_left=bans.__getitem__)
    handshake.check_hello(hello(), Session(tls_key=B.public_key))
    bans[B.public_key] = 30.0
    with pytest.raises(Banned, match="peer b is banned for another 30 s"):
        handshake.check_hello(hello(), Session())


def acceptor() -> PeerManager:
    rec = Recorder()
    return PeerManager(A, CHAIN, NAMES, P2PConfig(), rec.on_message, rec.on_connect)


async def test_unknown_key_is_refused() -> None:
    server = acceptor()
    rec = Recorder()
    names = NAMES | {OUTSIDER.public_key: "outsider"}  # the outsider thinks it is welcome
    client = PeerManager(OUTSIDER, CHAIN, names, P2PConfig(), rec.on_message, rec.on_connect)
    async with listening(server) as address, dialing(client, address):
        await until(lambda: server.refused)
        assert not rec.connected.is_set()
        assert server.peers == {}


async def test_a_forged_handshake_signature_is_refused() -> None:
    server = acceptor()
    async with (
        listening(server) as address,
        aiohttp.ClientSession() as session,
        session.ws_connect(f"http://{address}/p2p") as ws,
    ):
        assert decode((await ws.receive()).data)["key"] == A.public_key
        # Claims to be B, but cannot sign as B.
        await ws.send_bytes(encode(hello(challenge=b"\x00" * 32, sig=b"\x01" * 64)))
        reply = await ws.receive()
        assert reply.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    assert server.refused == 1
    assert server.peers == {}
