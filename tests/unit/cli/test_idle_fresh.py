"""An idle network: the permit's last block is ten minutes old, yet ``permit check``
verifies within ``--max-age 10`` when the node hands over head statements by validators
with more than 2/3 of the power, and refuses when they do not prove it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ledger.block import Block
from ledger.tx import Transaction
from tests.unit.cli.kit import (
    VALIDATORS,
    CliNode,
    ServerThread,
    build_permit,
    message,
    now_ms,
    run,
)

IDLE_MS = 10 * 60_000


class IdleNode(CliNode):
    """Blocks one second apart, the last one ``IDLE_MS`` before the test runs."""

    def __init__(self) -> None:
        super().__init__()
        self.next_ms = now_ms() - IDLE_MS - 60_000

    def commit(self, txs: list[Transaction], time_ms: int | None = None) -> Block:
        self.next_ms += 1000
        return super().commit(txs, self.next_ms if time_ms is None else time_ms)


@pytest.fixture
def node() -> IdleNode:
    """The conftest's ``server`` and ``genesis_file`` serve this node."""
    n = IdleNode()
    build_permit(n)
    return n


def check(server: ServerThread, genesis: str, *extra: str) -> Any:
    return run(["permit", "check", "P-0001", "--node", server.url, "--genesis", genesis,
                "--max-age", "10", *extra])  # fmt: skip


def test_an_old_block_without_statements_is_stale(server: ServerThread, genesis_file: str) -> None:
    result = check(server, genesis_file)
    assert result.exit_code == 1
    assert "is stale: its certified block, height 4, is 10 min" in message(result)
    assert "head statements" not in message(result)  # the node served none


def test_head_statements_by_three_of_four_make_it_fresh(
    node: IdleNode, server: ServerThread, genesis_file: str
) -> None:
    server.call(lambda: node.sign_head(VALIDATORS[:3], now_ms() - 2000))
    result = check(server, genesis_file)
    assert result.exit_code == 0, message(result)
    assert "still the head 2 s ago" in result.output
    assert "head statements by busan-0, sejong-1, incheon-2 (3 of 4 voting power)" in result.output
    doc = json.loads(check(server, genesis_file, "--json").stdout)
    assert doc["valid"] is True and doc["head_signed_by"] == ["busan-0", "sejong-1", "incheon-2"]
    assert doc["age_ms"] < 10_000 < now_ms() - doc["block_time_ms"]


def test_a_byzantine_validator_alone_cannot_vouch_for_it(
    node: IdleNode, server: ServerThread, genesis_file: str
) -> None:
    """One validator (a byzantine one, or a node lying with its own key) signs it as the
    head now; the others' statements are as old as the block: refused."""

    def sign() -> None:
        node.sign_head(VALIDATORS[:3], node.chain.head().time_ms)
        old = node.heads
        node.sign_head(VALIDATORS[3:], now_ms())
        node.heads = old + node.heads

    server.call(sign)
    result = check(server, genesis_file)
    assert result.exit_code == 1
    assert "is stale" in message(result) and "prove it the head only 10 min" in message(result)
