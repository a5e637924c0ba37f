"""The bench's client behaves like a real one: what a node refuses "not now" (429, or the
same code on an item of a batch) is sent again after ``Retry-After``, its latency still
counted from its first scheduled time; a final refusal stays recorded."""

from __future__ import annotations

import aiohttp
import msgpack
from aiohttp import web
from aiohttp.test_utils import TestServer

from benchmarks.driver import ACCEPTED, Driver, Step
from benchmarks.workload import Item


def items(n: int) -> list[Item]:
    return [Item(bytes([i]) * 8, bytes([i]) * 32, 0, "shipment.milestone", b"s" * 32)
            for i in range(n)]  # fmt: skip


class Node:
    """Refuses the first ``busy`` requests whole (429), then item 0 of each batch once."""

    def __init__(self, busy: int) -> None:
        self.busy = busy
        self.posts: list[list[bytes]] = []
        self.item_refused: set[bytes] = set()

    async def txs(self, request: web.Request) -> web.Response:
        raws = msgpack.unpackb(await request.read())["txs"]
        self.posts.append(raws)
        if len(self.posts) <= self.busy:
            body = msgpack.packb({"error": {"code": "overloaded", "message": "busy"}})
            return web.Response(status=429, body=body, headers={"Retry-After": "0.05"})
        results = []
        for raw in raws:
            if raw not in self.item_refused:
                self.item_refused.add(raw)
                results.append({"status": "rejected", "error": {"code": "overloaded"}})
            else:
                results.append({"status": "pending"})
        headers = {"Retry-After": "0.05"}
        return web.Response(body=msgpack.packb({"results": results}), headers=headers)


async def drive(node: Node, work: list[Item]) -> Driver:
    app = web.Application()
    app.router.add_post("/v1/txs", node.txs)
    async with TestServer(app) as server, aiohttp.ClientSession() as session:
        driver = Driver(session, [str(server.make_url("")).rstrip("/")], work, tick_s=0.05)
        await driver.run([Step(rate=40.0)], committed=lambda: 0)
    return driver


async def test_refused_transactions_are_sent_again_until_taken() -> None:
    node = Node(busy=2)
    work = items(6)
    log = (await drive(node, work)).log
    assert log.codes == [ACCEPTED] * 6
    assert log.refusals >= 6 + 2 and log.retried == log.refusals  # every "not now" resent
    sent_again = [raw for post in node.posts for raw in post]
    assert all(sent_again.count(item.raw) >= 2 for item in work)


async def test_a_final_refusal_is_not_retried() -> None:
    class Refuses(Node):
        async def txs(self, request: web.Request) -> web.Response:
            raws = msgpack.unpackb(await request.read())["txs"]
            self.posts.append(raws)
            results = [{"status": "rejected", "error": {"code": "bad_nonce"}} for _ in raws]
            return web.Response(body=msgpack.packb({"results": results}))

    node = Refuses(busy=0)
    log = (await drive(node, items(3))).log
    assert log.codes == ["bad_nonce"] * 3 and log.refusals == 0 == log.retried
    assert sum(len(p) for p in node.posts) == 3
