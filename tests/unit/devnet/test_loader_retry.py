"""The demo loader is a polite client: a node over its latency budget answers 429 (or
``overloaded`` per item) and the loader sends those transactions again after
``Retry-After``, in order; any other refusal stops the load with the node's reason."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from devnet import loader
from devnet.layout import DevnetError, NodeEntry
from ledger.crypto import PrivateKey
from ledger.tx import Transaction

KEY = PrivateKey.from_label("loader-retry")


def txs(n: int) -> list[Transaction]:
    return [Transaction.create(KEY, "c", "identity.register_org", i, {"i": i}) for i in range(n)]


class FakeNode:
    """Answers each POST from ``script``: "429", or a list of item codes ("" = pending)."""

    def __init__(self, script: list[Any]) -> None:
        self.script = script
        self.bodies: list[list[str]] = []


@pytest.fixture
def serve() -> Iterator[Any]:
    servers: list[ThreadingHTTPServer] = []

    def start(node: FakeNode) -> NodeEntry:
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                node.bodies.append(body["txs"])
                step = node.script.pop(0)
                if step == "429":
                    self._answer(429, {"error": {"code": "overloaded"}})
                    return
                results = [{"status": "pending"} if c == "" else
                           {"status": "rejected", "error": {"code": c}} for c in step]  # fmt: skip
                self._answer(200, {"results": results})

            def _answer(self, status: int, doc: Any) -> None:
                data = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Retry-After", "1")  # as a node says 0.1 s
                self.send_header("Retry-After-Ms", "100")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        servers.append(server)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return NodeEntry("n", "/nonexistent", "127.0.0.1:1", f"127.0.0.1:{server.server_port}")

    yield start
    for s in servers:
        s.shutdown()
        s.server_close()


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
