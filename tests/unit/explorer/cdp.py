"""Headless Chromium driven over the DevTools protocol (a websocket, with aiohttp).

No WebDriver and no Selenium: the test starts Debian's ``chromium`` with
``--remote-debugging-port=0``, reads the port it chose from ``DevToolsActivePort`` in
its profile directory, and sends the few commands it needs: open a page, evaluate an
expression, take a screenshot. The browser is the test's own process, stopped by its
pid (and its profile removed) however the test ends.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
]
START_TIMEOUT_S = 20.0


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


class Browser:
    """One headless Chromium and its DevTools websocket."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.ids = itertools.count(1)
        self.pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        async for message in self.ws:
            data = json.loads(message.data)
            future = self.pending.pop(data.get("id", -1), None)
            if future is not None and not future.done():
                future.set_result(data)

    async def send(self, method: str, params: dict[str, Any] | None = None,
                   session: str | None = None) -> dict[str, Any]:  # fmt: skip
        ident = next(self.ids)
        message: dict[str, Any] = {"id": ident, "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending[ident] = future
        await self.ws.send_str(json.dumps(message))
        async with asyncio.timeout(20):
            answer = await future
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        result: dict[str, Any] = answer["result"]
        return result

    async def open(self, url: str, width: int = 1000, height: int = 1100) -> str:
        """A new tab at ``url``; returns its session id."""
        target = await self.send("Target.createTarget", {"url": "about:blank"})
        attached = await self.send(
            "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}
        )
        session: str = attached["sessionId"]
        metrics = {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}
        await self.send("Emulation.setDeviceMetricsOverride", metrics, session)
        await self.send("Page.navigate", {"url": url}, session)
        return session

    async def evaluate(self, session: str, expression: str) -> Any:
        params = {"expression": expression, "returnByValue": True, "awaitPromise": True}
        result = await self.send("Runtime.evaluate", params, session)
        return result["result"].get("value")

    async def wait_for(self, session: str, expression: str, timeout_s: float = 15.0) -> Any:
        """The value of ``expression`` once it is truthy (polled every 0.1 s)."""
        async with asyncio.timeout(timeout_s):
            while True:
                value = await self.evaluate(session, expression)
                if value:
                    return value
                await asyncio.sleep(0.1)

    async def screenshot(self, session: str, clip: dict[str, float] | None = None) -> bytes:
        params: dict[str, Any] = {"format": "png", "captureBeyondViewport": True}
        if clip is not None:
            params["clip"] = {**clip, "scale": 1}
        shot = await self.send("Page.captureScreenshot", params, session)
        return base64.b64decode(shot["data"])


async def _devtools_url(profile: Path, process: asyncio.subprocess.Process) -> str:
    """The browser's websocket URL, from the file Chromium writes once it listens."""
    port_file = profile / "DevToolsActivePort"
    async with asyncio.timeout(START_TIMEOUT_S):
        while not port_file.exists() or len(port_file.read_text().splitlines()) < 2:
            if process.returncode is not None:
                raise RuntimeError(f"chromium exited with status {process.returncode}")
            await asyncio.sleep(0.05)
    port, path = port_file.read_text().splitlines()[:2]
    return f"ws://127.0.0.1:{port}{path}"


@contextlib.asynccontextmanager
async def chromium(executable: str) -> AsyncIterator[Browser]:
    """A headless Chromium for the length of the block, stopped by its own pid after.

    Its profile and its temporary files (``TMPDIR``: Chromium makes a directory of its
    own there, ``org.chromium.Chromium.*``, and leaves it) both live in one scratch
    directory, removed after."""
    scratch = Path(tempfile.mkdtemp(prefix="cityledger-chromium-"))
    profile, tmp = scratch / "profile", scratch / "tmp"
    profile.mkdir()
    tmp.mkdir()
    process = await asyncio.create_subprocess_exec(
        executable, *FLAGS, f"--user-data-dir={profile}", "about:blank",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        env={**os.environ, "TMPDIR": str(tmp)},
    )  # fmt: skip
    try:
        url = await _devtools_url(profile, process)
        async with aiohttp.ClientSession() as http, http.ws_connect(url, max_msg_size=0) as ws:
            browser = Browser(ws)
            try:
                yield browser
            finally:
                browser.reader.cancel()
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                async with asyncio.timeout(5):
                    await process.wait()
            except TimeoutError:
                process.kill()
                await process.wait()
        await _remove_scratch(scratch)


async def _remove_scratch(scratch: Path) -> None:
    """Remove the browser's scratch directory until it stays gone: its helper processes
    may write into the profile for a moment after the browser itself has exited (the
    network service saves its state), which left a directory in /tmp behind about one
    run in three."""
    for _ in range(20):
        shutil.rmtree(scratch, ignore_errors=True)
        await asyncio.sleep(0.1)
        if not scratch.exists():
            return
