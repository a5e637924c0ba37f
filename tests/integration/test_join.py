"""A city joins a running devnet under load and is voted in (issue 18): `devnet join`
starts a node with its own fresh key as a non-validator; it catches up; the founding
agencies propose and approve it with `gov`; from the effective height it signs
certificates, with no node restarted. Then it is voted out again, and its signature never
appears after that. Meanwhile three other agencies' admins send a steady, bounded load
(at most 1,200 transactions, 90 s), none of which may be lost.

Measured and printed: seconds from the approval that executed the change to the first
certificate the new validator signed, and committed tx/s before and after the change."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devnet.layout import Network
from ledger.crypto import PrivateKey
from node.config import Home
from tests.e2e.load import agency_admins, register_org_tx
from tests.integration.netkit import get, height, running_network, signers, submit, wait_until
from tests.unit.cli.kit import message, run

PROPOSER = "sejong-customs"
# with the proposer, 7 of the 10 founding agencies; none of them sends the load
APPROVERS = ["busan-energy", "busan-audit", "sejong-port", "sejong-permits", "sejong-energy",
             "sejong-audit"]  # fmt: skip
LOADERS = 3  # the first three agencies' admins (busan-customs, -port, -permits) send the load


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Network]:
    with running_network(str(tmp_path_factory.mktemp("join") / "net")) as net:
        yield net


def cli(*args: str) -> Any:
    result = run([*args, "--json"])
    assert result.exit_code == 0, message(result)
    return json.loads(result.stdout)


def gov(net: Network, org: str, *args: str) -> Any:
    common = ["--node", net.nodes[0].url, "--genesis", Home(net.nodes[0].home).genesis,
              "--key", str(Path(net.home) / "keys" / f"{org}-admin.json"), "--wait"]  # fmt: skip
    return cli("gov", *args, *common)


def vote(net: Network, kind: str, public_key: str, power: int, name: str = "seoul-4") -> int:
    """Propose (sejong-customs) and approve; returns the height the last approval committed."""
    adding = ["--name", name, "--power", str(power), "--org", "sejong-customs"]
    proposal = gov(net, PROPOSER, "propose", kind, "--public-key", public_key,
                   *(adding if kind == "validator-add" else []))  # fmt: skip
    pid = proposal["proposal_id"]
    for org in APPROVERS:
        receipt = gov(net, org, "approve", pid)
    executed = [e for e in receipt["receipt"]["events"] if e["type"] == "gov.executed"]
    assert executed, receipt["receipt"]
    return int(receipt["height"])


class SteadyLoad:
    """``identity.register_org`` from the first agencies' admins at ``rate`` tx/s, in a
    thread, bounded in count and time; remembers what it sent."""

    def __init__(self, net: Network, rate: float = 20.0, max_txs: int = 1200) -> None:
        self.net, self.rate, self.max_txs = net, rate, max_txs
        self.senders = agency_admins()[:LOADERS]
        self.sent: list[bytes] = []
        self.refused: object = None
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        deadline, nonce = time.monotonic() + 90, 0
        while not self.stop.is_set() and time.monotonic() < deadline:
            txs = [
                register_org_tx(key, self.net.chain_id, nonce, "join", f"trader {nonce}")
                for key in self.senders
            ]
            if len(self.sent) + len(txs) > self.max_txs:
                return
            answer = submit(self.net.nodes[0], txs)
            accepted = [r.get("status") == "pending" for r in answer.get("results", [])]
            if len(accepted) != len(txs) or not all(accepted):
                self.refused = answer  # a gap would strand every later nonce: stop here
                return
            self.sent += [tx.hash for tx in txs]  # the node admitted them: none may be lost
            nonce += 1
            time.sleep(len(txs) / self.rate)


def committed_rate(net: Network, first: int, last: int) -> float:
    """Transactions per second of block time over heights ``first..last``."""
    headers = [get(net.nodes[0], f"/v1/blocks/{h}")["block"]["header"] for h in (first, last)]
    txs = sum(
        get(net.nodes[0], f"/v1/blocks/{h}")["block"]["header"]["tx_count"]
        for h in range(first + 1, last + 1)
    )
    seconds = (headers[1]["time_ms"] - headers[0]["time_ms"]) / 1000
    return txs / seconds if seconds > 0 else 0.0


def test_a_city_joins_under_load_is_voted_in_signs_and_is_voted_out(network: Network) -> None:
    load = SteadyLoad(network)
    load.thread.start()
    try:
        _join_vote_sign_leave(network)
    finally:
        load.stop.set()
        load.thread.join(timeout=30)
    top = height(network.nodes[0])
    wait_until(lambda: all(_committed(network, h) for h in load.sent[-3:]), 60, "the load")
    assert load.refused is None, f"the node refused load it could take: {load.refused}"
    missing = [h.hex()[:16] for h in load.sent if not _committed(network, h)]
    assert not missing, f"{len(missing)} of {len(load.sent)} load transactions lost"
    assert len(load.sent) >= 50 and top > 0, "the load ran through the change"


def _committed(net: Network, tx_hash: bytes) -> bool:
    try:
        return bool(get(net.nodes[0], f"/v1/txs/{tx_hash.hex()}")["receipt"])
    except (OSError, KeyError, ValueError):
        return False


def _join_vote_sign_leave(network: Network) -> None:
    try:
        joined = cli("devnet", "join", "--name", "seoul-4", "--home", network.home)
    finally:  # whatever happened, the fixture stops the node the command started
        known = {n.name for n in network.nodes}
        network.nodes += [n for n in Network.load(network.home).nodes if n.name not in known]
    entry = network.node("seoul-4")
    key = joined["public_key"]
    assert height(entry) >= 1, "it caught up as a non-validator"
    decided = vote(network, "validator-add", key, 1)
    decided_at = time.monotonic()
    first: list[int] = []

    def signed_one() -> bool:
        top = height(network.nodes[0])
        first.extend(h for h in range(decided + 1, top + 1) if key in signers(network.nodes[0], h))
        return bool(first)

    wait_until(signed_one, 60, "the new validator's first signed certificate")
    took = time.monotonic() - decided_at
    wait_until(lambda: height(network.nodes[0]) > first[0] + 10, 60, "ten blocks more")
    before = committed_rate(network, max(1, decided - 10), decided)
    after = committed_rate(network, first[0], first[0] + 10)
    print(f"\njoin under load: the new validator first signed height {first[0] - 1}, "
          f"{took:.1f} s after the approval committed at {decided}; committed "
          f"{before:.1f} tx/s in the 10 blocks before, {after:.1f} in the 10 after")  # fmt: skip
    status = get(network.nodes[0], "/v1/status")
    assert status["height"] >= first[0]
    removed = vote(network, "validator-remove", key, 0)
    wait_until(lambda: height(network.nodes[0]) > removed + 4, 30, "four blocks past removal")
    later = range(removed + 4, height(network.nodes[0]) + 1)
    assert all(key not in signers(network.nodes[0], h) for h in later)


def test_a_validator_whose_node_is_down_cannot_halt_the_chain(network: Network) -> None:
    """The Besu failure: voting in validators whose nodes are not running. One such key
    leaves 4 of 5 power live (more than 2/3): the chain goes on committing. A second would
    leave 4 of 6, not more than 2/3, and is refused by the liveness rail at proposal,
    before anyone approves it (the one-never-signed rail would refuse it too)."""
    ghost = PrivateKey.generate().public_key.hex()
    decided = vote(network, "validator-add", ghost, 1, name="ghost-5")
    wait_until(lambda: height(network.nodes[0]) > decided + 8, 60, "commits past the change")
    another = PrivateKey.generate().public_key.hex()
    refused = run(["gov", "propose", "validator-add", "--public-key", another, "--name",
                   "ghost-6", "--power", "1", "--org", "busan-audit", "--node",
                   network.nodes[0].url, "--genesis", Home(network.nodes[0].home).genesis,
                   "--key", str(Path(network.home) / "keys" / "busan-audit-admin.json"),
                   "--wait"])  # fmt: skip
    assert refused.exit_code == 1 and "(rail_liveness)" in refused.output, message(refused)
