"""Validator-set changes in a fault-suite :class:`~tests.e2e.cluster.Cluster` (issue 18):
votes through the real ``cityledger gov`` commands, a city's node joining as an
observer, and what the certificates say about who signed.

Governance needs more than 2/3 of the ten founding agencies: :data:`PROPOSER` and the
six :data:`APPROVERS`. None of them is among the first three agencies, whose admins
send the load (:data:`LOADERS`), so no nonce is shared between the two.
"""

from __future__ import annotations

import json
import os
from typing import Any

from devnet import join as devnet_join
from ledger.keyfile import read_key_file
from node.config import Home
from tests.e2e.cluster import Cluster
from tests.unit.cli.kit import message, run

PROPOSER = "sejong-customs"
APPROVERS = ["busan-energy", "busan-audit", "sejong-port", "sejong-permits", "sejong-energy",
             "sejong-audit"]  # fmt: skip
LOADERS = 3  # busan-customs, -port, -permits: the load's senders (tests.e2e.load)


def cli(*args: str) -> Any:
    """``cityledger ARGS --json`` in this process; its JSON answer."""
    result = run([*args, "--json"])
    assert result.exit_code == 0, message(result)
    return json.loads(result.stdout)


def gov_args(cluster: Cluster, via: str, org: str, *args: str) -> list[str]:
    """``gov ARGS`` signed by ``org``'s admin, sent to node ``via``."""
    key = os.path.join(cluster.net.home, "keys", f"{org}-admin.json")
    return ["gov", *args, "--node", cluster.entry(via).url,
            "--genesis", Home(cluster.entry(via).home).genesis, "--key", key]  # fmt: skip


def vote(cluster: Cluster, via: str, kind: str, *change: str) -> int:
    """Propose ``kind`` with ``change`` (waited for), then send every approval at once
    (each agency has its own nonces: they commit in a block or two, not six); returns
    the height the approval that executed it committed at (in force two heights later)."""
    pid = cli(*gov_args(cluster, via, PROPOSER, "propose", kind, *change), "--wait")
    sent = [cli(*gov_args(cluster, via, org, "approve", pid["proposal_id"]))["hash"]
            for org in APPROVERS]  # fmt: skip
    receipts: dict[str, Any] = {}

    def committed() -> bool:
        for tx_hash in sent:
            if tx_hash not in receipts:
                answer = cluster.get_canonical(via, f"/v1/txs/{tx_hash}")  # as the auditor
                if isinstance(answer.get("receipt"), dict):
                    receipts[tx_hash] = answer["receipt"]
        return len(receipts) == len(sent)

    assert cluster.wait(committed, 60, interval=0.3), f"approvals not committed: {receipts}"
    executed = [int(r["height"]) for r in receipts.values()
                if any(e["type"] == "gov.executed" for e in r["events"])]  # fmt: skip
    assert len(executed) == 1, list(receipts.values())
    return executed[0]


def signers(cluster: Cluster, via: str, height: int) -> set[bytes]:
    """The keys whose precommits certify block ``height`` (as ``via`` serves it)."""
    answer = cluster.get_canonical(via, f"/v1/blocks/{height}/certificate", timeout=10)
    return {key for key, _ in answer["certificate"]["signatures"]}


def recorded_signers(cluster: Cluster, via: str, height: int) -> set[bytes]:
    """The keys the state records as having signed block ``height - 1``: the signatures
    of the certificate block ``height`` carries, its proposer's. ``via``'s own certificate
    of that height may hold others (the precommits that reached it first)."""
    answer = cluster.get_canonical(via, f"/v1/blocks/{height}", timeout=10)
    cert = answer["block"]["last_cert"]
    return set() if cert is None else {key for key, _ in cert["signatures"]}


def wait_all_signed(cluster: Cluster, via: str, keys: list[bytes], timeout_s: float = 40) -> None:
    """Wait until the state records each of ``keys`` as having signed: the liveness rail
    counts only validators that signed recently, and right after start one may not have
    yet. Read from the certificates the blocks carry, as the rail does: a validator whose
    precommits reached ``via`` but never a proposer in time is not recorded (the likely
    cause of a change refused ``rail_liveness`` in make faults, seed 250275044)."""
    seen: set[bytes] = set()
    checked = [1]

    def all_signed() -> bool:
        for h in range(checked[0] + 1, cluster.height(via) + 1):
            checked[0] = h
            seen.update(recorded_signers(cluster, via, h))
        return set(keys) <= seen

    assert cluster.wait(all_signed, timeout_s, interval=0.5), f"not all signed: {cluster.logs(20)}"


def committed_rate(cluster: Cluster, via: str, first: int, last: int) -> float:
    """Committed transactions per second of block time over blocks ``first+1..last``."""
    headers = [
        cluster.get_canonical(via, f"/v1/blocks/{h}/certificate", timeout=10)["header"]
        for h in range(first, last + 1)
    ]
    txs = sum(h["tx_count"] for h in headers[1:])
    seconds = (headers[-1]["time_ms"] - headers[0]["time_ms"]) / 1000
    return txs / seconds if seconds > 0 else 0.0


def join_observer(cluster: Cluster, name: str) -> bytes:
    """A new node with its own fresh key, laid out and announced as ``devnet join`` does
    (an observer the others let link), then started by the cluster — through the relay
    when the cluster has one. Returns its public key."""
    entry = devnet_join.join(cluster.net, name)  # started once, with direct peers
    key = read_key_file(Home(entry.home).key).public_key
    cluster.keys[name] = key
    if cluster.relay is not None:  # every link of the new node through the relay too
        home = Home(entry.home)
        config = home.load_config()
        config.p2p.peers = [
            f"127.0.0.1:{cluster.relay.add_link(name, o.name, '127.0.0.1', _port(o.p2p))}"
            for o in cluster.nodes
            if o.name != name
        ]
        with open(home.config, "w", encoding="utf-8") as f:
            f.write(config.to_toml())
    cluster.restart(name)  # by the cluster's launcher, so it keeps the exit status
    return key


def _port(address: str) -> int:
    return int(address.rsplit(":", 1)[1])
