"""The demo loader is a polite client: a node over its latency budget answers 429 (or
``overloaded`` per item) and the loader sends those transactions again after
``Retry-After``, in order; any other refusal stops the load with the node's reason."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest

from devnet import loader
from devnet.layout import DevnetError, NodeEntry
from ledger.crypto import PrivateKey
from ledger.tx import Transaction
from tests.unit.http_kit import Answer, scripted_server

KEY = PrivateKey.from_label("loader-retry")


def txs(n: int) -> list[Transaction]:
    return [Transaction.create(KEY, "c", "identity.register_org", i, {"i": i}) for i in range(n)]


WAIT_100_MS = {"Retry-After": "1", "Retry-After-Ms": "100"}  # as a node says 0.1 s


def result(code: str) -> dict[str, Any]:
    """An item's answer: pending for "", else refused with ``code``."""
    return {"status": "pending"} if code == "" else {"status": "rejected", "error": {"code": code}}


class FakeNode:
    """Answers each POST from ``script``: "429", or a list of item codes ("" = pending)."""

    def __init__(self, script: list[Any]) -> None:
        self.script = script
        self.bodies: list[list[str]] = []


@pytest.fixture
def serve() -> Iterator[Any]:
    with ExitStack() as servers:

        def start(node: FakeNode) -> NodeEntry:
            def answer(raw: bytes) -> Answer:
                node.bodies.append(json.loads(raw)["txs"])
                step = node.script.pop(0)
                if step == "429":
                    status, doc = 429, {"error": {"code": "overloaded"}}
                else:
                    status, doc = 200, {"results": [result(code) for code in step]}
                return status, json.dumps(doc).encode(), WAIT_100_MS

            address = servers.enter_context(scripted_server(answer))
            return NodeEntry("n", "/nonexistent", "127.0.0.1:1", address)

        yield start


def test_not_now_is_sent_again_in_order(serve: Any) -> None:
    batch = txs(4)
    node = FakeNode(["429", ["", "", "overloaded", "overloaded"], [""] * 2])
    loader._submit(serve(node), batch)
    hexes = [tx.encode().hex() for tx in batch]
    assert node.bodies == [hexes, hexes, hexes[2:]] and node.script == []


def test_another_refusal_stops_the_load(serve: Any) -> None:
    node = FakeNode([["", "bad_nonce"]])
    with pytest.raises(DevnetError, match="bad_nonce"):
        loader._submit(serve(node), txs(2))


def test_every_not_now_code_of_the_api_is_sent_again(serve: Any) -> None:
    """The loader reads the codes the API calls "not now" from one place: a sender's
    later transaction held behind an ``org_quota`` refusal of its earlier one comes
    back with that code (docs/api.md) and must be sent again, not stop the load."""
    batch = txs(3)
    node = FakeNode([["", "org_quota", "org_quota"], ["rate_limited", "sender_backlog"], [""] * 2])
    loader._submit(serve(node), batch)
    hexes = [tx.encode().hex() for tx in batch]
    assert node.bodies == [hexes, hexes[1:], hexes[1:]] and node.script == []
