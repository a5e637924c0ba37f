"""The node's listening sockets: aiohttp sites with TLS and a TLS handshake deadline;
and :class:`PendingCount`, the cap on links not authenticated yet (node/peers.py).

A TLS site given a :class:`PendingCount` accepts its TCP connections itself
(:class:`_CappedTLSAcceptor`), so that connections still in the TLS handshake are
counted too: one from an address over its share, or over the total, is closed at once,
before the node spends anything on TLS. Such a connection costs the node a socket for
at most the handshake deadline.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import ssl
from collections.abc import Callable

from aiohttp import web

from ledger.errors import LedgerError
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


class _CappedTLSAcceptor:
    """Accepts on ``sock`` and runs each connection's TLS handshake, counting it in
    ``pending`` until the handshake ends; a connection over a cap is closed unread.
    Looks enough like an ``asyncio.Server`` for aiohttp's site (``sockets``, ``close``)."""

    def __init__(
        self,
        sock: socket.socket,
        protocol_factory: Callable[[], asyncio.Protocol],
        ssl_context: ssl.SSLContext,
        handshake_timeout_s: float,
        pending: PendingCount,
    ) -> None:
        self.sockets = [sock]
        self._factory = protocol_factory
        self._ssl = ssl_context
        self._timeout_s = handshake_timeout_s
        self._pending = pending
        self._handshakes: set[asyncio.Task[None]] = set()
        self._task = asyncio.create_task(self._accept(sock))

    async def _accept(self, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                conn, address = await loop.sock_accept(sock)
            except OSError:  # out of descriptors, or a connection reset while queued
                await asyncio.sleep(0.05)
                continue
            host = str(address[0])
            if not self._pending.take(host):
                conn.close()
                continue
            task = asyncio.create_task(self._handshake(conn, host))
            self._handshakes.add(task)
            task.add_done_callback(self._handshakes.discard)

    async def _handshake(self, conn: socket.socket, host: str) -> None:
        try:
            await asyncio.get_running_loop().connect_accepted_socket(
                self._factory, conn, ssl=self._ssl, ssl_handshake_timeout=self._timeout_s
            )
        except (OSError, ssl.SSLError, TimeoutError, EOFError):
            conn.close()
        finally:
            self._pending.release(host)

    def close(self) -> None:
        self._task.cancel()
        for task in list(self._handshakes):
            task.cancel()
        for sock in self.sockets:
            sock.close()


class _Site(web.TCPSite):
    """A TCP site whose TLS handshakes must finish within ``handshake_timeout_s``
    (aiohttp's own site leaves asyncio's 60 s), capped by ``pending`` if given."""

    def __init__(
        self,
        runner: web.AppRunner,
        listen: str,
        ssl_context: ssl.SSLContext | None,
        handshake_timeout_s: float,
        pending: PendingCount | None = None,
    ) -> None:
        host, port = split_host_port(listen)
        super().__init__(runner, host, port, ssl_context=ssl_context, reuse_address=True)
        self._handshake_timeout_s = handshake_timeout_s
        self._pending = pending

    async def start(self) -> None:
        await web.BaseSite.start(self)
        server = self._runner.server
        assert server is not None
        loop = asyncio.get_running_loop()
        ctx = self._ssl_context
        if ctx is not None and self._pending is not None:
            sock = socket.create_server((self._host or "", self._port), backlog=self._backlog)
            sock.setblocking(False)
            acceptor = _CappedTLSAcceptor(
                sock, server, ctx, self._handshake_timeout_s, self._pending
            )
            self._server = acceptor  # type: ignore[assignment]
            return
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
    tls_pending: PendingCount | None = None,
) -> web.AppRunner:
    """Serve ``app`` on ``listen`` (``host:port``), over TLS with ``ssl_context``;
    connections in the TLS handshake capped by ``tls_pending`` if given."""
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    try:
        await _Site(runner, listen, ssl_context, handshake_timeout_s, tls_pending).start()
    except OSError as exc:
        await runner.cleanup()
        raise ListenError(f"cannot listen on {listen}: {_why(exc)}") from None
    return runner


class ListenError(LedgerError):
    """An address the node must listen on cannot be bound (one line for the operator)."""


def _why(exc: OSError) -> str:
    if exc.errno == errno.EADDRINUSE:
        return "the address is already in use (another node, or another program: `ss -ltnp`)"
    if exc.errno == errno.EADDRNOTAVAIL:
        return "no interface of this host has that address"
    if exc.errno == errno.EACCES:
        return "permission denied (ports below 1024 need privileges)"
    return exc.strerror or str(exc)
