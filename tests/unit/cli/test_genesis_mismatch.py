"""A genesis file of another chain is named as such by every command, both hashes shown,
and never reported as tampering."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from ledger.genesis import Genesis
from ledger.validators import Validator, ValidatorSet
from tests.unit.cli.kit import VALIDATORS, CliNode, ServerThread, make_genesis, message, run
from tests.unit.cli.test_audit import leveldb_home


def _file(genesis: Genesis, tmp_path: Path, name: str) -> str:
    path = tmp_path / name
    path.write_text(genesis.to_json())
    return str(path)


@pytest.fixture
def same_validators(node: CliNode, tmp_path: Path) -> Genesis:
    """Same chain id, validators and organisations; another genesis time, so another chain."""
    other = make_genesis(node.genesis.genesis_time_ms - 1000)
    assert other.hash != node.genesis.hash
    return other


@pytest.fixture
def other_file(same_validators: Genesis, tmp_path: Path) -> str:
    return _file(same_validators, tmp_path, "other.json")


def _mismatch(node: CliNode, other: Genesis, text: str) -> None:
    lines = [line for line in text.splitlines() if "genesis mismatch" in line]
    assert len(lines) == 1, text
    assert (
        f"this chain's genesis is {node.genesis.hash.hex()}, yours is {other.hash.hex()}"
        in (lines[0])
    )
    assert "hash chain broken" not in text and "forged" not in text


def _commands(server: ServerThread, node: CliNode, key: str) -> list[list[str]]:
    tx = node.chain.block(1)
    assert tx is not None
    return [
        ["shipment", "provenance", "S-0001", "--key", key],
        ["shipment", "find", "--party", "oceanic", "--key", key],
        ["permit", "show", "P-0001"],
        ["permit", "check", "P-0001"],
        ["permit", "check", "P-0001", "--at", "2030-01-01"],
        ["block", "latest"],
        ["tx", "show", tx.txs[0].hash.hex(), "--key", key],
        ["proof", "export", "permit", "P-0001"],
        ["evidence", "list"],
    ]


def test_every_read_command_names_another_genesis(
    server: ServerThread, node: CliNode, same_validators: Genesis, other_file: str,
    keys: dict[str, str],
) -> None:  # fmt: skip
    for command in _commands(server, node, keys["officer"]):
        result = run([*command, "--node", server.url, "--genesis", other_file])
        assert result.exit_code == 1, (command, message(result))
        _mismatch(node, same_validators, message(result))


def test_another_chain_id_is_named_before_anything_is_asked_or_sent(
    server: ServerThread, node: CliNode, keys: dict[str, str], tmp_path: Path
) -> None:
    other = replace(node.genesis, chain_id="another-chain")
    other_file = _file(other, tmp_path, "other.json")
    height = node.chain.head().height
    sending = ["tx", "permit", "review", "P-0001", "--key", keys["clerk"]]
    for command in [*_commands(server, node, keys["officer"]), sending]:
        result = run([*command, "--node", server.url, "--genesis", other_file])
        assert result.exit_code == 1, (command, message(result))
        _mismatch(node, other, message(result))
        assert "the node serves chain 'cli-test', your genesis file is for 'another-chain'" in (
            message(result)
        )
    assert node.chain.head().height == height and len(node.mempool) == 0


def test_other_validators_are_a_genesis_mismatch(
    server: ServerThread, node: CliNode, keys: dict[str, str], tmp_path: Path
) -> None:
    validators = ValidatorSet((Validator("x", VALIDATORS[3].public_key, 1),))
    other = Genesis("cli-test", 0, validators, ())
    result = run(["permit", "show", "P-0001", "--node", server.url,
                  "--genesis", _file(other, tmp_path, "other.json")])  # fmt: skip
    assert result.exit_code == 1
    _mismatch(node, other, message(result))
    assert "validator set other than your genesis file's" in message(result)


def test_online_audit_names_another_genesis(
    server: ServerThread, node: CliNode, same_validators: Genesis, other_file: str,
    keys: dict[str, str],
) -> None:  # fmt: skip
    result = run(["audit", "verify", "--node", server.url, "--genesis", other_file,
                  "--key", keys["auditor"]])  # fmt: skip
    assert result.exit_code == 1
    _mismatch(node, same_validators, message(result))
    assert "audit FAILED" not in result.output


def test_offline_audit_names_another_genesis(
    node: CliNode, same_validators: Genesis, other_file: str, tmp_path: Path
) -> None:
    home = leveldb_home(node, tmp_path)
    result = run(["audit", "verify", "--home", str(home), "--genesis", other_file])
    assert result.exit_code == 1
    _mismatch(node, same_validators, message(result))


def test_a_store_without_its_genesis_hash_is_named_at_block_one(
    node: CliNode, same_validators: Genesis
) -> None:
    from node.audit import ChainAuditor, StoreSource

    report = ChainAuditor(same_validators, workers=0).run(StoreSource(node.store))
    mismatch = report.genesis_mismatch
    assert mismatch is not None and mismatch.height == 1
    _mismatch(node, same_validators, mismatch.problem)


def test_a_bundle_of_another_chain_names_both_genesis_hashes(
    server: ServerThread, node: CliNode, genesis_file: str, same_validators: Genesis,
    other_file: str, tmp_path: Path,
) -> None:  # fmt: skip
    bundle = tmp_path / "bundle.json"
    exported = run(["proof", "export", "permit", "P-0001", "--node", server.url,
                    "--genesis", genesis_file, "--out", str(bundle)])  # fmt: skip
    assert exported.exit_code == 0, message(exported)
    result = run(["proof", "verify", str(bundle), "--genesis", other_file])
    assert result.exit_code == 1
    _mismatch(node, same_validators, message(result))
