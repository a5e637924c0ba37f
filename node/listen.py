"""The node's listening sockets: aiohttp sites with TLS and a TLS handshake deadline;
and :class:`PendingCount`, the cap on links not authenticated yet (node/peers.py)."""

from __future__ import annotations

import asyncio
import ssl

from aiohttp import web

from node.config import split_host_port


class PendingCount:
    """Connections not authenticated yet, per source address and in all, capped."""

    def __init__(self, total: int, per_address: int) -> None:
        self.total = total
        self.per_address = per_address
        self.by_address: dict[str, int] = {}

    def take(self, address: str) -> bool:
        """Count one more from ``address``; False (nothing counted) over a cap."""
        mine = self.by_address.get(address, 0)
        if sum(self.by_address.values()) >= self.total or mine >= self.per_address:
            return False
        self.by_address[address] = mine + 1
        return True

    def release(self, address: str) -> None:
        left = self.by_address.get(address, 0) - 1
        if left > 0:
            self.by_address[address] = left
        else:
            self.by_address.pop(address, None)


class _Site(web.TCPSite):
    """A TCP site whose TLS handshakes must finish within ``handshake_timeout_s``
    (aiohttp's own site leaves asyncio's 60 s)."""

    def __init__(
        self,
        runner: web.AppRunner,
        listen: str,
        ssl_context: ssl.SSLContext | None,
        handshake_timeout_s: float,
    ) -> None:
        host, port = split_host_port(listen)
        super().__init__(runner, host, port, ssl_context=ssl_context, reuse_address=True)
        self._handshake_timeout_s = handshake_timeout_s

    async def start(self) -> None:
        await web.BaseSite.start(self)
        server = self._runner.server
        assert server is not None
        loop = asyncio.get_running_loop()
        ctx = self._ssl_context
        self._server = await loop.create_server(
            server,
            self._host,
            self._port,
            ssl=ctx,
            ssl_handshake_timeout=self._handshake_timeout_s if ctx else None,
            backlog=self._backlog,
            reuse_address=True,
        )


async def start_site(
    app: web.Application,
    listen: str,
    *,
    ssl_context: ssl.SSLContext | None = None,
    handshake_timeout_s: float = 5.0,
) -> web.AppRunner:
    """Serve ``app`` on ``listen`` (``host:port``), over TLS with ``ssl_context``."""
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    await _Site(runner, listen, ssl_context, handshake_timeout_s).start()
    return runner
