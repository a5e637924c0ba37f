"""The bench's client behaves like a real one: what a node refuses "not now" (429, or the
same code on an item of a batch) is sent again after ``Retry-After``, its latency still
counted from its first scheduled time; a final refusal stays recorded."""

from __future__ import annotations

import asyncio
import contextlib

import aiohttp
import msgpack
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

import benchmarks.driver as driver_module
from benchmarks.driver import ACCEPTED, HELD_BEHIND_REFUSED, Driver, Step
from benchmarks.workload import Item

RETRY_50_MS = {"Retry-After": "1", "Retry-After-Ms": "50"}  # what a node says for 50 ms


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
            return web.Response(status=429, body=body, headers=RETRY_50_MS)
        results = []
        for raw in raws:
            if raw not in self.item_refused:
                self.item_refused.add(raw)
                results.append({"status": "rejected", "error": {"code": "overloaded"}})
            else:
                results.append({"status": "pending"})
        headers = RETRY_50_MS
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


class Refuses(Node):
    """Refuses every transaction for good (``bad_nonce``): nothing to send again."""

    async def txs(self, request: web.Request) -> web.Response:
        raws = msgpack.unpackb(await request.read())["txs"]
        self.posts.append(raws)
        results = [{"status": "rejected", "error": {"code": "bad_nonce"}} for _ in raws]
        return web.Response(body=msgpack.packb({"results": results}))


async def test_a_final_refusal_is_not_retried() -> None:
    node = Refuses(busy=0)
    log = (await drive(node, items(3))).log
    assert log.codes == ["bad_nonce"] * 3 and log.refusals == 0 == log.retried
    assert sum(len(p) for p in node.posts) == 3


class RefusesFirst(Node):
    """Refuses one transaction "not now" ``times`` times (-1: forever), and the rest of
    its batch with it, as a node's latency budget cuts a batch; records in what order
    the others arrive."""

    def __init__(self, refused: bytes, times: int) -> None:
        super().__init__(busy=0)
        self.refused, self.times = refused, times
        self.taken: list[bytes] = []

    async def txs(self, request: web.Request) -> web.Response:
        raws = msgpack.unpackb(await request.read())["txs"]
        self.posts.append(raws)
        results: list[dict[str, object]] = []
        cut = False
        for raw in raws:
            if cut or (raw == self.refused and self.times != 0):
                if not cut and self.times > 0:
                    self.times -= 1
                cut = True
                results.append({"status": "rejected", "error": {"code": "overloaded"}})
            else:
                self.taken.append(raw)
                results.append({"status": "pending"})
        headers = RETRY_50_MS
        return web.Response(body=msgpack.packb({"results": results}), headers=headers)


async def test_a_senders_later_transactions_wait_for_its_refused_one() -> None:
    """A real client keeps one sender's transactions in nonce order: what it schedules
    while an earlier one waits to be sent again goes after it, not behind a gap."""
    work = items(8)
    node = RefusesFirst(work[0].raw, times=3)
    log = (await drive(node, work)).log
    assert log.codes == [ACCEPTED] * 8
    assert node.taken == [item.raw for item in work]  # in order, the refused one first
    assert all(post[0] == work[0].raw for post in node.posts[:4])  # it leads every retry
    assert log.retried == log.refusals >= 3


async def test_what_a_sender_held_is_never_sent_when_its_retries_run_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(driver_module, "MAX_RETRIES", 20)  # run out sooner
    work = items(6)
    node = RefusesFirst(work[0].raw, times=-1)  # never taken
    log = (await drive(node, work)).log
    assert node.taken == []
    assert all(post[0] == work[0].raw for post in node.posts)  # nothing went ahead of it
    assert set(log.codes) <= {"overloaded", HELD_BEHIND_REFUSED}
    assert log.codes[0] == "overloaded" and log.refusals == log.retried + 6 - log.codes.count(
        HELD_BEHIND_REFUSED
    )


async def test_acceptance_is_timed_from_the_answer_that_took_it() -> None:
    """The bench reports latency from the first scheduled send (what a client waits) and
    from the accepting answer (what the node's admission promises): a transaction refused
    three times was accepted at least three Retry-After waits after it was scheduled."""
    work = items(4)
    node = RefusesFirst(work[0].raw, times=3)
    log = (await drive(node, work)).log
    assert log.codes == [ACCEPTED] * 4
    assert all(log.accepted_at[i] >= log.sched[i] > 0 for i in range(4))
    assert log.accepted_at[0] - log.sched[0] >= 3 * 0.05


async def test_a_refused_transaction_has_no_acceptance_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(driver_module, "MAX_RETRIES", 20)  # run out sooner
    work = items(3)
    node = RefusesFirst(work[0].raw, times=-1)
    log = (await drive(node, work)).log
    assert log.codes[0] == "overloaded" and log.accepted_at[0] == 0.0


async def test_no_request_carries_more_than_a_node_takes_unsigned(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A retry carries what its senders held meanwhile; it goes in requests of at most
    ``BATCH_CAP``, and a sender refused in one of them sends nothing more in the next."""
    monkeypatch.setattr(driver_module, "BATCH_CAP", 3)
    work = [
        Item(bytes([i]) * 8, bytes([i]) * 32, 0, "shipment.milestone", b"s" * 32) for i in range(7)
    ]  # fmt: skip  (one sender: its order is the items' order)
    node = RefusesFirst(work[0].raw, times=2)
    async with TestServer(_app(node)) as server, aiohttp.ClientSession() as session:
        driver = Driver(session, [str(server.make_url("")).rstrip("/")], work, tick_s=0.05)
        wait_s, sent = await driver._post_in_batches(0, list(range(7)), 0.0)
    assert all(len(post) <= 3 for post in node.posts)
    assert [len(post) for post in node.posts] == [3]  # item 0 refused: its sender stops
    assert sent == [0, 1, 2] and driver._held[0, b"s" * 32] == [3, 4, 5, 6]
    assert wait_s == 0.05
    takes_all = RefusesFirst(b"", times=0)
    async with TestServer(_app(takes_all)) as server, aiohttp.ClientSession() as session:
        driver = Driver(session, [str(server.make_url("")).rstrip("/")], work, tick_s=0.05)
        _, sent = await driver._post_in_batches(0, list(range(7)), 0.0)
    assert [len(post) for post in takes_all.posts] == [3, 3, 1] and sent == list(range(7))
    assert takes_all.taken == [item.raw for item in work]  # in order


class Takes(RefusesFirst):
    """Takes everything; ``all_taken`` is set once ``count`` transactions are in."""

    def __init__(self, count: int) -> None:
        super().__init__(b"", times=0)
        self.count = count
        self.all_taken = asyncio.Event()

    async def txs(self, request: web.Request) -> web.Response:
        response = await super().txs(request)
        if len(self.taken) >= self.count:
            self.all_taken.set()
        return response


class AnswersLast(Node):
    """Answers every transaction ``duplicate``, once ``other`` has taken all of its own
    (or after ``patience_s``): ``answered_after_other`` says which."""

    def __init__(self, other: Takes, patience_s: float = 2.0) -> None:
        super().__init__(busy=0)
        self.other, self.patience_s = other, patience_s
        self.answered_after_other = False

    async def txs(self, request: web.Request) -> web.Response:
        raws = msgpack.unpackb(await request.read())["txs"]
        self.posts.append(raws)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.other.all_taken.wait(), self.patience_s)
        self.answered_after_other = self.other.all_taken.is_set()
        results = [{"status": "rejected", "error": {"code": "duplicate"}} for _ in raws]
        return web.Response(body=msgpack.packb({"results": results}))


async def test_a_senders_transactions_for_one_node_never_go_to_another() -> None:
    """The workload replays a sender's setup transaction to another node than its own.
    While that node took its time to answer, the sender's own transactions were held
    behind it, and its answer sent them to the replay's node: admitted there behind a
    gap and gossiped on, they made the sender's own node refuse its later ones
    ``too_many_gapped`` (stranded, in about one bench run in six). Here the replay's
    node answers only once the sender's own node has all four (or gives up waiting)."""
    sender = b"s" * 32
    replay = Item(b"r" * 8, b"r" * 32, 1, "replay", sender)
    own = [Item(bytes([i]) * 8, bytes([i]) * 32, 0, "shipment.milestone", sender) for i in range(4)]
    home = Takes(len(own))
    other = AnswersLast(home)
    async with (
        TestServer(_app(home)) as home_server,
        TestServer(_app(other)) as other_server,
        aiohttp.ClientSession() as session,
    ):
        urls = [str(s.make_url("")).rstrip("/") for s in (home_server, other_server)]
        driver = Driver(session, urls, [replay, *own], tick_s=0.05)
        await driver.run([Step(rate=20.0)], committed=lambda: 0)  # one a tick
    assert other.posts == [[replay.raw]]
    assert home.taken == [item.raw for item in own]  # in order
    assert other.answered_after_other  # none of them waited for the replay's answer
    assert driver.log.codes == ["duplicate"] + [ACCEPTED] * 4


def _app(node: Node) -> web.Application:
    app = web.Application()
    app.router.add_post("/v1/txs", node.txs)
    return app


def test_items_bound_to_a_node_without_an_address_are_refused_up_front() -> None:
    """With a validator stopped, its clients' items had no address: their posts failed
    in tasks nobody awaited, and were never sent (bench catchup offered a quarter less
    than it said). Now the driver refuses them, and a node map sends them elsewhere."""
    items = [
        Item(b"raw", bytes([n]) * 32, n, "identity.register_member", b"s" * 32) for n in range(4)
    ]
    with pytest.raises(ValueError, match=r"nodes \[3\]: only 3 given"):
        Driver(None, ["a", "b", "c"], items)  # type: ignore[arg-type]
    Driver(None, ["a", "b", "c"], items, node_map=lambda node: node % 3)  # type: ignore[arg-type]
