"""The node's listening sockets: aiohttp sites, with TLS and a TLS handshake deadline."""

from __future__ import annotations

import asyncio
import ssl

from aiohttp import web

from node.config import split_host_port


class _Site(web.TCPSite):
    """A TCP site whose TLS handshakes must finish within ``handshake_timeout_s``
    (aiohttp's own site leaves asyncio's 60 s)."""

    def __init__(
        self,
        runner: web.AppRunner,
        host: str,
        port: int,
        ssl_context: ssl.SSLContext | None,
        handshake_timeout_s: float,
    ) -> None:
        super().__init__(runner, host, port, ssl_context=ssl_context, reuse_address=True)
        self._handshake_timeout_s = handshake_timeout_s

    async def start(self) -> None:
        await web.BaseSite.start(self)
        server = self._runner.server
        assert server is not None
        self._server = await asyncio.get_running_loop().create_server(
            server,
            self._host,
            self._port,
            ssl=self._ssl_context,
            ssl_handshake_timeout=self._handshake_timeout_s if self._ssl_context else None,
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
    host, port = split_host_port(listen)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    await _Site(runner, host, port, ssl_context, handshake_timeout_s).start()
    return runner
