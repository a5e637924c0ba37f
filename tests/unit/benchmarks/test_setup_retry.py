"""The bench's setup phase is a client like its timed driver: what a node refuses "not
now" (429 whole, or ``overloaded`` on items) is sent again after ``Retry-After``, in
order; anything else refused stops the bench with the node's reason."""

from __future__ import annotations

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from benchmarks.cluster import BenchError
from benchmarks.run import _submit_all
from ledger.crypto import PrivateKey
from ledger.tx import Transaction
from tests.unit.benchmarks.test_driver_retry import Node, Refuses


def txs(n: int) -> list[Transaction]:
    key = PrivateKey.from_label("setup-sender")
    return [Transaction.create(key, "bench", "identity.noop", nonce, {}) for nonce in range(n)]


async def submit(node: Node, batch: list[Transaction]) -> None:
    app = web.Application()
    app.router.add_post("/v1/txs", node.txs)
    async with TestServer(app) as server, aiohttp.ClientSession() as session:
        await _submit_all(session, str(server.make_url("")).rstrip("/"), batch)


async def test_setup_sends_again_what_was_refused_not_now_in_order() -> None:
    node = Node(busy=2)  # two 429s, then each item refused once "overloaded"
    batch = txs(4)
    await submit(node, batch)
    raws = [tx.encode() for tx in batch]
    assert node.posts[:2] == [raws, raws]  # the whole batch again after each 429
    assert all(post == sorted(post, key=raws.index) for post in node.posts)  # in order
    assert {raw for post in node.posts[2:] for raw in post} == set(raws)
    assert len(node.posts) >= 4  # the items refused once came back


async def test_setup_stops_on_a_refusal_that_is_final() -> None:
    node = Refuses(busy=0)
    with pytest.raises(BenchError, match="bad_nonce"):
        await submit(node, txs(3))
    assert len(node.posts) == 1  # not retried
