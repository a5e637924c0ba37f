"""The ``cityledger`` CLI against a real 4-validator network on loopback.

A shipment's journey is submitted with ``cityledger tx ...``; ``shipment provenance``
verifies it; a lying proxy in front of a real node (forged record, forged
certificate, truncated history) is refused; the chain is audited online, then
offline on a stopped node's LevelDB copy, where a byte flipped in each kind of
stored record is found and named.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import plyvel
import pytest

from devnet import layout
from devnet.layout import Network
from ledger.encoding import Value
from ledger.storage import keys
from node.config import Home
from tests.integration.netkit import height, running_network, wait_until
from tests.unit.cli.kit import CONTAINER, lying_proxy, make_genesis, message, run, write_keys

SHIPMENT = "S-IT-0001"


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Network, Path]]:
    """A running network whose genesis holds the CLI kit's organisations; stopped after."""
    home = tmp_path_factory.mktemp("cli-net")
    patch = pytest.MonkeyPatch()
    patch.setattr(
        layout, "founding_organisations", lambda *_a, **_k: list(make_genesis(0).organisations)
    )
    try:
        with running_network(str(home / "net")) as net:
            yield net, home
    finally:
        patch.undo()


@pytest.fixture(scope="module")
def journey(network: tuple[Network, Path]) -> dict[str, Any]:
    """The shipment's journey, each step submitted and waited for with the CLI."""
    net, home = network
    url, genesis = net.nodes[0].url, Home(net.nodes[0].home).genesis
    paths = write_keys(str(home), ["acme", "oceanic", "officer", "globex", "auditor"])
    steps = [
        ("acme", ["shipment", "declare", "--id", SHIPMENT, "--consignor", "acme",
                  "--consignee", "globex", "--declarant", "acme", "--origin", "CNSHA",
                  "--destination", "KRPUS", "--goods", "851712;mobile phones;500;PCE;12500000;EUR",
                  "--container", CONTAINER]),
        ("acme", ["shipment", "handoff", "offer", SHIPMENT, "--to", "oceanic"]),
        ("oceanic", ["shipment", "handoff", "accept", SHIPMENT]),
        ("oceanic", ["shipment", "milestone", SHIPMENT, "--event", "loaded", "--place", "CNSHA"]),
        ("oceanic", ["shipment", "milestone", SHIPMENT, "--event", "arrived", "--place", "KRPUS"]),
        ("officer", ["customs", "clear", SHIPMENT, "--reason", "documents in order"]),
    ]  # fmt: skip
    receipts = []
    for signer, args in steps:
        result = run(["tx", *args, "--key", paths[signer], "--node", url, "--genesis", genesis,
                      "--wait", "--json"])  # fmt: skip
        assert result.exit_code == 0, message(result)
        receipts.append(json.loads(result.stdout))
        assert receipts[-1]["status"] == "committed" and receipts[-1]["verified"]
    return {"url": url, "genesis": genesis, "keys": paths, "receipts": receipts}


def provenance(url: str, j: dict[str, Any], *extra: str) -> Any:
    return run(["shipment", "provenance", SHIPMENT, "--node", url, "--genesis", j["genesis"],
                "--key", j["keys"]["officer"], *extra])  # fmt: skip


def test_provenance_of_the_journey(journey: dict[str, Any]) -> None:
    result = provenance(journey["url"], journey)
    assert result.exit_code == 0, message(result)
    assert "verified at height" in result.output and "voting power" in result.output
    as_json = json.loads(provenance(journey["url"], journey, "--json").stdout)
    assert [e["event"] for e in as_json["history"]] == [
        "declared", "custody_offered", "custody_transferred", "milestone", "milestone",
        "customs_decision",
    ]  # fmt: skip
    assert as_json["voting_power"] * 3 > as_json["total_power"] * 2
    assert as_json["history"][-2]["place"] == "KRPUS"


def test_console_script(journey: dict[str, Any]) -> None:
    exe = Path(sys.executable).with_name("cityledger")
    out = subprocess.run([str(exe), "status", "--node", journey["url"], "--json"],
                         capture_output=True, text=True, timeout=30, check=True)  # fmt: skip
    assert json.loads(out.stdout)["chain_id"] == "cityledger-devnet"


def _lie(journey: dict[str, Any], change: Callable[[dict[str, Value]], None]) -> str:
    def rewrite(path: str, answer: dict[str, Value]) -> dict[str, Value]:
        if path.startswith("/v1/shipments/"):
            change(answer)
        return answer

    proxy = lying_proxy(journey["url"], rewrite)
    try:
        result = provenance(proxy.url, journey)
    finally:
        proxy.stop()
    assert result.exit_code != 0, result.output
    return message(result)


def test_lying_node_refused(journey: dict[str, Any]) -> None:
    def forged_record(a: dict[str, Value]) -> None:
        a["shipment"]["record"]["consignee"] = "outsider"

    def forged_certificate(a: dict[str, Value]) -> None:
        a["certificate"]["signatures"][0][1] = bytes(64)

    def truncated(a: dict[str, Value]) -> None:
        a["history"] = a["history"][:3]

    assert "forged record" in _lie(journey, forged_record)
    assert "certificate does not check out" in _lie(journey, forged_certificate)
    assert "truncated" in _lie(journey, truncated)


def test_online_audit_checkpoint_and_consistency(journey: dict[str, Any], tmp_path: Path) -> None:
    url, genesis = journey["url"], journey["genesis"]
    cp = run(["audit", "checkpoint", "--node", url, "--genesis", genesis,
              "--key", journey["keys"]["auditor"]])  # fmt: skip
    assert cp.exit_code == 0, message(cp)
    (tmp_path / "cp.json").write_text(cp.stdout)
    audit = run(["audit", "verify", "--node", url, "--genesis", genesis, "--json",
                 "--key", journey["keys"]["auditor"]])  # fmt: skip
    assert audit.exit_code == 0, message(audit)
    assert json.loads(audit.stdout)["txs"] >= len(journey["receipts"])
    later = run(["audit", "consistency", str(tmp_path / "cp.json"), "--node", url,
                 "--genesis", genesis, "--json"])  # fmt: skip
    assert later.exit_code == 0, message(later)
    assert json.loads(later.stdout)["consistent"]


def _first(db: Any, prefix: bytes) -> bytes:
    return next(k for k, _ in db.iterator(prefix=prefix))


def test_online_backup_of_a_running_node(
    network: tuple[Network, Path], journey: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """``node backup`` of a running validator: the node writes one committed height from
    a LevelDB snapshot and keeps committing; the backup is a home an audit accepts."""
    net, _ = network
    entry = net.nodes[1]
    out = tmp_path_factory.mktemp("backups") / "busan-1"
    before = height(entry)
    result = run(["node", "backup", "--home", entry.home, "--out", str(out), "--json"])
    assert result.exit_code == 0, message(result)
    made = json.loads(result.stdout)
    assert made["ok"] and made["height"] >= before and made["rows"] > 100
    assert sorted(p.name for p in out.iterdir()) == [
        "BACKUP.json", "config.toml", "data", "genesis.json", "node_key.json",
        "tls_cert.pem", "tls_key.pem",
    ]  # fmt: skip
    assert (out / "node_key.json").stat().st_mode & 0o077 == 0
    wait_until(lambda: height(entry) > made["height"] + 1, 30, "the node to keep committing")
    audit = run(["audit", "verify", "--home", str(out), "--genesis",
                 Home(entry.home).genesis, "--workers", "0", "--json"])  # fmt: skip
    assert audit.exit_code == 0, message(audit)
    assert json.loads(audit.stdout)["tip"] == made["height"]
    again = run(["node", "backup", "--home", entry.home, "--out", str(out)])
    assert again.exit_code == 1 and "already exists" in again.output


def test_a_second_devnet_on_the_same_ports_is_refused_before_anything_starts(
    network: tuple[Network, Path], tmp_path: Path
) -> None:
    net, _ = network
    base_port = int(net.nodes[0].p2p.rsplit(":", 1)[1])
    other = tmp_path / "second-devnet"
    result = run(["devnet", "up", "--home", str(other), "--base-port", str(base_port),
                  "--validators", str(len(net.nodes)), "--detach"])  # fmt: skip
    assert result.exit_code == 1, message(result)
    text = " ".join(result.output.split())
    assert f"{net.nodes[0].api} (busan-0's API) is in use by a CityLedger node " in text
    assert f"of another chain ({net.chain_id}, genesis " in text
    assert "--base-port" in text and not other.exists(), "nothing written, nothing started"


# kind -> how to pick its key in a stored node; the record name the audit must give
TAMPER: dict[str, tuple[Callable[[Any, dict[str, Any]], bytes], str]] = {
    "block": (lambda db, j: keys.block_key(j["receipts"][0]["height"]), "block|transaction"),
    "certificate": (lambda db, j: keys.cert_key(j["receipts"][1]["height"]), "certificate"),
    "receipt": (lambda db, j: keys.receipt_key(j["receipts"][2]["height"], 0), "receipt"),
    "tx index": (lambda db, j: keys.tx_index_key(bytes.fromhex(j["receipts"][3]["hash"])),
                 "tx index entry"),
    "state node": (lambda db, j: _first(db, keys.STATE_NODE), "state node"),
    "state value": (lambda db, j: _first(db, keys.STATE_LEAF), "state value"),
    "log node": (lambda db, j: _first(db, keys.LOG), "log node"),
    "index": (lambda db, j: _first(db, keys.INDEX), "contract index entry"),
}  # fmt: skip


def test_offline_audit_finds_every_flipped_byte(
    network: tuple[Network, Path], journey: dict[str, Any], tmp_path: Path
) -> None:
    net, _ = network
    from devnet import processes

    processes.stop_all(net)  # a stopped node's data
    original = tmp_path / "node"
    shutil.copytree(net.nodes[0].home, original)
    clean = run(["audit", "verify", "--home", str(original), "--json"])
    assert clean.exit_code == 0, message(clean)
    assert json.loads(clean.stdout)["rows_compared"] > 0
    for kind, (pick, record) in TAMPER.items():
        copy = tmp_path / kind.replace(" ", "-")
        shutil.copytree(original, copy)
        db = plyvel.DB(str(copy / "data"))
        key = pick(db, journey)
        value = bytearray(db.get(key))
        value[len(value) // 2] ^= 0x01
        db.put(key, bytes(value))
        db.close()
        result = run(["audit", "verify", "--home", str(copy), "--workers", "0", "--json"])
        assert result.exit_code == 1, (kind, result.output)
        findings = json.loads(result.stdout)["findings"]
        names = record.split("|")
        assert any(name in f["record"] for f in findings for name in names), (kind, findings)
