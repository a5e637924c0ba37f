"""``cityledger validators`` and verified reads after a validator-set change: a rotation
of busan-0's key, committed with a test-only transaction kind (tests/unit/node/valset_kit.py).
From the effective height on, blocks are certified by the new set only; the CLI checks
them with the genesis file alone, through the certified history it fetches and caches,
and refuses a node that hides the change."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ledger.crypto import PrivateKey
from ledger.validators import ValidatorUpdate
from lightclient import validator_history as vh
from tests.unit.cli.kit import VALIDATORS, CliNode, key, lying_proxy, message, run, serve
from tests.unit.node.valset_kit import registered, updates_tx

NEW = PrivateKey.from_label("cli-validator-rotated")


@pytest.fixture
def rotated(node: CliNode, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[int]:
    """The node's chain with busan-0 rotated to NEW; yields the effective height."""
    monkeypatch.setenv("CITYLEDGER_CACHE", str(tmp_path / "cache"))
    admin = key("customs-admin")
    nonce = node.nonces.get(admin.public_key, 0)
    node.nonces[admin.public_key] = nonce + 1
    change = updates_tx(
        admin,
        node.genesis.chain_id,
        nonce,
        ValidatorUpdate(VALIDATORS[0].public_key, 0, "busan-0"),
        ValidatorUpdate(NEW.public_key, 1, "busan-0"),
    )
    with registered():
        block = node.commit([change])
        assert node.chain.receipts(block.height)[0].ok
        node.commit([])
        node.validator_keys = [NEW, *VALIDATORS[1:]]  # the old busan-0 key signs no more
        node.commit([])
        node.commit([])
        yield block.height + 2
    vh.forget(node.genesis)


def test_validators_shows_the_verified_set_and_its_history(
    node: CliNode, rotated: int, genesis_file: str
) -> None:
    server = serve(node)
    try:
        base = ["validators", "--node", server.url, "--genesis", genesis_file]
        now = run([*base, "--json"])
        assert now.exit_code == 0, message(now)
        doc: dict[str, Any] = json.loads(now.stdout)
        keys = {v["public_key"] for v in doc["validators"]}
        assert NEW.public_key.hex() in keys and VALIDATORS[0].public_key.hex() not in keys
        assert [c["from_height"] for c in doc["history"]] == [rotated]
        before = run([*base, "--height", str(rotated - 1), "--json"])
        assert before.exit_code == 0, message(before)
        assert VALIDATORS[0].public_key.hex() in before.stdout
        block = run(["block", "latest", "--node", server.url, "--genesis", genesis_file])
        assert block.exit_code == 0, message(block)
        assert "verified at height" in block.output and "busan-0" in block.output
    finally:
        server.stop()


def test_a_node_hiding_the_change_is_refused(
    node: CliNode, rotated: int, genesis_file: str
) -> None:
    def hide(path: str, answer: dict) -> dict:  # type: ignore[type-arg]
        if path.startswith("/v1/validators"):
            answer["history"] = []
        return answer

    server = serve(node)
    proxy = lying_proxy(server.url, hide)
    try:
        result = run(["block", "latest", "--node", proxy.url, "--genesis", genesis_file])
        assert result.exit_code != 0
        assert "validator set" in message(result)
        # once the honest node was asked, the cached history outlives the liar's silence
        honest = run(["validators", "--node", server.url, "--genesis", genesis_file])
        assert honest.exit_code == 0, message(honest)
        vh.forget(node.genesis)
        again = run(["block", "latest", "--node", proxy.url, "--genesis", genesis_file])
        assert again.exit_code == 0, message(again)
    finally:
        proxy.stop()
        server.stop()


def test_a_forged_change_is_refused(node: CliNode, rotated: int, genesis_file: str) -> None:
    def forge(path: str, answer: dict) -> dict:  # type: ignore[type-arg]
        if path.startswith("/v1/validators") and answer.get("history"):
            answer["history"][0]["validators"][0]["power"] = 9
        return answer

    server = serve(node)
    proxy = lying_proxy(server.url, forge)
    try:
        result = run(["validators", "--node", proxy.url, "--genesis", genesis_file])
        assert result.exit_code != 0
        assert "not the one header" in message(result)
    finally:
        proxy.stop()
        server.stop()


def test_a_bundle_made_after_the_change_verifies_offline_with_genesis_alone(
    node: CliNode,
    rotated: int,
    genesis_file: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = serve(node)
    bundle = tmp_path / "bundle.json"
    try:
        export = ["proof", "export", "permit", "P-0001", "--node", server.url]
        made = run([*export, "--genesis", genesis_file, "--out", str(bundle)])
        assert made.exit_code == 0, message(made)
    finally:
        server.stop()
    assert json.loads(bundle.read_text())["height"] >= rotated  # certified by the new set
    vh.forget(node.genesis)  # a fresh process: nothing known, an empty cache
    monkeypatch.setenv("CITYLEDGER_CACHE", str(tmp_path / "empty"))
    result = run(["proof", "verify", str(bundle), "--genesis", genesis_file])
    assert result.exit_code == 0, message(result)
    assert "busan-0" in result.output
