"""``cityledger tx ...``: every action signs, submits and (with --wait) verifies its receipt."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from contracts.codes import with_check_digit
from tests.unit.cli.kit import CliNode, ServerThread, declare_payload, key, message, run


def tx(server: ServerThread, keys: dict[str, str], signer: str, *args: str) -> Any:
    return run(["tx", *args, "--key", keys[signer], "--node", server.url, "--wait", "--json"])


def verified_tx(server: ServerThread, genesis: str, keys: dict[str, str], signer: str,
                *args: str) -> dict[str, Any]:  # fmt: skip
    result = tx(server, keys, signer, *args, "--genesis", genesis)
    assert result.exit_code == 0, message(result)
    doc: dict[str, Any] = json.loads(result.stdout)
    assert doc["status"] == "committed" and doc["verified"], doc
    return doc


def test_shipment_journey_from_the_cli(
    server: ServerThread, node: CliNode, genesis_file: str, keys: dict[str, str]
) -> None:
    container = with_check_digit("TGHU765432")
    g = genesis_file
    doc = verified_tx(
        server,
        g,
        keys,
        "acme",
        "shipment",
        "declare",
        "--id",
        "S-CLI",
        "--consignor",
        "acme",
        "--consignee",
        "globex",
        "--declarant",
        "acme",
        "--origin",
        "CNSHA",
        "--destination",
        "KRPUS",
        "--goods",
        "851712;phones;10;PCE;1000;EUR",
        "--container",
        container,
    )
    assert doc["receipt"]["events"][0]["type"] == "shipment.declared"
    assert doc["verified_by"] == ["busan-0", "sejong-1", "incheon-2"]
    # the consignee named by acme confirms its role (it must, before delivery)
    doc = verified_tx(server, g, keys, "globex", "shipment", "confirm", "S-CLI")
    assert doc["receipt"]["events"][0]["type"] == "shipment.party_confirmed"
    verified_tx(server, g, keys, "acme", "shipment", "handoff", "offer", "S-CLI", "--to", "oceanic")
    verified_tx(server, g, keys, "oceanic", "shipment", "handoff", "accept", "S-CLI")
    verified_tx(
        server,
        g,
        keys,
        "oceanic",
        "shipment",
        "milestone",
        "S-CLI",
        "--event",
        "departed",
        "--place",
        "CNSHA",
    )
    verified_tx(server, g, keys, "officer", "customs", "hold", "S-CLI", "--reason", "x-ray")
    verified_tx(server, g, keys, "officer", "customs", "clear", "S-CLI", "--reason", "ok")
    verified_tx(server, g, keys, "officer", "customs", "release", "S-CLI", "--reason", "paid")
    verified_tx(server, g, keys, "globex", "shipment", "deliver", "S-CLI", "--place", "KRPUS")
    result = run(["shipment", "provenance", "S-CLI", "--node", server.url, "--genesis", g,
                  "--key", keys["globex"], "--json"])  # fmt: skip
    assert result.exit_code == 0, message(result)
    history = json.loads(result.stdout)["history"]
    assert [e["event"] for e in history] == [
        "declared", "party_confirmed", "custody_offered", "custody_transferred", "milestone",
        "customs_decision", "customs_decision", "customs_decision", "delivered",
    ]  # fmt: skip


def test_declare_from_file_and_document(
    server: ServerThread, genesis_file: str, keys: dict[str, str], tmp_path: Path
) -> None:
    payload = tmp_path / "declare.json"
    payload.write_text(json.dumps(declare_payload("S-FILE", with_check_digit("TGHU111111"))))
    verified_tx(server, genesis_file, keys, "acme", "shipment", "declare", "--file", str(payload))
    document = tmp_path / "invoice.pdf"
    document.write_bytes(b"%PDF invoice")
    doc = verified_tx(
        server,
        genesis_file,
        keys,
        "acme",
        "shipment",
        "document",
        "S-FILE",
        "--type",
        "commercial_invoice",
        "--document",
        str(document),
    )
    assert doc["receipt"]["events"][0]["attrs"]["type"] == "commercial_invoice"


def test_permit_lifecycle_and_check(
    server: ServerThread, genesis_file: str, keys: dict[str, str]
) -> None:
    g = genesis_file
    verified_tx(
        server,
        g,
        keys,
        "acme",
        "permit",
        "apply",
        "--id",
        "P-CLI",
        "--type",
        "event",
        "--address",
        "Haeundae Beach",
        "--description",
        "concert",
    )
    verified_tx(server, g, keys, "clerk", "permit", "review", "P-CLI")
    verified_tx(server, g, keys, "clerk", "permit", "approve", "P-CLI", "--note", "fine")
    verified_tx(
        server,
        g,
        keys,
        "clerk",
        "permit",
        "issue",
        "P-CLI",
        "--valid-from",
        "2020-01-01",
        "--valid-until",
        "2060-01-01",
    )
    check = run(["permit", "check", "P-CLI", "--at", "2030-06-01", "--node", server.url,
                 "--genesis", g])  # fmt: skip
    assert check.exit_code == 0 and "VALID" in check.output, message(check)
    verified_tx(server, g, keys, "clerk", "permit", "revoke", "P-CLI", "--reason", "noise")
    revoked = run(["permit", "check", "P-CLI", "--node", server.url, "--genesis", g, "--json"])
    assert revoked.exit_code == 1
    assert json.loads(revoked.stdout)["reason"] == "permit is revoked"


def test_identity_register_member(
    server: ServerThread, genesis_file: str, keys: dict[str, str], tmp_path: Path
) -> None:
    run(["keys", "new", "--out", str(tmp_path / "new.key"), "--no-passphrase"])
    doc = verified_tx(
        server,
        genesis_file,
        keys,
        "acme",
        "identity",
        "register-member",
        "--key-file",
        str(tmp_path / "new.key"),
        "--name",
        "clerk 2",
        "--role",
        "trader",
    )
    assert doc["receipt"]["events"][0]["type"] == "identity.member_registered"


def test_failed_transaction_exits_non_zero(
    server: ServerThread, genesis_file: str, keys: dict[str, str]
) -> None:
    result = tx(
        server,
        keys,
        "outsider",
        "shipment",
        "deliver",
        "S-0001",
        "--place",
        "KRPUS",
        "--genesis",
        genesis_file,
    )
    assert result.exit_code == 1
    assert json.loads(result.stdout)["status"] == "failed"
    assert "the transaction failed" in result.output and "(forbidden)" in result.output


def test_bad_payload_refused_before_signing(server: ServerThread, keys: dict[str, str]) -> None:
    result = tx(
        server,
        keys,
        "oceanic",
        "shipment",
        "milestone",
        "S-0001",
        "--event",
        "teleported",
        "--place",
        "CNSHA",
    )
    assert result.exit_code == 1 and "must be one of" in result.output


def test_role_refused_by_the_node(server: ServerThread, keys: dict[str, str]) -> None:
    result = tx(server, keys, "acme", "customs", "seize", "S-0001", "--reason", "no")
    assert result.exit_code == 1 and "forbidden_role" in result.output


def test_nonces_step_over_pending_transactions(
    server: ServerThread, node: CliNode, keys: dict[str, str]
) -> None:
    """Without --wait, several submissions in a row each find the next free nonce."""
    server.call(lambda: setattr(server, "producing", False))  # no block for a moment
    for n in range(3):
        result = run(
            [
                "tx",
                "shipment",
                "milestone",
                "S-0001",
                "--event",
                "arrived",
                "--place",
                "KRPUS",
                "--key",
                keys["oceanic"],
                "--node",
                server.url,
                "--json",
            ]
        )
        assert result.exit_code == 0, message(result)
        assert json.loads(result.stdout)["nonce"] == node.nonces[key("oceanic").public_key] + n
    assert len(node.mempool) == 3


def test_send_any_kind(server: ServerThread, genesis_file: str, keys: dict[str, str],
                       tmp_path: Path) -> None:  # fmt: skip
    payload = tmp_path / "org.json"
    member = key("new-org-admin").public_key.hex()
    payload.write_text(
        json.dumps(
            {
                "id": "pusan-freight",
                "name": "Pusan Freight",
                "kind": "carrier",
                "city": "Busan",
                "members": [{"public_key": member, "name": "boss", "roles": ["admin", "carrier"]}],
            }
        )
    )
    doc = verified_tx(
        server,
        genesis_file,
        keys,
        "customs-admin",
        "send",
        "identity.register_org",
        "--file",
        str(payload),
    )
    assert doc["kind"] == "identity.register_org"


def test_node_unreachable(keys: dict[str, str]) -> None:
    result = run(["tx", "shipment", "deliver", "S-1", "--place", "KRPUS", "--key", keys["acme"],
                  "--node", "http://127.0.0.1:9"])  # fmt: skip
    assert result.exit_code != 0
    assert "connection refused" in message(result)
