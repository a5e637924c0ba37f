"""A real 4-validator network on loopback left idle: it grows by heartbeat blocks only,
a CLI read with ``--max-age 4`` verifies while its head block is older than that (head
statements), and a transaction sent to one node commits at once, not at the next
heartbeat, with no empty block right after it.

The run is bounded (about half a minute); the figures it prints are extrapolated to a day:
blocks and bytes per node at the heartbeat used here, and, from the bytes a heartbeat
block costs, at the production default of one a minute (docs/operations.md)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
from pathlib import Path

from devnet.layout import Network, NodeEntry
from node.config import ConsensusConfig, Home
from tests.integration.netkit import get, height, logs, running_network, submit, wait_until
from tests.integration.test_network import admin_key, member_txs

HEARTBEAT_MS = 10_000
IDLE_S = 25.0  # two heartbeats and then some
MAX_AGE_S = 4  # the read's --max-age: below the heartbeat, so the head block is too old
DAY_S = 86_400
TARGET_BYTES_PER_DAY = 20 * 1024 * 1024


def data_bytes(entry: NodeEntry) -> int:
    """What the node's store holds on disk (LevelDB tables and logs)."""
    root = Home(entry.home).data
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(root) for f in files)


def head_age_s(entry: NodeEntry) -> float:
    return time.time() - get(entry, "/v1/status")["block_time_ms"] / 1000


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """``cityledger ARGS`` from this checkout (as the nodes are started)."""
    command = [sys.executable, "-m", "cli.main", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


def test_an_idle_network_grows_by_heartbeats_and_stays_provably_fresh(tmp_path: Path) -> None:
    settings = {"consensus.head_statement_interval_ms": 1000}
    with running_network(
        str(tmp_path / "net"), empty_block_interval_ms=HEARTBEAT_MS, settings=settings
    ) as network:
        nodes = network.nodes
        start_h, start_b, started = height(nodes[0]), [data_bytes(n) for n in nodes], time.time()
        old = MAX_AGE_S + 1
        wait_until(lambda: head_age_s(nodes[0]) > old, HEARTBEAT_MS / 1000, f"a {old} s old head")
        _fresh_while_idle(network)
        time.sleep(max(0.0, IDLE_S - (time.time() - started)))
        elapsed = time.time() - started
        blocks = height(nodes[0]) - start_h
        grown = [data_bytes(n) - b for n, b in zip(nodes, start_b, strict=True)]
        assert 1 <= blocks <= elapsed * 1000 / HEARTBEAT_MS + 1, (blocks, elapsed)
        _report(blocks, max(grown), elapsed)
        _prompt_commit(network)


def _fresh_while_idle(network: Network) -> None:
    """The head block is over ``MAX_AGE_S`` old: the read verifies by head statements."""
    genesis = Home(network.nodes[0].home).genesis
    entry = network.nodes[1]
    done = cli("block", "latest", "--node", entry.url, "--genesis", genesis,
               "--max-age", str(MAX_AGE_S), "--format", "json")  # fmt: skip
    assert done.returncode == 0, done.stderr + logs(network)
    doc = json.loads(done.stdout)
    assert doc["verified"] is True and len(doc["head_signed_by"]) >= 3, doc
    limit_ms = MAX_AGE_S * 1000
    assert doc["age_ms"] <= limit_ms < time.time() * 1000 - doc["block_time_ms"], doc
    shown = cli("block", "latest", "--node", entry.url, "--genesis", genesis,
                "--max-age", str(MAX_AGE_S))  # fmt: skip
    assert "an idle network: head statements by" in shown.stdout, shown.stdout + shown.stderr


def _report(blocks: int, grown_bytes: int, elapsed_s: float) -> None:
    per_day = DAY_S / elapsed_s
    per_block = grown_bytes / max(blocks, 1)
    default_s = ConsensusConfig().empty_block_interval_ms / 1000
    at_default = per_block * DAY_S / default_s
    print(
        f"\nidle {elapsed_s:.0f} s, heartbeat {HEARTBEAT_MS / 1000:.0f} s: {blocks} blocks, "
        f"{grown_bytes} bytes on the largest node; per day: {blocks * per_day:.0f} blocks "
        f"(an audit replays that many heights), {grown_bytes * per_day / 1e6:.2f} MB; "
        f"at the default heartbeat ({default_s:.0f} s): {DAY_S / default_s:.0f} blocks and "
        f"{at_default / 1e6:.2f} MB a day ({per_block:.0f} bytes a block)"
    )
    assert at_default <= TARGET_BYTES_PER_DAY


def _prompt_commit(network: Network) -> None:
    """A transaction sent to one node starts the waiting height everywhere: committed
    long before the next heartbeat, whichever validator proposes."""
    admin, chain_id = admin_key(network)
    txs = member_txs(admin, chain_id, 0, 1)
    sent = time.time()
    answer = submit(network.nodes[2], txs)
    assert answer["results"][0]["status"] == "pending", answer

    def committed() -> bool:
        try:
            answer = get(network.nodes[0], f"/v1/txs/{txs[0].hash.hex()}")
        except urllib.error.HTTPError as exc:  # 404 until gossip brings it to node 0
            if exc.code != 404:
                raise
            return False
        return answer.get("receipt") is not None

    wait_until(committed, HEARTBEAT_MS / 1000 / 2, "the transaction to commit before a heartbeat")
    print(f"a transaction sent while idle committed in {time.time() - sent:.2f} s")
    # no "proof block" follows it (a header carries its own state root): the next waits
    after = height(network.nodes[0])
    time.sleep(3)
    assert height(network.nodes[0]) == after, "a block followed the transaction's at once"
