"""The CLI against a node that prunes blocks ([storage] block_keep_heights): ``tx show``
and ``block`` say the block has been pruned and where to ask, and ``audit verify --home``
on such a store checks what it holds and says what it could not check — never
"tampered" for a block pruning removed."""

from __future__ import annotations

import json
from pathlib import Path

from ledger.block_prune import prune_blocks_step
from node.config import NodeConfig
from tests.unit.cli.kit import CliNode, ServerThread, message, run
from tests.unit.cli.test_audit import leveldb_home


def _prune(node: CliNode, keep: int) -> int:
    """Prune ``node`` to its last ``keep`` blocks; the oldest height kept."""
    step = prune_blocks_step(node.store, node.chain.head().height, keep)
    assert step.done and step.blocks > 0
    return step.oldest


def test_tx_show_and_block_say_the_block_was_pruned(
    server: ServerThread, node: CliNode, genesis_file: str
) -> None:
    block = node.chain.block(2)
    assert block is not None
    tx_hash = block.txs[1].hash.hex()
    oldest = _prune(node, 2)
    assert oldest > 2
    shown = run(["tx", "show", tx_hash, "--node", server.url, "--genesis", genesis_file])
    text = message(shown)
    assert shown.exit_code != 0 and "block_pruned, HTTP 410" in text
    assert "committed at height 2 (index 1)" in text and "ask an archive node" in text
    old = run(["block", "2", "--node", server.url, "--genesis", genesis_file])
    assert old.exit_code != 0 and "block_pruned" in message(old)
    assert f"from height {oldest} on" in message(old)
    kept = run(["block", str(oldest), "--node", server.url, "--genesis", genesis_file])
    assert kept.exit_code == 0, message(kept)


def test_audit_verify_home_of_a_block_pruned_store(node: CliNode, tmp_path: Path) -> None:
    oldest = _prune(node, 3)
    home = leveldb_home(node, tmp_path)
    result = run(["audit", "verify", "--home", str(home), "--json", "--workers", "0"])
    assert result.exit_code == 0, message(result)
    doc = json.loads(result.stdout)
    assert doc["ok"] and doc["oldest_block_height"] == oldest and doc["heights"] == 0
    assert doc["linked"] == doc["tip"] == node.chain.head().height
    assert any(
        f"blocks 1 to {oldest - 1}: this node prunes blocks" in g for g in doc["not_checked"]
    )
    assert "every kept block" in doc["checked"][-1]
    claim = f"the store says it keeps blocks from height {oldest} on"
    assert any(claim in g and "config.toml could not be read" in g for g in doc["not_checked"])
    (home / "config.toml").write_text(NodeConfig().to_toml())  # an archive node's
    shown = run(["audit", "verify", "--home", str(home), "--workers", "0"])
    assert "what this block-pruned store holds checks out" in shown.output
    assert "not checked:" in shown.output and "chain checks out" not in shown.output
    assert "but its config.toml keeps every block" in " ".join(shown.output.split())
