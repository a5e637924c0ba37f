"""A real 4-validator network on loopback: commits, identical blocks, crash, catch-up,
refusal of an unknown peer key, and compiled and pure nodes in one network."""

from __future__ import annotations

import asyncio
import os
import signal
import urllib.request
from pathlib import Path

import pytest

from devnet import processes
from devnet.layout import Network
from devnet.loader import load_demo
from ledger import compiled
from ledger.crypto import PrivateKey
from ledger.keyfile import read_key_file
from ledger.tx import Transaction
from node.config import Home, P2PConfig
from node.peers import PeerManager
from tests.integration.netkit import (
    block_hashes,
    get,
    height,
    logs,
    running_network,
    submit,
    wait_until,
)


def admin_key(network: Network) -> tuple[PrivateKey, str]:
    """The Busan audit office's admin from the demo organisations in the devnet genesis."""
    from devnet.demo import demo_organisations

    org = next(o for o in demo_organisations() if o.id == "busan-audit")
    admin = next(m for m in org.members if "admin" in m.roles)
    return admin.key, network.chain_id


def member_txs(admin: PrivateKey, chain_id: str, start: int, count: int) -> list[Transaction]:
    txs = []
    for nonce in range(start, start + count):
        new = PrivateKey.from_label(f"it-member-{nonce}")
        payload = {"public_key": new.public_key, "name": f"m{nonce}", "roles": ["inspector"]}
        txs.append(Transaction.create(admin, chain_id, "identity.register_member", nonce, payload))
    return txs


def test_network_commits_crashes_and_catches_up(tmp_path: Path) -> None:
    with running_network(str(tmp_path / "net")) as network:
        nodes = network.nodes
        admin, chain_id = admin_key(network)
        txs = member_txs(admin, chain_id, 0, 40)
        # Submit to different nodes: each must reach every mempool and commit once.
        for i, entry in enumerate(nodes):
            answer = submit(entry, txs[i * 10 : (i + 1) * 10])
            assert all(r["status"] == "pending" for r in answer["results"]), answer

        wait_until(lambda: _committed(nodes[0], txs), 30, "40 transactions to commit")
        for tx in txs:
            receipt = get(nodes[0], f"/v1/txs/{tx.hash.hex()}")["receipt"]
            assert receipt["code"] == "", receipt

        top = min(height(n) for n in nodes)
        reference = block_hashes(nodes[0], top)
        for entry in nodes[1:]:
            assert block_hashes(entry, top) == reference, f"{entry.name} forked"

        # A killed validator does not stop the other three.
        victim = nodes[3]
        assert victim.pid is not None
        os.kill(victim.pid, signal.SIGKILL)
        processes.stop_node(victim)  # reaps it; already dead
        before = height(nodes[0])
        more = member_txs(admin, chain_id, 40, 20)
        submit(nodes[1], more)
        wait_until(lambda: height(nodes[0]) >= before + 3, 30, "progress with 3 of 4")
        wait_until(lambda: _committed(nodes[0], more), 30, "txs to commit with 3 of 4")

        # Restarted, it catches up from its store and its peers.
        processes.start_node(victim)
        network.save()
        target = height(nodes[0])
        wait_until(lambda: height(victim) >= target, 45, "the restarted node to catch up")
        top = min(height(n) for n in nodes)
        assert block_hashes(victim, top) == block_hashes(nodes[0], top), logs(network)


def test_a_network_executing_proposals_ahead_commits_one_chain(tmp_path: Path) -> None:
    """``[consensus] speculate`` (node/speculation.py): proposers announce their blocks'
    bodies and validators execute them ahead; every block is still the same block on
    every node, and the validators did take executions made ahead."""
    settings = {"consensus.speculate": True}
    with running_network(str(tmp_path / "net"), settings=settings) as network:
        nodes = network.nodes
        admin, chain_id = admin_key(network)
        txs = member_txs(admin, chain_id, 0, 120)
        for start in range(0, 120, 40):  # waves: blocks by several proposers
            wave = txs[start : start + 40]
            for i, entry in enumerate(nodes):
                answer = submit(entry, wave[i * 10 : (i + 1) * 10])
                assert all(r["status"] == "pending" for r in answer["results"]), answer
            wait_until(lambda wave=wave: _committed(nodes[0], wave), 30, "a wave to commit")
        top = min(height(n) for n in nodes)
        reference = block_hashes(nodes[0], top)
        for entry in nodes[1:]:
            assert block_hashes(entry, top) == reference, f"{entry.name} forked"
        executed = sum(
            get(n, "/v1/status")["consensus"]["speculation"].get("executed", 0) for n in nodes
        )
        assert executed > 0, logs(network)
        # every validator measured where its heights' time went; the proposers their builds
        measured = [height_phase_counts(n) for n in nodes]
        assert all(m.get("propose", 0) > 0 and m.get("precommits", 0) > 0 for m in measured)
        assert sum(m.get("build", 0) for m in measured) > 0, measured
        # ... and the heights others proposed, not only its own
        assert all(m["propose"] > m.get("build", 0) for m in measured), measured


def height_phase_counts(entry: object) -> dict[str, float]:
    """How many heights the node measured, by phase (cityledger_height_phase_seconds)."""
    from benchmarks.phases import parse_phases

    url = entry.url  # type: ignore[attr-defined]
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as response:
        text = response.read().decode()
    return {phase: count for phase, (_, count) in parse_phases(text).items()}


def _committed(entry: object, txs: list[Transaction]) -> bool:
    from tests.integration.netkit import get as get_json

    try:
        return all("receipt" in get_json(entry, f"/v1/txs/{tx.hash.hex()}") for tx in txs)  # type: ignore[arg-type]
    except Exception:
        return False


def test_a_peer_with_an_unknown_key_is_refused(tmp_path: Path) -> None:
    with running_network(str(tmp_path / "net"), validators=4) as network:
        target = network.nodes[0]
        genesis_names = {read_key_file(Home(n.home).key).public_key: n.name for n in network.nodes}
        outsider = PrivateKey.from_label("integration-outsider")
        names = genesis_names | {outsider.public_key: "me"}
        connected = asyncio.Event()

        async def attempt() -> bool:
            async def on_message(*_: object) -> None:
                return None

            async def on_connect(*_: object) -> None:
                connected.set()

            manager = PeerManager(
                outsider, network.chain_id, names, P2PConfig(), on_message, on_connect
            )
            task = asyncio.create_task(manager.dial_forever(target.p2p))
            try:
                async with asyncio.timeout(3):
                    await connected.wait()
                return True
            except TimeoutError:
                return False
            finally:
                task.cancel()
                await manager.close()

        assert asyncio.run(attempt()) is False
        status = get(target, "/v1/status")
        assert all(p["name"] != "me" for p in status["peers"])


def test_compiled_and_pure_nodes_make_one_chain(tmp_path: Path) -> None:
    """Two validators run the compiled modules and two pure Python (an agency without a
    C compiler, or one whose build went stale: docs/performance.md, "Compiled modules")
    while the demo scenario — shipments, permits, energy, governance — is loaded: every
    block is the same block on all four. Without a current build here there is nothing
    compiled to mix (all four would run pure): skipped, unless the build is required."""
    _, why = compiled.check(compiled.ROOT)
    if why is not None:
        assert os.environ.get("CITYLEDGER_REQUIRE_COMPILED") != "1", why
        pytest.skip(f"no compiled modules to mix: {why}")
    as_built = {compiled.PURE_ENV: "0"}  # compiled, even under `make test-pure`
    pure = {compiled.PURE_ENV: "1"}
    node_env = {0: as_built, 1: as_built, 2: pure, 3: pure}
    with running_network(str(tmp_path / "net"), node_env=node_env) as network:
        nodes = network.nodes
        codes = [get(n, "/v1/status")["code"] for n in nodes]
        assert codes == ["compiled", "compiled", "pure", "pure"], codes
        assert load_demo(network) > 0
        top = min(height(n) for n in nodes)
        reference = block_hashes(nodes[0], top)
        for entry in nodes[1:]:
            assert block_hashes(entry, top) == reference, f"{entry.name} forked"
