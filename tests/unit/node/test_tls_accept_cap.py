"""Connections still in the TLS handshake of a peer link are counted and capped
(node/listen.py): one over its address's share is closed unread, and an honest link
goes through the capped site."""

from __future__ import annotations

import asyncio

from aiohttp import web

from node.listen import PendingCount, start_site
from node.tls import LinkTLS
from tests.unit.node.peerkit import dialing, until
from tests.unit.node.test_peer_tls import NAMES, A, B, manager


async def _closed_at_once(reader: asyncio.StreamReader) -> bool:
    try:
        async with asyncio.timeout(1.0):
            return await reader.read() == b""
    except TimeoutError:
        return False


async def test_connections_in_the_tls_handshake_are_capped_per_address() -> None:
    pending = PendingCount(total=10, per_address=2)
    app = web.Application()
    ctx = LinkTLS.ephemeral(A, NAMES).server
    runner = await start_site(
        app, "127.0.0.1:0", ssl_context=ctx, handshake_timeout_s=5, tls_pending=pending
    )
    port = runner.addresses[0][1]
    held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(2)]
    try:
        await until(lambda: pending.by_address == {"127.0.0.1": 2})
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        assert await _closed_at_once(reader)  # over the share: closed before any TLS
        writer.close()
        for _, w in held:
            w.close()
        await until(lambda: pending.by_address == {})
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        assert not await _closed_at_once(reader)  # room again: it waits in the handshake
        writer.close()
    finally:
        await runner.cleanup()


async def test_a_peer_link_goes_through_a_capped_site() -> None:
    server, _ = manager(A)
    client, _ = manager(B)
    app = web.Application()
    app.router.add_get("/p2p", server.handle)
    assert server.tls is not None
    runner = await start_site(
        app,
        "127.0.0.1:0",
        ssl_context=server.tls.server,
        handshake_timeout_s=2,
        tls_pending=PendingCount(total=4, per_address=1),
    )
    address = f"127.0.0.1:{runner.addresses[0][1]}"
    try:
        async with dialing(client, address):
            await until(lambda: B.public_key in server.peers and A.public_key in client.peers)
    finally:
        await server.close()
        await runner.cleanup()
