"""``shipment watch``: events printed as they commit, verified, across a dropped connection."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from click.testing import Result

from cli.block_feed import QUEUE_SIZE, BlockFeed
from cli.client import NodeClient
from node.api.context import API_STATE
from tests.unit.cli.kit import SHIPMENT, CliNode, ServerThread, declare_payload, message, run


class Background:
    """``cityledger ARGS`` in a thread (the watch blocks until --count events)."""

    def __init__(self, args: list[str]) -> None:
        self.result: Result | None = None
        self.thread = threading.Thread(target=self._run, args=(args,), daemon=True)
        self.thread.start()

    def _run(self, args: list[str]) -> None:
        self.result = run(args)

    def wait(self, timeout: float = 30) -> Result:
        self.thread.join(timeout)
        assert self.result is not None, "the watch did not finish"
        return self.result


def _watch(server: ServerThread, genesis: str, key: str, *args: str) -> Background:
    watch = Background(["shipment", "watch", *args, "--node", server.url, "--genesis", genesis,
                        "--key", key, "--json"])  # fmt: skip
    time.sleep(1.5)  # subscribed, and the baseline read
    return watch


def _commit(server: ServerThread, node: CliNode, label: str, kind: str, payload: Any) -> None:
    server.call(lambda: node.commit([node.tx(label, kind, payload)]))


def _entries(result: Result) -> list[dict[str, Any]]:
    assert result.exit_code == 0, message(result)
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def test_watch_prints_custody_and_customs_events_verified(
    server: ServerThread, node: CliNode, genesis_file: str, keys: dict[str, str]
) -> None:
    watch = _watch(server, genesis_file, keys["officer"], SHIPMENT, "--count", "2")
    milestone = {"shipment_id": SHIPMENT, "event": "departed", "place": "CNSHA"}
    _commit(server, node, "oceanic", "shipment.milestone", milestone)
    offer = {"shipment_id": SHIPMENT, "to": "globex"}
    _commit(server, node, "oceanic", "shipment.offer_custody", offer)
    hold = {"shipment_id": SHIPMENT, "decision": "hold", "reason": "x-ray"}
    _commit(server, node, "officer", "shipment.customs_decision", hold)
    lines = _entries(watch.wait())
    assert [e["entry"]["event"] for e in lines] == ["custody_offered", "customs_decision"]
    assert lines[1]["entry"]["details"]["decision"] == "hold"
    assert all(e["verified_at"] >= e["entry"]["height"] for e in lines)


def test_watch_a_search_sees_a_new_shipment(
    server: ServerThread, node: CliNode, genesis_file: str, keys: dict[str, str]
) -> None:
    watch = _watch(server, genesis_file, keys["officer"], "--party", "acme", "--all",
                   "--count", "1")  # fmt: skip
    _commit(server, node, "acme", "shipment.declare", declare_payload("S-0002"))
    lines = _entries(watch.wait())
    assert lines[0]["shipment"] == "S-0002" and lines[0]["entry"]["event"] == "declared"


def test_watch_resumes_after_a_dropped_connection(
    server: ServerThread, node: CliNode, genesis_file: str, keys: dict[str, str]
) -> None:
    watch = _watch(server, genesis_file, keys["officer"], SHIPMENT, "--count", "2")

    async def drop_all() -> None:
        for ws in list(server.app[API_STATE].sockets):
            await ws.close()

    server.call_async(drop_all())
    offer = {"shipment_id": SHIPMENT, "to": "globex"}
    _commit(server, node, "oceanic", "shipment.offer_custody", offer)  # while away
    time.sleep(1.0)
    accept = {"shipment_id": SHIPMENT}
    _commit(server, node, "globex", "shipment.accept_custody", accept)
    lines = _entries(watch.wait())
    events = [e["entry"]["event"] for e in lines]
    assert events == ["custody_offered", "custody_transferred"], events
    assert len({e["entry"]["seq"] for e in lines}) == 2  # nothing twice


def test_watch_refuses_bad_input(
    server: ServerThread, genesis_file: str, keys: dict[str, str]
) -> None:
    base = ["shipment", "watch", "--node", server.url, "--genesis", genesis_file]
    both = run([*base, "--key", keys["officer"], SHIPMENT, "--party", "acme"])
    assert both.exit_code == 1 and "not both" in message(both)
    nokey = run([*base, SHIPMENT])
    assert nokey.exit_code == 1 and "--key" in message(nokey)
    missing = run([*base, "--key", keys["officer"], "S-9999"])
    assert missing.exit_code == 1 and "no shipment S-9999 exists" in message(missing)


def test_feed_queue_is_bounded_and_keeps_the_latest(server: ServerThread) -> None:
    feed = BlockFeed(NodeClient(server.url))
    for height in range(1, 3 * QUEUE_SIZE):
        feed._put(height)
    assert feed.heights.qsize() == QUEUE_SIZE
    drained = [feed.heights.get_nowait() for _ in range(QUEUE_SIZE)]
    assert drained[-1] == 3 * QUEUE_SIZE - 1
