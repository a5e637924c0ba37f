"""docs/operations.md, "Founding a network", scripted: four agencies found a network.

Each agency makes its keys in its own directory and writes a join request (two traders
join without a validator); a coordinator assembles the draft; every founder signs it;
``genesis verify`` passes; each agency initialises its node from the signed genesis and
its own key, and the four nodes run on loopback with TLS on their peer links. A permit
and a shipment are then committed, and the CLI verifies both holding only the genesis
file. The founders' keys never leave their directories: the coordinator reads requests.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devnet import processes
from devnet.layout import Network, NodeEntry
from ledger.founding import GenesisFile
from node.config import Home
from tests.integration.netkit import cli_ok as cli
from tests.integration.netkit import logs
from tests.unit.cli.kit import CONTAINER, run

CHAIN = "four-agencies"
AGENCIES = {  # org id -> (name, member NAME=ROLE)
    "busan-customs": ("Busan Main Customs", "officer=customs"),
    "busan-permits": ("Busan Permit Office", "clerk=permit_office"),
    "busan-port": ("Busan Port Authority", "ops=port"),
    "busan-audit": ("Busan Audit Office", "auditor=auditor"),
}
TRADERS = {"hanbit-electronics": "Hanbit Electronics", "sejong-agritech": "Sejong Agritech"}


def request(tmp: Path, org: str, name: str, *extra: str) -> str:
    out = str(tmp / "requests" / f"{org}.json")
    cli("genesis", "request", "--chain-id", CHAIN, "--org", org, "--name", name, "--city",
        "Busan", "--home", str(tmp / org), "--out", out, "--no-passphrase", *extra)  # fmt: skip
    return out


def found(tmp: Path, base_port: int) -> Path:
    """Requests, assembly, signatures: the genesis file the founders agreed on."""
    (tmp / "requests").mkdir()
    requests = [
        request(tmp, org, name, "--p2p", f"127.0.0.1:{base_port + i}", "--member", member)
        for i, (org, (name, member)) in enumerate(AGENCIES.items())
    ]
    requests += [
        request(tmp, org, name, "--kind", "trader", "--no-validator", "--member", "clerk=trader")
        for org, name in TRADERS.items()
    ]
    for path in requests:
        cli("genesis", "verify-request", path)
    genesis = tmp / "genesis.json"
    cli("genesis", "assemble", *requests, "--chain-id", CHAIN, "--out", str(genesis))
    refused = run(["genesis", "verify", str(genesis)])
    assert refused.exit_code == 1  # nobody has signed yet
    for org in [*AGENCIES, *TRADERS]:
        cli("genesis", "sign", str(genesis), "--key", str(tmp / org / "keys" / f"{org}-admin.json"))
    assert "this genesis can found the network" in cli("genesis", "verify", str(genesis)).output
    return genesis


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Network, Path, Path]]:
    tmp = tmp_path_factory.mktemp("founding")
    base = processes.free_base_port()
    genesis = found(tmp, base)
    net = Network(str(tmp), CHAIN)
    for i, org in enumerate(AGENCIES):
        home = str(tmp / org)  # the agency's own directory: its node key is already there
        p2p, api = f"127.0.0.1:{base + i}", f"127.0.0.1:{base + 100 + i}"
        cli("node", "init", "--home", home, "--genesis", str(genesis),
            "--key", str(Path(home) / "node_key.json"), "--p2p", p2p, "--api", api)  # fmt: skip
        assert Home(home).load_config().p2p.tls
        net.nodes.append(NodeEntry(org, home, p2p, api))
    try:
        for entry in net.nodes:
            processes.start_node(entry)
        if not processes.wait_for_height(net, 1, 60):
            raise AssertionError("the founded network did not commit block 1:\n" + logs(net))
        yield net, tmp, genesis
    finally:
        processes.stop_all(net)


def key(tmp: Path, org: str, member: str) -> str:
    return str(tmp / org / "keys" / f"{org}-{member}.json")


def send(net: Network, genesis: Path, key_path: str, *args: str) -> dict[str, Any]:
    result = cli("tx", *args, "--key", key_path, "--node", net.nodes[0].url,
                 "--genesis", str(genesis), "--wait", "--json")  # fmt: skip
    receipt: dict[str, Any] = json.loads(result.stdout)
    assert receipt["status"] == "committed" and receipt["verified"], receipt
    return receipt


def test_the_signed_genesis_is_what_every_node_runs(network: tuple[Network, Path, Path]) -> None:
    net, _, genesis = network
    file = GenesisFile.load(str(genesis))
    assert not file.genesis.devnet and len(file.signatures) == len(AGENCIES) + len(TRADERS)
    for entry in net.nodes:
        status = processes.node_status(entry)
        assert status is not None and status["genesis_hash"] == file.genesis.hash.hex()


def test_a_permit_verifies_with_the_genesis_alone(network: tuple[Network, Path, Path]) -> None:
    net, tmp, genesis = network
    trader, clerk = key(tmp, "hanbit-electronics", "clerk"), key(tmp, "busan-permits", "clerk")
    send(net, genesis, trader, "permit", "apply", "--id", "P-FOUND-1", "--type", "business",
         "--address", "1 Pier Rd, Busan", "--description", "warehouse")  # fmt: skip
    send(net, genesis, clerk, "permit", "review", "P-FOUND-1")
    send(net, genesis, clerk, "permit", "approve", "P-FOUND-1")
    send(net, genesis, clerk, "permit", "issue", "P-FOUND-1",
         "--valid-from", "2020-01-01", "--valid-until", "2060-01-01")  # fmt: skip
    other = net.nodes[2].url  # any node: the answer is checked, not trusted
    check = cli(
        "permit", "check", "P-FOUND-1", "--node", other, "--genesis", str(genesis), "--json"
    )
    answer = json.loads(check.stdout)
    assert answer["valid"] is True and answer["verified"], answer


def test_a_shipment_provenance_verifies_with_the_genesis_alone(
    network: tuple[Network, Path, Path],
) -> None:
    net, tmp, genesis = network
    trader, officer = key(tmp, "hanbit-electronics", "clerk"), key(tmp, "busan-customs", "officer")
    send(net, genesis, trader, "shipment", "declare", "--id", "S-FOUND-1",
         "--consignor", "hanbit-electronics", "--consignee", "sejong-agritech",
         "--declarant", "hanbit-electronics", "--origin", "CNSHA", "--destination", "KRPUS",
         "--goods", "851712;mobile phones;500;PCE;12500000;EUR",
         "--container", CONTAINER)  # fmt: skip
    send(net, genesis, officer, "customs", "clear", "S-FOUND-1", "--reason", "documents in order")
    time.sleep(0.1)
    shown = cli("shipment", "provenance", "S-FOUND-1", "--node", net.nodes[3].url,
                "--genesis", str(genesis), "--key", officer, "--json")  # fmt: skip
    answer = json.loads(shown.stdout)
    assert [e["event"] for e in answer["history"]] == ["declared", "customs_decision"]
    assert answer["voting_power"] * 3 > answer["total_power"] * 2
