"""The API server's own hygiene: a body announced over the limit is refused on its
header (F9), a malformed request line costs one DEBUG line, not an ERROR with a
traceback (F10), and a failing store is a 503 that serves nothing from it (F3)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from ledger.errors import StoreDamagedError
from node.api.app import make_app
from node.api.parser_log import SERVER_LOGGER, ParserErrorFilter
from node.config import APIConfig
from tests.unit.node.api.conftest import Clock, TestNode, assert_error

LIMIT = 1024
ANSWER_WITHIN_S = 2.0


@pytest.fixture
async def served(node: TestNode, clock: Clock) -> AsyncIterator[tuple[str, int]]:
    """The API on a real loopback socket (host, port)."""
    runner = web.AppRunner(make_app(node, APIConfig(max_body_bytes=LIMIT), clock=clock))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server = site._server
    assert isinstance(server, asyncio.base_events.Server)
    host, port = server.sockets[0].getsockname()[:2]
    try:
        yield host, port
    finally:
        await runner.cleanup()


async def _exchange(address: tuple[str, int], raw: bytes) -> bytes:
    """Send ``raw`` and read until the server closes or has answered a whole response."""
    reader, writer = await asyncio.open_connection(*address)
    try:
        writer.write(raw)
        await writer.drain()
        return await asyncio.wait_for(reader.read(65536), ANSWER_WITHIN_S)
    finally:
        writer.close()


def _post_headers(length: int) -> bytes:
    return (
        f"POST /v1/txs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()


async def test_a_huge_content_length_is_refused_before_any_body(
    served: tuple[str, int],
) -> None:
    """Headers only, no body byte sent: the answer comes without waiting for the body (F9)."""
    answer = await _exchange(served, _post_headers(1_000_000_000_000))
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert b'"too_large"' in answer and b"Connection: close" in answer


async def test_a_length_just_over_the_limit_is_refused_on_the_header(
    served: tuple[str, int],
) -> None:
    answer = await _exchange(served, _post_headers(LIMIT + 1) + b"{")
    assert answer.startswith(b"HTTP/1.1 413 ")


async def test_a_length_at_the_limit_reaches_the_handler(served: tuple[str, int]) -> None:
    body = b"{" + b" " * (LIMIT - 2) + b"}"
    answer = await _exchange(served, _post_headers(LIMIT) + body)
    assert answer.startswith(b"HTTP/1.1 400 ")  # read and judged: no "tx" in it


async def test_the_test_client_gets_413_while_its_body_is_still_coming(
    node: TestNode, clock: Clock
) -> None:
    never_finished = asyncio.Event()

    async def body() -> AsyncIterator[bytes]:
        yield b'{"tx": "'
        await never_finished.wait()

    app = make_app(node, APIConfig(max_body_bytes=LIMIT), clock=clock)
    async with TestClient(TestServer(app)) as client:
        response = await asyncio.wait_for(
            client.post(
                "/v1/txs",
                data=body(),
                headers={"Content-Length": str(10**12), "Content-Type": "application/json"},
            ),
            ANSWER_WITHIN_S,
        )
        await assert_error(response, 413, "too_large")
        response.close()


async def test_a_too_long_request_line_is_one_debug_line(
    served: tuple[str, int], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    answer = await _exchange(served, b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert answer.split(b"\r\n")[0].endswith(b" 400 Bad Request")
    await asyncio.sleep(0.05)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text
    assert not [r for r in caplog.records if r.exc_info], caplog.text
    quiet = [r for r in caplog.records if "malformed request" in r.getMessage()]
    assert len(quiet) == 1 and quiet[0].levelno == logging.DEBUG
    assert "LineTooLong" in quiet[0].getMessage() and "\n" not in quiet[0].getMessage()


async def test_a_bad_header_line_is_one_debug_line(
    served: tuple[str, int], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    answer = await _exchange(served, b"GET /healthz HTTP/1.1\r\nno colon here\r\n\r\n")
    assert answer.split(b"\r\n")[0].endswith(b" 400 Bad Request")
    await asyncio.sleep(0.05)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text
    assert any("malformed request" in r.getMessage() for r in caplog.records)


def test_a_real_server_error_stays_an_error_with_its_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    logger = logging.getLogger(SERVER_LOGGER)
    logger.addFilter(quiet := ParserErrorFilter())
    try:
        try:
            raise RuntimeError("a bug")
        except RuntimeError as exc:
            logger.error("Error handling request from %s", "127.0.0.1", exc_info=exc)
    finally:
        logger.removeFilter(quiet)
    (record,) = [r for r in caplog.records if r.name == SERVER_LOGGER]
    assert record.levelno == logging.ERROR and record.exc_info is not None


async def test_a_damaged_store_is_503_and_one_error_line(
    node: TestNode, clock: Clock, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    def damaged() -> None:
        raise StoreDamagedError("the database at /x is damaged: Corruption: checksum mismatch")

    monkeypatch.setattr(node, "status", damaged)
    async with TestClient(TestServer(make_app(node, APIConfig(), clock=clock))) as client:
        response = await client.get("/v1/status")
        await assert_error(response, 503, "store_damaged")
    (record,) = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert "checksum mismatch" in record.getMessage() and record.exc_info is None


async def test_a_damaged_store_stops_the_node_that_found_it(
    node: TestNode, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """F4 outside catch-up: the API's read is how the node learns its store is damaged;
    it must not go on running (and voting) on it."""

    def damaged() -> None:
        raise StoreDamagedError("the database at /x is damaged: Corruption: checksum mismatch")

    told: list[str] = []
    monkeypatch.setattr(node, "status", damaged)
    app = make_app(node, APIConfig(), clock=clock, on_store_failure=told.append)
    async with TestClient(TestServer(app)) as client:
        assert (await client.get("/v1/status")).status == 503
    assert len(told) >= 1 and "checksum mismatch" in told[0] and "/v1/status" in told[0]
