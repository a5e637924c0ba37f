"""Canonical bytes are pinned: the demo's genesis, every demo transaction, and the blocks,
state and receipts it commits hash to the values in ``tests/vectors/demo_digest.json``.

A restructuring (issue 16) must leave every byte on the wire and in the store as it was;
any change to how a transaction, payload, record, block or receipt is encoded changes one
of these digests. To re-pin after a deliberate format change, run
``python -m tests.unit.test_bytes_unchanged > tests/vectors/demo_digest.json`` and say why
in the commit.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

from devnet.demo import DEFAULT_START_MS, demo_phases
from ledger.encoding import encode
from tests.unit.node.api.test_demo_confidential import CHAIN_ID, demo_node

PINNED = Path(__file__).resolve().parent.parent / "vectors" / "demo_digest.json"


def digests() -> dict[str, str | int]:
    node = demo_node()
    phases = demo_phases(CHAIN_ID, start_time_ms=DEFAULT_START_MS)
    txs = hashlib.sha256()
    count = 0
    for phase in phases:
        for tx in phase:
            txs.update(tx.hash)
            count += 1
    blocks = hashlib.sha256()
    receipts = hashlib.sha256()
    head = node.chain.head()
    for height in range(1, head.height + 1):
        block = node.chain.block(height)
        assert block is not None
        blocks.update(encode(block.to_obj()))
        for receipt in node.chain.receipts(height):
            receipts.update(encode(receipt.to_obj()))
    return {
        "genesis": node.genesis.hash.hex(),
        "transactions": count,
        "transaction_hashes": txs.hexdigest(),
        "height": head.height,
        "head_block": head.block_hash.hex(),
        "state_root": head.state_root.hex(),
        "log_root": head.log_root.hex(),
        "blocks": blocks.hexdigest(),
        "receipts": receipts.hexdigest(),
    }


def test_demo_bytes_match_the_pinned_digests() -> None:
    assert digests() == json.loads(PINNED.read_text())


if __name__ == "__main__":
    json.dump(digests(), sys.stdout, indent=2)
    sys.stdout.write("\n")
