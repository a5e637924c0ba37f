"""Proof bundles (offline), checkpoints and consistency, and the one-request provenance form."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from ledger.encoding import Value, decode, encode
from ledger.log import MerkleLog
from tests.unit.cli.kit import (
    SHIPMENT,
    CliNode,
    ServerThread,
    build_journey,
    lying_proxy,
    message,
    run,
    serve,
)


def export(url: str, genesis: str, key: str, out: Path, kind: str = "shipment",
           ident: str = SHIPMENT) -> None:  # fmt: skip
    result = run(["proof", "export", kind, ident, "--node", url, "--genesis", genesis,
                  "--key", key, "--out", str(out)])  # fmt: skip
    assert result.exit_code == 0, message(result)


def test_bundle_round_trip_offline(
    server: ServerThread, genesis_file: str, keys: dict[str, str], tmp_path: Path
) -> None:
    bundle = tmp_path / "bundle.json"
    export(server.url, genesis_file, keys["officer"], bundle)
    server.stop()  # offline from here on
    result = run(["proof", "verify", str(bundle), "--genesis", genesis_file])
    assert result.exit_code == 0, message(result)
    assert "verified at height" in result.output and "checked offline" in result.output
    as_json = run(["proof", "verify", str(bundle), "--genesis", genesis_file, "--json"])
    doc = json.loads(as_json.stdout)
    assert doc["verified"] and doc["shipment"]["id"] == SHIPMENT


def test_tampered_bundle_refused(
    server: ServerThread, genesis_file: str, keys: dict[str, str], tmp_path: Path
) -> None:
    bundle = tmp_path / "bundle.json"
    export(server.url, genesis_file, keys["officer"], bundle)
    doc = json.loads(bundle.read_text())
    evidence = decode(base64.b64decode(doc["evidence"]))
    evidence["answer"]["history"][0]["record"]["place"] = "USNYC"
    doc["evidence"] = base64.b64encode(encode(evidence)).decode()
    bundle.write_text(json.dumps(doc))
    result = run(["proof", "verify", str(bundle), "--genesis", genesis_file])
    assert result.exit_code != 0 and "forged record" in message(result)
    raw = bytearray(base64.b64decode(json.loads(bundle.read_text())["evidence"]))
    raw[len(raw) // 2] ^= 0x01
    doc["evidence"] = base64.b64encode(bytes(raw)).decode()
    bundle.write_text(json.dumps(doc))
    assert run(["proof", "verify", str(bundle), "--genesis", genesis_file]).exit_code != 0


def test_bundle_for_another_genesis_refused(
    server: ServerThread, genesis_file: str, keys: dict[str, str], tmp_path: Path
) -> None:
    bundle = tmp_path / "bundle.json"
    export(server.url, genesis_file, keys["officer"], bundle)
    other = CliNode()  # same validators and organisations, another genesis time
    other_file = tmp_path / "other.json"
    other_file.write_text(other.genesis.to_json())
    result = run(["proof", "verify", str(bundle), "--genesis", str(other_file)])
    assert result.exit_code != 0 and "another chain or genesis" in message(result)


def test_permit_and_tx_bundles(
    server: ServerThread, node: CliNode, genesis_file: str, keys: dict[str, str], tmp_path: Path
) -> None:
    block = node.chain.block(1)
    assert block is not None
    for kind, ident in (("permit", "P-0001"), ("tx", block.txs[0].hash.hex())):
        bundle = tmp_path / f"{kind}.json"
        export(server.url, genesis_file, keys["officer"], bundle, kind, ident)
        result = run(["proof", "verify", str(bundle), "--genesis", genesis_file, "--json"])
        assert result.exit_code == 0, message(result)
        assert json.loads(result.stdout)["verified"]


# --- checkpoints ------------------------------------------------------------------------------


def checkpoint(url: str, genesis: str, key: str, out: Path) -> dict[str, Any]:
    result = run(["audit", "checkpoint", "--node", url, "--genesis", genesis, "--key", key])
    assert result.exit_code == 0, message(result)
    out.write_text(result.stdout)
    doc: dict[str, Any] = json.loads(result.stdout)
    return doc


def consistency(cp: Path, url: str, genesis: str, *extra: str) -> Any:
    return run(["audit", "consistency", str(cp), "--node", url, "--genesis", genesis, *extra])


def test_checkpoint_then_consistency(
    server: ServerThread, node: CliNode, genesis_file: str, keys: dict[str, str], tmp_path: Path
) -> None:
    cp_path = tmp_path / "cp.json"
    cp = checkpoint(server.url, genesis_file, keys["auditor"], cp_path)
    assert cp["signer"] and cp["log_size"] == node.chain.head().log_size
    same = consistency(cp_path, server.url, genesis_file)
    assert same.exit_code == 0, message(same)
    server.call(lambda: build_journey(node, "S-0002"))
    later = consistency(cp_path, server.url, genesis_file, "--signer", cp["signer"], "--json")
    assert later.exit_code == 0, message(later)
    doc = json.loads(later.stdout)
    assert doc["consistent"] and doc["log_size"] > doc["checkpoint_log_size"]
    wrong_signer = consistency(cp_path, server.url, genesis_file, "--signer", "00" * 32)
    assert wrong_signer.exit_code != 0


def test_tampered_checkpoint_refused(
    server: ServerThread, genesis_file: str, keys: dict[str, str], tmp_path: Path
) -> None:
    cp_path = tmp_path / "cp.json"
    cp = checkpoint(server.url, genesis_file, keys["auditor"], cp_path)
    cp["log_root"] = "00" * 32
    cp_path.write_text(json.dumps(cp))
    result = consistency(cp_path, server.url, genesis_file)
    assert result.exit_code != 0 and "signature is bad" in message(result)
    del cp["signature"], cp["signer"]
    cp_path.write_text(json.dumps(cp))
    result = consistency(cp_path, server.url, genesis_file)
    assert result.exit_code != 0 and "does not match its header" in message(result)


def test_rewritten_ledger_fails_consistency(
    server: ServerThread, node: CliNode, genesis_file: str, keys: dict[str, str], tmp_path: Path
) -> None:
    """A node whose history differs from the checkpoint's (same genesis) cannot prove it."""
    cp_path = tmp_path / "cp.json"
    checkpoint(server.url, genesis_file, keys["auditor"], cp_path)
    fork = CliNode(genesis=node.genesis)
    build_journey(fork, "S-FORK", milestones=6)
    fork_server = serve(fork)
    try:
        result = consistency(cp_path, fork_server.url, genesis_file)
    finally:
        fork_server.stop()
    assert result.exit_code != 0, result.output
    assert "does not provably extend" in message(result)


# --- provenance in one request ----------------------------------------------------------------


def add_history_tx_proofs(node: CliNode) -> Any:
    """What the proposed API field carries: per entry, its tx in the answered header's log."""

    def rewrite(path: str, answer: dict[str, Value]) -> dict[str, Value]:
        if not path.startswith("/v1/shipments/"):
            return answer
        size = answer["header"]["log_size"]
        proofs = []
        for item in answer["history"]:
            location = node.chain.tx_location(item["record"]["tx_hash"])
            assert location is not None
            height, index = location
            block = node.chain.block(height)
            assert block is not None
            leaf = block.header.log_size - block.header.tx_count + index
            proofs.append(MerkleLog(node.store).prove_inclusion(leaf, size).to_obj())
        answer["history_tx_proofs"] = proofs
        return answer

    return rewrite


def test_provenance_with_log_proofs_in_the_answer(
    server: ServerThread, node: CliNode, genesis_file: str, keys: dict[str, str]
) -> None:
    proxy = lying_proxy(server.url, add_history_tx_proofs(node))
    try:
        ok = run(["shipment", "provenance", SHIPMENT, "--node", proxy.url, "--genesis",
                  genesis_file, "--key", keys["officer"], "--json"])  # fmt: skip
        assert ok.exit_code == 0, message(ok)
    finally:
        proxy.stop()

    def bad_proof(path: str, answer: dict[str, Value]) -> dict[str, Value]:
        answer = add_history_tx_proofs(node)(path, answer)
        if "history_tx_proofs" in answer:
            answer["history_tx_proofs"][0]["path"][0] = bytes(32)
        return answer

    proxy = lying_proxy(server.url, bad_proof)
    try:
        bad = run(["shipment", "provenance", SHIPMENT, "--node", proxy.url, "--genesis",
                   genesis_file, "--key", keys["officer"]])  # fmt: skip
    finally:
        proxy.stop()
    assert bad.exit_code != 0 and "not in the certified log" in message(bad)
