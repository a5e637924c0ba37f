"""``keys``, ``status``, ``block``, ``tx show``: files, errors and verified output."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.unit.cli.kit import CliNode, ServerThread, lying_proxy, message, run


def test_keys_new_show_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CITYLEDGER_KEY_PASSPHRASE", "correct horse")
    sealed = tmp_path / "officer.key"
    result = run(["keys", "new", "--out", str(sealed), "--json"])
    assert result.exit_code == 0, message(result)
    created = json.loads(result.stdout)
    assert created["encrypted"] and os.stat(sealed).st_mode & 0o777 == 0o600
    shown = run(["keys", "show", str(sealed), "--check", "--json"])
    assert shown.exit_code == 0 and json.loads(shown.stdout)["public_key"] == created["public_key"]
    monkeypatch.setenv("CITYLEDGER_KEY_PASSPHRASE", "wrong")
    wrong = run(["keys", "show", str(sealed), "--check"])
    assert wrong.exit_code != 0 and "wrong passphrase" in message(wrong)
    again = run(["keys", "new", "--out", str(sealed), "--no-passphrase"])
    assert again.exit_code != 0 and "refusing to overwrite" in message(again)
    imported = tmp_path / "imported.key"
    result = run(["keys", "import", "--out", str(imported), "--no-passphrase", "--json"],
                 input="11" * 32 + "\n")  # fmt: skip
    assert result.exit_code == 0, message(result)
    from ledger.crypto import PrivateKey

    assert json.loads(result.stdout)["public_key"] == PrivateKey(b"\x11" * 32).public_key.hex()
    short = run(["keys", "import", "--out", str(tmp_path / "x.key"), "--no-passphrase"],
                input="abcd\n")  # fmt: skip
    assert short.exit_code != 0 and "32 bytes" in short.output


def test_keys_prompt_for_passphrase(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CITYLEDGER_KEY_PASSPHRASE", raising=False)
    path = tmp_path / "p.key"
    result = run(["keys", "new", "--out", str(path)], input="s3cret\ns3cret\n")
    assert result.exit_code == 0, message(result)
    assert run(["keys", "show", str(path), "--check"], input="s3cret\n").exit_code == 0


def test_status(server: ServerThread, node: CliNode) -> None:
    result = run(["status", "--node", server.url, "--json"])
    assert result.exit_code == 0, message(result)
    assert json.loads(result.stdout)["height"] == node.chain.head().height
    human = run(["status", "--node", server.url])
    assert "chain_id" in human.output and "cli-test" in human.output


def test_block_verified(server: ServerThread, genesis_file: str) -> None:
    result = run(["block", "1", "--node", server.url, "--genesis", genesis_file])
    assert result.exit_code == 0, message(result)
    assert "shipment.declare" in result.output and "verified at height 1" in result.output
    missing = run(["block", "999", "--node", server.url])
    assert missing.exit_code != 0 and "not_found" in message(missing)


def test_block_with_a_forged_transaction_refused(
    server: ServerThread, genesis_file: str, keys: dict[str, str]
) -> None:
    def forge(path: str, answer: dict) -> dict:  # type: ignore[type-arg]
        if path.startswith("/v1/blocks/"):
            answer["block"]["txs"][0]["payload"]["origin"] = "USNYC"
        return answer

    proxy = lying_proxy(server.url, forge)
    try:
        args = ["block", "1", "--node", proxy.url, "--genesis", genesis_file]
        result = run([*args, "--key", keys["auditor"]])
        # a lying node cannot hide a forged payload behind a redacted stub either
        public = run(args)
    finally:
        proxy.stop()
    assert result.exit_code != 0 and "tx_root" in message(result)
    assert public.exit_code != 0


def test_block_shows_what_the_reader_may_see(
    server: ServerThread, genesis_file: str, keys: dict[str, str]
) -> None:
    public = run(["block", "1", "--node", server.url, "--genesis", genesis_file])
    assert public.exit_code == 0, message(public)
    assert "redacted" in public.output and "match the header's tx and evidence roots" in (
        public.output
    )
    audited = run(["block", "1", "--node", server.url, "--genesis", genesis_file, "--json"])
    assert json.loads(audited.stdout)["redacted"] > 0
    args = ["block", "1", "--node", server.url, "--genesis", genesis_file, "--json"]
    audited = run([*args, "--key", keys["auditor"]])
    assert json.loads(audited.stdout)["redacted"] == 0


def test_tx_show(
    server: ServerThread, node: CliNode, genesis_file: str, keys: dict[str, str]
) -> None:
    block = node.chain.block(2)
    assert block is not None
    tx_hash = block.txs[1].hash.hex()
    redacted = run(["tx", "show", tx_hash, "--node", server.url, "--genesis", genesis_file])
    assert redacted.exit_code == 0 and "give --key" in message(redacted)
    assert "withheld" in redacted.output and "bill_of_lading" not in redacted.output
    key = ["--key", keys["auditor"]]
    result = run(["tx", "show", tx_hash, "--node", server.url, "--genesis", genesis_file, *key])
    assert result.exit_code == 0, message(result)
    assert "committed" in result.output and "shipment.document_attached" in result.output
    assert "in the block's tx root, results root and the ledger log" in result.output
    unverified = run(["tx", "show", tx_hash, "--node", server.url, *key])
    assert "not verified" in unverified.output
    unknown = run(["tx", "show", "ab" * 32, "--node", server.url])
    assert unknown.exit_code != 0 and "not known" in message(unknown)
    assert run(["tx", "show", "xyz", "--node", server.url]).exit_code != 0


def test_not_a_node(server: ServerThread) -> None:
    """Something that answers HTTP but is not a CityLedger node (here: a route it lacks)."""
    result = run(["status", "--node", server.url + "/nope"])
    assert result.exit_code != 0 and "not_found" in message(result)
