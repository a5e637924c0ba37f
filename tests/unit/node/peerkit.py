"""Peer links in-process for the link tests: a recorder of what a manager hears, a
manager accepting on a loopback port (plaintext or TLS), one dialing it, and a wait."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from aiohttp import web

from node.listen import PendingCount, start_site
from node.peers import Peer, PeerManager
from node.wire import WireMessage


class Recorder:
    """A manager's ``on_message`` and ``on_connect``: (sender's name, message) heard."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, WireMessage]] = []
        self.connected = asyncio.Event()

    async def on_message(self, peer: Peer, msg: WireMessage) -> None:
        self.messages.append((peer.name, msg))

    async def on_connect(self, peer: Peer) -> None:
        self.connected.set()


@asynccontextmanager
async def listening(m: PeerManager) -> AsyncIterator[str]:
    """``m`` accepting links on a free loopback port (over TLS if it has one) while the
    block runs; yields its address; closes ``m`` after."""
    app = web.Application()
    app.router.add_get("/p2p", m.handle)
    ctx = None if m.tls is None else m.tls.server
    pending = None if ctx is None else PendingCount(total=16, per_address=8)
    runner = await start_site(
        app, "127.0.0.1:0", ssl_context=ctx, handshake_timeout_s=2, tls_pending=pending
    )
    try:
        yield f"127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await m.close()
        await runner.cleanup()


@asynccontextmanager
async def dialing(m: PeerManager, address: str) -> AsyncIterator[None]:
    """``m`` keeping a link to ``address`` while the block runs; closes ``m`` after."""
    task = asyncio.create_task(m.dial_forever(address))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await m.close()


async def until(condition: Callable[[], object], timeout: float = 5.0) -> None:
    """Wait until ``condition()`` is true (a TimeoutError after ``timeout`` seconds)."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)
