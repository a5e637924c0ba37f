"""The CLI comes back when a node says "not now": after the wait it asks for
(``Retry-After-Ms`` first), only what was refused so, and for a bounded time."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import msgpack
import pytest

from cli.client import NodeClient, NodeError
from ledger.crypto import PrivateKey
from ledger.encoding import encode
from ledger.tx import Transaction
from tests.unit.http_kit import Answer, scripted_server


def txs(n: int) -> list[Transaction]:
    key = PrivateKey.from_label("cli-retry")
    return [Transaction.create(key, "test", "shipment.milestone", i, {"n": i}) for i in range(n)]


class FakeNode:
    """Answers each POST with the next of ``script``: ``(status, doc, headers)``."""

    def __init__(self, script: list[tuple[int, Any, dict[str, str]]]) -> None:
        self.script = script
        self.posted: list[list[bytes]] = []


@pytest.fixture
def serve() -> Iterator[Any]:
    with ExitStack() as servers:

        def start(node: FakeNode) -> str:
            def answer(raw: bytes) -> Answer:
                node.posted.append(msgpack.unpackb(raw)["txs"])
                status, doc, headers = node.script.pop(0)
                return status, encode(doc), headers | {"Content-Type": "application/msgpack"}

            return "http://" + servers.enter_context(scripted_server(answer))

        yield start


BUSY = (
    429,
    {"error": {"code": "overloaded", "message": "retry in 0.25 s"}},
    {"Retry-After": "1", "Retry-After-Ms": "250"},
)


def pending(tx: Transaction) -> dict[str, Any]:
    return {"status": "pending", "hash": tx.hash}


def refused(code: str) -> dict[str, Any]:
    return {"status": "rejected", "error": {"code": code, "message": code}}


def client(url: str) -> tuple[NodeClient, list[float]]:
    """A client whose waits are recorded and pass on its own clock at once."""
    c = NodeClient(url)
    slept: list[float] = []
    now = [1000.0]

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    c.sleep, c.monotonic = sleep, lambda: now[0]
    return c, slept


def test_a_busy_node_is_asked_again_after_the_wait_it_gave(serve: Any) -> None:
    batch = txs(2)
    node = FakeNode([BUSY, BUSY, (200, {"results": [pending(t) for t in batch]}, {})])
    c, slept = client(serve(node))
    told: list[tuple[str, float]] = []
    c.on_wait = lambda code, seconds: told.append((code, seconds))
    results = c.submit(batch)
    assert [r["status"] for r in results] == ["pending", "pending"]
    assert slept == [0.25, 0.25]  # the milliseconds, not the whole second
    assert told == [("overloaded", 0.25)] * 2  # the user is told why the command waits
    assert node.posted == [[t.encode() for t in batch]] * 3


def test_only_the_items_refused_not_now_are_sent_again_in_order(serve: Any) -> None:
    batch = txs(4)
    first = [pending(batch[0]), refused("bad_nonce"), refused("overloaded"), refused("overloaded")]
    node = FakeNode(
        [
            (200, {"results": first}, {"Retry-After": "1", "Retry-After-Ms": "120"}),
            (200, {"results": [pending(batch[2]), pending(batch[3])]}, {}),
        ]
    )
    c, slept = client(serve(node))
    results = c.submit(batch)
    assert [r["status"] for r in results] == ["pending", "rejected", "pending", "pending"]
    assert results[1]["error"]["code"] == "bad_nonce"  # refused for good: not sent again
    assert node.posted[1] == [batch[2].encode(), batch[3].encode()]
    assert slept == [0.12]


def test_patience_runs_out_and_the_refusal_stands(serve: Any) -> None:
    node = FakeNode([BUSY] * 5)
    c, slept = client(serve(node))
    with pytest.raises(NodeError, match="overloaded"):
        c.submit(txs(1), patience_s=0.6)  # two waits of 0.25 s fit, a third does not
    assert slept == [0.25, 0.25] and len(node.posted) == 3


def test_a_refusal_for_good_is_not_retried(serve: Any) -> None:
    node = FakeNode([(403, {"error": {"code": "forbidden", "message": "no"}}, {})])
    c, slept = client(serve(node))
    with pytest.raises(NodeError, match="forbidden"):
        c.submit(txs(1))
    assert slept == [] and len(node.posted) == 1
