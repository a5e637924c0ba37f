"""A submission that finds no room in the latency budget waits in the node's waiting
room for a commit, and is taken then; unread while it waits, answered 429 with its turn
when the wait is over, and at once when the room is full."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import msgpack
import pytest
from aiohttp.test_utils import TestClient, TestServer

from node.api.app import make_app
from node.config import APIConfig
from node.latency_budget import LatencyBudget
from node.waiting_room import WaitingRoom
from tests.unit.node.api.conftest import Client, Clock, Scenario, TestNode, milestone

HEADERS = {"Content-Type": "application/msgpack", "Accept": "application/msgpack"}


@pytest.fixture
def outcomes() -> list[str]:
    """Each waiting request's outcome, as the room reports it (to /metrics in a node)."""
    return []


@pytest.fixture
def room(node: TestNode, outcomes: list[str]) -> WaitingRoom:
    node.mempool.budget = LatencyBudget(2.0, floor_txs=1, start_txs=1)  # room for one ready tx
    return WaitingRoom(
        lambda: node.mempool.client_room(time.monotonic()),
        max_wait_s=5.0,
        per_client=1,
        observe=outcomes.append,
    )


@pytest.fixture
async def client(
    node: TestNode, scenario: Scenario, clock: Clock, room: WaitingRoom
) -> AsyncIterator[Client]:
    app = make_app(node, APIConfig(), clock=clock, waiting_room=room)
    async with TestClient(TestServer(app)) as c:
        yield c


async def submit(client: Client, body: bytes) -> tuple[int, dict[str, object], dict[str, str]]:
    response = await client.post("/v1/txs", data=body, headers=HEADERS)
    return response.status, msgpack.unpackb(await response.read()), dict(response.headers)


async def until(condition: object, seconds: float = 2.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.005)


async def test_a_submission_over_the_budget_waits_for_the_commit_and_is_taken(
    client: Client,
    node: TestNode,
    room: WaitingRoom,
    parsed_bodies: list[int],
    outcomes: list[str],
) -> None:
    first, second = milestone(node, "NLRTM"), milestone(node, "NLAMS")
    assert (await submit(client, msgpack.packb({"tx": first.encode()})))[0] == 202
    parsed = parsed_bodies
    parsed.clear()  # the first one's
    waiting = asyncio.ensure_future(submit(client, msgpack.packb({"tx": second.encode()})))
    await until(lambda: len(room) == 1)
    assert parsed == [] and not waiting.done()  # unread while it waits
    node.commit([first])  # room again
    room.opened()
    status, answer, _ = await waiting
    assert (status, answer["status"]) == (202, "pending")
    assert second.hash in node.mempool and outcomes == ["let_in"]


async def test_when_the_wait_is_over_it_is_told_its_turn(
    client: Client, node: TestNode, room: WaitingRoom, outcomes: list[str]
) -> None:
    room.max_wait_s = 0.05
    first, second = milestone(node, "NLRTM"), milestone(node, "NLAMS")
    assert (await submit(client, msgpack.packb({"tx": first.encode()})))[0] == 202
    status, answer, headers = await submit(client, msgpack.packb({"tx": second.encode()}))
    assert (status, answer["error"]["code"]) == (429, "overloaded")  # type: ignore[index]
    assert float(headers["Retry-After-Ms"]) > 0
    assert outcomes == ["timed_out"] and second.hash not in node.mempool


async def test_a_client_whose_places_are_taken_is_answered_at_once(
    client: Client, node: TestNode, room: WaitingRoom, outcomes: list[str]
) -> None:
    first, second, third = (milestone(node, p) for p in ("NLRTM", "NLAMS", "BEANR"))
    assert (await submit(client, msgpack.packb({"tx": first.encode()})))[0] == 202
    waiting = asyncio.ensure_future(submit(client, msgpack.packb({"tx": second.encode()})))
    await until(lambda: len(room) == 1)
    status, answer, _ = await submit(client, msgpack.packb({"tx": third.encode()}))
    assert (status, answer["error"]["code"]) == (429, "overloaded")  # type: ignore[index]
    assert not waiting.done() and outcomes == ["no_place"]  # none timed out
    waiting.cancel()
