"""Peer links inside mutual TLS 1.3 pinned to the validator set (node/tls.py,
node/link_identity.py, node/peers.py): who gets in, who is refused, and that a refusal
blames nobody honest."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ed25519

from ledger.crypto import PrivateKey, Purpose, is_valid_signature
from ledger.encoding import encode
from ledger.errors import ValidationError
from node.config import P2PConfig
from node.handshake import NO_GENESIS
from node.link_identity import (
    NOT_AFTER,
    LinkIdentityError,
    fingerprint,
    leaf_certificate,
    peer_key,
    validator_name,
)
from node.listen import start_site
from node.peers import PeerManager
from node.tls import (
    LinkTLS,
    TLSFileError,
    anchors_pem,
    ensure_identity,
    load_identity,
    read_identity,
    rotate_tls_key,
    tls_context,
)
from node.wire import StatusMsg, handshake_message
from tests.unit.node.peerkit import Recorder, dialing, listening, until

CHAIN = "tls-chain"
A, B, OBSERVER, OUTSIDER = (
    PrivateKey.from_label(f"tls-{n}") for n in ("a", "b", "observer", "outsider")
)
NAMES = {A.public_key: "a", B.public_key: "b", OBSERVER.public_key: "observer"}


def manager(
    key: PrivateKey, tls: LinkTLS | None = None, genesis: bytes = NO_GENESIS
) -> tuple[PeerManager, Recorder]:
    rec = Recorder()
    tls = tls if tls is not None else LinkTLS.ephemeral(key, NAMES)
    config = P2PConfig(reconnect_min_ms=50, reconnect_max_ms=200, handshake_timeout_ms=2000)
    m = PeerManager(
        key, CHAIN, NAMES, config, rec.on_message, rec.on_connect, tls=tls, genesis_hash=genesis
    )
    return m, rec


def nobody_blamed(*managers: PeerManager) -> None:
    for m in managers:
        assert all(m.score(key) == 0 for key in NAMES), m.scores
        assert m.bans == {} and m.banned_until == {}


def context_with(
    cert_der: bytes, tls_key: ed25519.Ed25519PrivateKey, *, server: bool
) -> ssl.SSLContext:
    ctx = tls_context(server_side=server, anchors=anchors_pem(NAMES))
    load_identity(ctx, tls_key, cert_der)
    return ctx


# --- the certificates -------------------------------------------------------------------


def test_a_leaf_is_issued_by_the_consensus_key_and_never_expires() -> None:
    tls_key = ed25519.Ed25519PrivateKey.generate()
    der = leaf_certificate(A, tls_key)
    cert = x509.load_der_x509_certificate(der)
    assert cert.issuer == validator_name(A.public_key)
    assert cert.not_valid_after_utc == NOT_AFTER
    assert cert.public_key() == tls_key.public_key()
    assert peer_key(der, NAMES) == A.public_key
    with pytest.raises(LinkIdentityError, match="not an allowed key"):
        peer_key(leaf_certificate(OUTSIDER, tls_key), NAMES)


def test_a_leaf_naming_a_validator_but_signed_by_another_key_is_refused() -> None:
    forged = x509.load_der_x509_certificate(leaf_certificate(OUTSIDER, _key()))
    # Same TBSCertificate but issuer renamed to A: rebuild it signed by OUTSIDER.
    builder = (
        x509.CertificateBuilder()
        .subject_name(forged.subject)
        .issuer_name(validator_name(A.public_key))
        .public_key(forged.public_key())
        .serial_number(7)
        .not_valid_before(forged.not_valid_before_utc)
        .not_valid_after(forged.not_valid_after_utc)
    )
    tbs = builder.sign(_key(), None).tbs_certificate_bytes
    from node.link_identity import _ED25519_ALGORITHM, _der_bit_string, _der_sequence

    der = _der_sequence(tbs + _ED25519_ALGORITHM + _der_bit_string(OUTSIDER.sign_x509(tbs)))
    with pytest.raises(LinkIdentityError, match="not signed by the key it names"):
        peer_key(der, NAMES)


def test_a_certificate_signature_is_never_a_consensus_signature() -> None:
    """Domain separation: the consensus key signs DER (first byte 0x30) raw, and every
    message it signs otherwise starts with a purpose tag, none of which starts so."""
    assert all(p.value[0] != 0x30 for p in Purpose)
    with pytest.raises(ValidationError):
        A.sign_x509(b"cityledger/v1/vote\x00" + b"x")
    der = leaf_certificate(A, _key())
    cert = x509.load_der_x509_certificate(der)
    tbs = cert.tbs_certificate_bytes
    assert tbs[0] == 0x30
    for purpose in Purpose:
        for chain in ("c", CHAIN):
            assert not is_valid_signature(A.public_key, purpose, chain, tbs, cert.signature)


def test_corrupt_tls_files_give_one_clear_line(tmp_path: Path) -> None:
    key_path, cert_path = str(tmp_path / "tls_key.pem"), str(tmp_path / "tls_cert.pem")
    assert ensure_identity(key_path, cert_path, A)
    read_identity(key_path, cert_path, A)
    with pytest.raises(TLSFileError, match="not issued by this node's key"):
        read_identity(key_path, cert_path, B)
    Path(cert_path).write_text("-----BEGIN CERTIFICATE-----\nnonsense\n")
    with pytest.raises(TLSFileError) as cert_error:
        read_identity(key_path, cert_path, A)
    Path(key_path).write_bytes(b"\x00garbage")
    with pytest.raises(TLSFileError) as key_error:
        read_identity(key_path, cert_path, A)
    for error, name in ((cert_error, "tls_cert.pem"), (key_error, "tls_key.pem")):
        assert name in str(error.value) and "\n" not in str(error.value)


# --- links -------------------------------------------------------------------------------


async def test_two_validators_link_over_tls_13_and_exchange_frames() -> None:
    server, server_rec = manager(A)
    client, _ = manager(B)
    async with listening(server) as address, dialing(client, address):
        await until(lambda: B.public_key in server.peers and A.public_key in client.peers)
        client.broadcast(StatusMsg(3))
        await until(lambda: server_rec.messages == [("b", StatusMsg(3))])
        ws = client.peers[A.public_key].ws
        assert isinstance(ws, aiohttp.ClientWebSocketResponse)
        ssl_object = ws._response.connection.transport.get_extra_info("ssl_object")  # type: ignore[union-attr]
        assert ssl_object.version() == "TLSv1.3"


@pytest.mark.parametrize(
    "cert_of",
    ["self-signed", "outsider"],
)
async def test_a_relay_or_peer_with_a_certificate_not_bound_to_an_allowed_key_is_refused(
    cert_of: str,
) -> None:
    """Whoever presents a TLS certificate not issued by an allowed key — a relay that
    terminates TLS with its own, an outsider's properly issued one — gets no link,
    neither as acceptor nor as dialer, and nobody is scored down."""
    tls_key = _key()
    if cert_of == "outsider":
        der = leaf_certificate(OUTSIDER, tls_key)
    else:
        name = x509.Name([])
        der = _self_signed(tls_key, name)
    honest, _ = manager(A)
    # the impostor as acceptor: the honest dialer refuses it
    impostor_app = web.Application()
    impostor_app.router.add_get("/p2p", _hello_world)
    runner = await start_site(
        impostor_app, "127.0.0.1:0", ssl_context=context_with(der, tls_key, server=True)
    )
    try:
        address = f"127.0.0.1:{runner.addresses[0][1]}"
        async with dialing(honest, address):
            await until(lambda: address in honest.dial_failures)
        assert "TLS" in honest.dial_failures[address]
    finally:
        await runner.cleanup()
    # the impostor as dialer: the honest acceptor refuses it
    server, _ = manager(B)
    async with listening(server) as address:
        async with aiohttp.ClientSession() as session:
            with pytest.raises((aiohttp.ClientError, ssl.SSLError, ConnectionError)):
                async with session.ws_connect(
                    f"https://{address}/p2p", ssl=context_with(der, tls_key, server=False)
                ) as ws:
                    await ws.receive(timeout=3)
                    raise ConnectionError("no frame expected")
        assert server.peers == {}
    nobody_blamed(honest, server)


def test_another_validators_certificate_cannot_be_used_without_its_key() -> None:
    """Replaying B's binding: its certificate is public, but TLS wants its key too."""
    b_cert = leaf_certificate(B, _key())
    with pytest.raises(ssl.SSLError):
        context_with(b_cert, _key(), server=False)


async def test_a_peer_replaying_another_validators_key_in_the_handshake_is_refused(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An observer (allowed, with its own valid certificate) claims to be B in the
    handshake: refused for the mismatch, B and the observer not scored down."""
    server, _ = manager(A)
    impostor_names = {A.public_key: "a", B.public_key: "b"}
    pretender = PeerManager(
        B,  # signs as B would, yet its TLS certificate is the observer's
        CHAIN,
        impostor_names,
        P2PConfig(reconnect_min_ms=50, reconnect_max_ms=200),
        Recorder().on_message,
        Recorder().on_connect,
        tls=LinkTLS.ephemeral(OBSERVER, NAMES),
    )
    async with listening(server) as address, dialing(pretender, address):
        await until(lambda: server.refused >= 1 and address in pretender.dial_failures)
        assert server.peers == {}
    assert "TLS binding invalid" in caplog.text
    nobody_blamed(server)


async def test_a_splice_of_two_tls_sessions_is_refused_by_both_ends(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An allowed observer relays the WebSocket frames between A and B: B dials it
    thinking it is A, it dials A. Without the TLS binding both would link as A—B; with
    it, B sees the observer's certificate under A's key and refuses before it signs
    anything, so A never gets a signed hello. Nobody is blamed."""
    a, _ = manager(A)
    b, _ = manager(B)
    relay = LinkTLS.ephemeral(OBSERVER, NAMES)
    refused_at_a = asyncio.Event()
    async with listening(a) as a_address:

        async def splice(request: web.Request) -> web.WebSocketResponse:
            inner = web.WebSocketResponse()
            await inner.prepare(request)
            async with (
                aiohttp.ClientSession() as session,
                session.ws_connect(f"https://{a_address}/p2p", ssl=relay.client) as outer,
            ):
                await _pump_both(inner, outer)
            refused_at_a.set()
            return inner

        app = web.Application()
        app.router.add_get("/p2p", splice)
        runner = await start_site(app, "127.0.0.1:0", ssl_context=relay.server)
        relay_address = f"127.0.0.1:{runner.addresses[0][1]}"
        try:
            async with dialing(b, relay_address):
                await until(lambda: a.refused >= 1 and relay_address in b.dial_failures)
        finally:
            await runner.cleanup()
        assert a.peers == {} and b.peers == {}
    assert "TLS binding invalid: certificate of observer, handshake key of a" in caplog.text
    nobody_blamed(a, b)


def test_a_handshake_signature_holds_only_for_the_session_it_was_made_in() -> None:
    """What a splicer forwards: B's signature over the certificates of B's session
    does not verify over those of A's (the second check after the key binding)."""
    challenge = bytes(range(32))
    a_cert, b_cert, o_cert = (fingerprint(bytes([n])) for n in (1, 2, 3))
    signed = handshake_message(challenge, B.public_key, A.public_key, o_cert, b_cert)
    sig = B.sign(Purpose.HANDSHAKE, CHAIN, signed)
    seen_by_a = handshake_message(challenge, B.public_key, A.public_key, a_cert, o_cert)
    assert is_valid_signature(B.public_key, Purpose.HANDSHAKE, CHAIN, signed, sig)
    assert not is_valid_signature(B.public_key, Purpose.HANDSHAKE, CHAIN, seen_by_a, sig)


async def test_a_plaintext_client_on_a_tls_port_gets_nothing() -> None:
    server, _ = manager(A)
    async with listening(server) as address:
        host, port = address.split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(
            b"GET /p2p HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        await writer.drain()
        with contextlib.suppress(ConnectionError):
            answer = await asyncio.wait_for(reader.read(65536), 5)
            assert b"HTTP" not in answer and b"challenge" not in answer
        writer.close()
        assert server.peers == {}


async def test_a_rotated_tls_key_serves_new_links_and_old_ones_stay(tmp_path: Path) -> None:
    key_path, cert_path = str(tmp_path / "tls_key.pem"), str(tmp_path / "tls_cert.pem")
    ensure_identity(key_path, cert_path, A)
    tls = LinkTLS.from_files(A, NAMES, key_path, cert_path)
    old = tls.cert
    server, _ = manager(A, tls)
    first, _ = manager(B)
    async with listening(server) as address, dialing(first, address):
        await until(lambda: A.public_key in first.peers)
        new_fingerprint = rotate_tls_key(key_path, cert_path, A)
        assert tls.reload() and tls.cert != old and fingerprint(tls.cert) == new_fingerprint
        second, _ = manager(OBSERVER)
        async with dialing(second, address):
            await until(lambda: A.public_key in second.peers)
            ws = second.peers[A.public_key].ws
            seen = ws._response.connection.transport.get_extra_info("ssl_object")  # type: ignore[union-attr]
            assert fingerprint(seen.getpeercert(binary_form=True)) == new_fingerprint
        assert A.public_key in first.peers  # the link made before the rotation stays


async def test_a_link_between_different_genesis_files_says_why_on_both_sides(
    caplog: pytest.LogCaptureFixture,
) -> None:
    server, _ = manager(A, genesis=b"\x01" * 32)
    client, _ = manager(B, genesis=b"\x02" * 32)
    async with listening(server) as address, dialing(client, address):
        await until(lambda: address in client.dial_failures and server.refused >= 1)
    assert client.dial_failures[address] == (
        "genesis hash differs: ours 0202020202020202…, theirs 0101010101010101…"
    )
    assert (
        "refused peer from 127.0.0.1: the peer refused the link, saying: genesis hash "
        "differs: ours 0202020202020202…, theirs 0101010101010101…"
    ) in caplog.text
    nobody_blamed(server, client)


async def test_a_refused_observer_is_told_why() -> None:
    stranger = PrivateKey.from_label("tls-stranger")
    # Its certificate passes TLS (an anchor for its key), its key not the handshake.
    server, _ = manager(A, LinkTLS(A, [*NAMES, stranger.public_key], *_identity(A)))
    rec = Recorder()
    client = PeerManager(
        stranger,
        CHAIN,
        NAMES,
        P2PConfig(reconnect_min_ms=50),
        rec.on_message,
        rec.on_connect,
        tls=LinkTLS.ephemeral(stranger, NAMES),
    )
    async with listening(server) as address, dialing(client, address):
        await until(lambda: address in client.dial_failures)
    assert client.dial_failures[address].startswith(
        "the peer refused the link, saying: key "
    ) and client.dial_failures[address].endswith("is not in the validator set")


async def test_a_protocol_version_1_peer_is_named_as_such(
    caplog: pytest.LogCaptureFixture,
) -> None:
    v1_hello = {"challenge": bytes(32), "key": B.public_key, "sig": bytes(64)}
    server = await _refused_after_hello(encode(v1_hello))
    assert server.refused == 1
    assert "protocol version differs: ours 3, theirs 1" in caplog.text


async def test_missing_validators_are_listed_with_the_time_they_went_missing() -> None:
    times = iter([100.0, 200.0, 300.0])
    server, _ = manager(A)
    server.wall_clock = lambda: next(times)
    server.expect([A.public_key, B.public_key])
    assert server.missing_since == {B.public_key: 100.0}
    client, _ = manager(B)
    async with listening(server) as address:
        async with dialing(client, address):
            await until(lambda: B.public_key in server.peers)
            assert server.missing_since == {}
        await until(lambda: B.public_key not in server.peers)
        assert server.missing_since == {B.public_key: 200.0}


async def test_a_silent_connection_is_dropped_at_the_tls_handshake_deadline() -> None:
    rec = Recorder()
    config = P2PConfig(handshake_timeout_ms=1000)
    server = PeerManager(
        A, CHAIN, NAMES, config, rec.on_message, rec.on_connect, tls=LinkTLS.ephemeral(A, NAMES)
    )
    async with listening(server) as address:
        host, port = address.split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        async with asyncio.timeout(4):  # the site's deadline here is 2 s (listening)
            assert await reader.read() == b""
        writer.close()


async def test_pending_handshakes_are_capped_per_address() -> None:
    """Plaintext links (no TLS) so that the test holds handshakes open cheaply."""
    rec = Recorder()
    config = P2PConfig(max_pending_per_address=2, handshake_timeout_ms=3000)
    server = PeerManager(A, CHAIN, NAMES, config, rec.on_message, rec.on_connect)
    async with listening(server) as address, aiohttp.ClientSession() as session:
        held = [await session.ws_connect(f"http://{address}/p2p") for _ in range(2)]
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await session.ws_connect(f"http://{address}/p2p")
        assert refused.value.status == 503
        for ws in held:
            await ws.close()
        await until(lambda: server.pending.by_address == {})
        async with session.ws_connect(f"http://{address}/p2p") as ws:  # room again
            assert (await ws.receive(timeout=3)).type == aiohttp.WSMsgType.BINARY


async def test_an_oversize_handshake_frame_is_refused() -> None:
    server = await _refused_after_hello(b"\x80" + bytes(5000))
    assert server.refused == 1 and server.peers == {}
    nobody_blamed(server)


# --- helpers -----------------------------------------------------------------------------


async def _hello_world(request: web.Request) -> web.Response:
    return web.Response(text="hello")


async def _refused_after_hello(frame: bytes) -> PeerManager:
    """A plaintext acceptor sent ``frame`` in answer to its hello: it closed the link."""
    rec = Recorder()
    server = PeerManager(A, CHAIN, NAMES, P2PConfig(), rec.on_message, rec.on_connect)
    async with (
        listening(server) as address,
        aiohttp.ClientSession() as session,
        session.ws_connect(f"http://{address}/p2p") as ws,
    ):
        await ws.receive(timeout=3)
        await ws.send_bytes(frame)
        reply = await ws.receive(timeout=3)
        assert reply.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    return server


def _identity(key: PrivateKey) -> tuple[ed25519.Ed25519PrivateKey, bytes]:
    tls_key = _key()
    return tls_key, leaf_certificate(key, tls_key)


def _key() -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.generate()


def _self_signed(tls_key: ed25519.Ed25519PrivateKey, name: x509.Name) -> bytes:
    from cryptography.hazmat.primitives.serialization import Encoding

    from node.link_identity import NOT_BEFORE

    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(tls_key.public_key())
        .serial_number(9)
        .not_valid_before(NOT_BEFORE)
        .not_valid_after(NOT_AFTER)
        .sign(tls_key, None)
    )
    return cert.public_bytes(Encoding.DER)


async def _pump_both(a: web.WebSocketResponse, b: aiohttp.ClientWebSocketResponse) -> None:
    async def pump(
        src: web.WebSocketResponse | aiohttp.ClientWebSocketResponse,
        dst: web.WebSocketResponse | aiohttp.ClientWebSocketResponse,
    ) -> None:
        async for msg in src:
            if msg.type != aiohttp.WSMsgType.BINARY:
                break
            await dst.send_bytes(msg.data)
        await dst.close()

    tasks = [asyncio.create_task(pump(a, b)), asyncio.create_task(pump(b, a))]
    await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
