"""Tools for hostile input against a real node: HTTP requests, peer frames, RSS.

:class:`HostilePeer` completes the real peer handshake (node/handshake.py) with the
intruder observer key that the fault suite's configs allow, then sends whatever
frames it is given, reconnecting whenever the node drops the link. It runs on its
own event loop thread so hypothesis-driven (synchronous) tests can drive it.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import os
import socket
import ssl
import threading
import time
from dataclasses import dataclass

import aiohttp

from ledger.crypto import PrivateKey, Purpose
from ledger.encoding import decode, encode
from node.link_identity import fingerprint
from node.tls import load_identity, new_identity, tls_context
from node.wire import SYNC_RESP_TAIL, handshake_message


@dataclass
class HTTPAnswer:
    status: int  # 0: the node closed the connection without an answer
    body: bytes


def request(
    host: str,
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    *,
    source: str | None = None,
    timeout: float = 10.0,
) -> HTTPAnswer:
    """One request on a fresh connection; ``source`` binds the client address (another
    127.x address counts as another client for the node's rate limiter)."""
    conn = http.client.HTTPConnection(
        host, port, timeout=timeout, source_address=(source, 0) if source else None
    )
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return HTTPAnswer(resp.status, resp.read())
    except (ConnectionError, http.client.RemoteDisconnected, http.client.BadStatusLine):
        return HTTPAnswer(0, b"")
    finally:
        conn.close()


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _peer_certificate(ws: aiohttp.ClientWebSocketResponse) -> bytes:
    connection = ws._response.connection
    assert connection is not None and connection.transport is not None
    der: bytes = connection.transport.get_extra_info("ssl_object").getpeercert(binary_form=True)
    return der


class Refused(Exception):
    """The node closed the link at the handshake instead of answering it (a banned key)."""


class HostilePeer:
    """An authenticated peer link that sends arbitrary frames.

    A node that refuses the handshake (the intruder's key is banned) is not retried:
    :meth:`send` returns False at once and ``refused`` counts it."""

    def __init__(self, address: str, key: PrivateKey, chain_id: str) -> None:
        self.address = address
        self.key = key
        self.chain_id = chain_id
        self.connects = 0
        self.closed_by_node = 0
        self.received = 0
        self.received_bytes = 0
        self.sync_responses = 0
        self.refused = 0
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        # The intruder is an allowed observer with its own TLS key and certificate;
        # it does not check the node's certificate (it is not the one at risk).
        tls_key, self._cert = new_identity(key)
        self._tls = tls_context(server_side=False, anchors="")
        self._tls.verify_mode = ssl.CERT_NONE
        load_identity(self._tls, tls_key, self._cert)
        self._reader: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name="intruder")
        self._thread.start()

    def send(self, frame: bytes, *, settle_s: float = 0.0) -> bool:
        """Send one frame (reconnecting first if needed); True if the link is still
        open after ``settle_s``."""
        return bool(self._call(self._send(frame, settle_s)))

    def send_many(self, frames: list[bytes]) -> None:
        self._call(self._send_many(frames), timeout=120)

    def try_connect(self) -> bool:
        """Open a link if none is open: True if the node accepted the handshake, False
        if it refused it."""
        return bool(self._call(self._try_connect()))

    async def _try_connect(self) -> bool:
        try:
            await self._connect()
        except Refused:
            return False
        return True

    def close_link(self) -> None:
        """Close the current link (the next send or try_connect opens a new one)."""
        self._call(self._close_link())

    async def _close_link(self) -> None:
        if self._ws is not None:
            await self._ws.close()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._call(self._close(), timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    def _call(self, coro: object, timeout: float = 30) -> object:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)  # type: ignore[arg-type]

    async def _connect(self) -> aiohttp.ClientWebSocketResponse:
        if self._ws is not None and not self._ws.closed:
            return self._ws
        if self._session is None:
            self._session = aiohttp.ClientSession()
        for attempt in range(200):
            try:
                ws = await self._session.ws_connect(
                    f"https://{self.address}/p2p",
                    max_msg_size=64 * 1024 * 1024,
                    ssl=self._tls,
                )
                hello = decode(await ws.receive_bytes(timeout=5))
                challenge = os.urandom(32)
                server_cert = _peer_certificate(ws)
                message = handshake_message(
                    hello["challenge"],
                    self.key.public_key,
                    hello["key"],
                    fingerprint(server_cert),
                    fingerprint(self._cert),
                )
                await ws.send_bytes(
                    encode(
                        {
                            "challenge": challenge,
                            "genesis": hello["genesis"],  # whatever the node says
                            "key": self.key.public_key,
                            "sig": self.key.sign(Purpose.HANDSHAKE, self.chain_id, message),
                            "version": hello["version"],
                        }
                    )
                )
                reply = await ws.receive(timeout=5)  # the node's signature
                if reply.type != aiohttp.WSMsgType.BINARY:
                    self.refused += 1
                    await ws.close()
                    raise Refused(f"{self.address} refused the handshake ({reply.type.name})")
                decode(reply.data)
                break
            except (aiohttp.ClientError, OSError, TimeoutError, TypeError):
                await asyncio.sleep(0.05 if attempt < 100 else 0.5)
        else:
            raise ConnectionError(f"cannot complete a handshake with {self.address}")
        self._ws = ws
        self.connects += 1
        self._reader = asyncio.create_task(self._read(ws))
        return ws

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for msg in ws:
            self.received += 1
            if isinstance(msg.data, bytes):
                self.received_bytes += len(msg.data)
                self.sync_responses += msg.data.endswith(SYNC_RESP_TAIL)
        self.closed_by_node += 1

    async def _send(self, frame: bytes, settle_s: float) -> bool:
        try:
            ws = await self._connect()
        except Refused:
            return False
        try:
            await ws.send_bytes(frame)
        except (aiohttp.ClientError, ConnectionError, RuntimeError):
            return False
        if settle_s:
            await asyncio.sleep(settle_s)
        return not ws.closed

    async def _send_many(self, frames: list[bytes]) -> None:
        for frame in frames:
            await self._send(frame, 0.0)

    async def _close(self) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            self._reader.cancel()
        if self._session is not None:
            await self._session.close()


class SlowClients:
    """Bounded slowloris: ``count`` sockets that trickle a request one byte at a time."""

    def __init__(self, host: str, port: int, count: int, source: str) -> None:
        self.host, self.port, self.count, self.source = host, port, count, source
        self.socks: list[socket.socket] = []
        self.opened = 0
        self.refused = 0
        self.dropped = 0

    def open(self) -> None:
        for _ in range(self.count):
            s = socket.socket()
            s.settimeout(2)
            try:
                s.bind((self.source, 0))
                s.connect((self.host, self.port))
                s.sendall(b"POST /v1/txs HTTP/1.1\r\nHost: x\r\n")
            except OSError:
                self.refused += 1
                s.close()
                continue
            self.socks.append(s)
            self.opened += 1

    def trickle(self, seconds: float, byte: bytes = b"X") -> None:
        """One byte of a never-ending header per socket per second, for ``seconds``."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and self.socks:
            alive = []
            for s in self.socks:
                try:
                    s.sendall(byte)
                    alive.append(s)
                except OSError:
                    self.dropped += 1
                    s.close()
            self.socks = alive
            time.sleep(1.0)

    def close(self) -> None:
        for s in self.socks:
            with contextlib.suppress(OSError):
                s.close()
        self.socks.clear()
