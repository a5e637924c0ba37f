"""A signed ``/v1/events`` subscription to committed blocks, kept alive, as a bounded queue.

:class:`BlockFeed` runs the WebSocket in its own thread (asyncio) and hands the
caller the heights of committed blocks through a bounded queue. It only says
*that* something committed: whoever consumes it reads what changed through
verified reads. On a dropped connection it reconnects with exponential
backoff (signing the upgrade request afresh each time: a signed read carries
its time) and puts :data:`RESYNC` in the queue, so the consumer re-reads the
state at the latest height and catches up on whatever committed in between.
When the queue is full the oldest height is dropped: a later height covers it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import queue
import threading
import urllib.parse
from typing import TYPE_CHECKING

from cli.client import NodeClient
from node.api.auth import sign_request

if TYPE_CHECKING:
    import aiohttp  # imported when a feed starts: every shipment command imports this module

RESYNC = 0  # not a height: "read the latest state" (after a reconnect)
QUEUE_SIZE = 64
BACKOFF_S = (0.2, 0.5, 1.0, 2.0, 5.0, 10.0)
PATH = "/v1/events"


class BlockFeed:
    """Heights of committed blocks from one node (``RESYNC`` after each reconnect)."""

    def __init__(self, client: NodeClient) -> None:
        self.client = client
        self.heights: queue.Queue[int] = queue.Queue(QUEUE_SIZE)
        self.reconnects = 0
        self._stop = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="block-feed", daemon=True)

    def start(self) -> BlockFeed:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _put(self, height: int) -> None:
        while True:
            try:
                self.heights.put_nowait(height)
                return
            except queue.Full:
                with contextlib.suppress(queue.Empty):
                    self.heights.get_nowait()  # the oldest: a later height covers it

    def _run(self) -> None:
        try:
            self._loop.run_until_complete(self._follow())
        finally:
            self._loop.close()

    async def _follow(self) -> None:
        import aiohttp

        failures = 0
        async with aiohttp.ClientSession() as session:
            while not self._stop.is_set():
                if await self._session(session):
                    failures = 0
                if self._stop.is_set():
                    return
                self.reconnects += 1
                delay = BACKOFF_S[min(failures, len(BACKOFF_S) - 1)]
                failures += 1
                await asyncio.sleep(delay)

    async def _session(self, session: aiohttp.ClientSession) -> bool:
        """One connection until it drops; True if it was established."""
        import aiohttp

        try:
            async with session.ws_connect(self._url(), headers=self._headers(), ssl=self._ssl(),
                                          heartbeat=30.0) as ws:  # fmt: skip
                await ws.send_str(json.dumps({"blocks": True}))
                self._put(RESYNC)  # whatever committed before (or while away): read it now
                while not self._stop.is_set():
                    try:
                        msg = await ws.receive(timeout=0.5)
                    except TimeoutError:
                        continue
                    if msg.type != aiohttp.WSMsgType.TEXT:
                        return True
                    self._frame(msg.data)
                return True
        except (aiohttp.ClientError, OSError, TimeoutError):
            return False

    def _frame(self, data: str) -> None:
        with contextlib.suppress(ValueError):
            frame = json.loads(data)
            if isinstance(frame, dict) and frame.get("type") == "block":
                height = frame.get("height")
                if isinstance(height, int) and height > 0:
                    self._put(height)

    def _url(self) -> str:
        parsed = urllib.parse.urlsplit(self.client.url)
        scheme = "wss" if parsed.scheme == "https" else "ws"
        return f"{scheme}://{parsed.netloc}{PATH}"

    def _headers(self) -> dict[str, str]:
        c = self.client
        if c.key is None:
            return {}
        return sign_request(c.key, c.chain_id, c.node_key, "GET", PATH, b"", c.clock())

    def _ssl(self) -> aiohttp.Fingerprint | bool:
        import aiohttp

        return aiohttp.Fingerprint(self.client.pin) if self.client.pin else True
