"""Real node processes on loopback for integration tests; always stopped by pid."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from click.testing import Result

from devnet import layout, processes
from devnet.layout import Network, NodeEntry
from ledger.tx import Transaction
from node.config import Home

# The tests wait for heights without sending transactions: an idle network commits a
# heartbeat block this often (the production default is a minute: docs/operations.md).
TEST_EMPTY_BLOCK_INTERVAL_MS = 500


@contextmanager
def running_network(
    home: str,
    validators: int = 4,
    *,
    empty_block_interval_ms: int = TEST_EMPTY_BLOCK_INTERVAL_MS,
    settings: dict[str, Any] | None = None,
    node_settings: dict[int, dict[str, Any]] | None = None,
    node_env: dict[int, dict[str, str]] | None = None,
) -> Iterator[Network]:
    """``settings``: ``{"section.key": value}`` written into every node's config.toml;
    ``node_settings``: more of them for the node of that index only; ``node_env``:
    environment variables for the node of that index."""
    network = layout.generate(
        home,
        validators,
        base_port=processes.free_base_port(),
        genesis_time_ms=int(time.time() * 1000),
        empty_block_interval_ms=empty_block_interval_ms,
    )
    for index, entry in enumerate(network.nodes):
        configure(entry, {**(settings or {}), **(node_settings or {}).get(index, {})})
    try:
        for index, entry in enumerate(network.nodes):
            processes.start_node(entry, extra_env=(node_env or {}).get(index))
        network.save()
        if not processes.wait_for_height(network, 1, 60):
            raise AssertionError("network did not commit block 1 within 60 s:\n" + logs(network))
        yield network
    finally:
        processes.stop_all(network)


def configure(entry: NodeEntry, settings: dict[str, Any]) -> None:
    """Set ``{"section.key": value}`` in the node's config.toml."""
    home = Home(entry.home)
    config = home.load_config()
    for name, value in settings.items():
        section, _, key = name.partition(".")
        setattr(getattr(config, section), key, value)
    with open(home.config, "w", encoding="utf-8") as f:
        f.write(config.to_toml())


def logs(network: Network, lines: int = 30) -> str:
    return processes.log_tails(network.nodes, lines)


def get(entry: NodeEntry, path: str) -> Any:
    return processes.get_json(entry.url + path, timeout_s=5)


def submit(entry: NodeEntry, txs: list[Transaction]) -> Any:
    body = json.dumps({"txs": [tx.encode().hex() for tx in txs]}).encode()
    req = urllib.request.Request(
        entry.url + "/v1/txs",
        data=body,
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return json.loads(exc.read())


def height(entry: NodeEntry) -> int:
    status = processes.node_status(entry)
    return -1 if status is None else int(status["height"])


def wait_until(predicate: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def block_hashes(entry: NodeEntry, upto: int) -> list[str]:
    return [get(entry, f"/v1/blocks/{h}")["hash"] for h in range(1, upto + 1)]


def signers(entry: NodeEntry, h: int) -> set[str]:
    """The keys (hex) of block ``h``'s ``last_cert``: the precommits that certify h - 1."""
    block = get(entry, f"/v1/blocks/{h}")["block"]
    return {s[0] for s in (block.get("last_cert") or {}).get("signatures", [])}


def cli_ok(*args: str) -> Result:
    """``cityledger ARGS`` in-process, which must succeed (else its message)."""
    from tests.unit.cli.kit import message, run

    result = run(list(args))
    assert result.exit_code == 0, message(result)
    return result
