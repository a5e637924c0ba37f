"""An idle network: the permit's last block is ten minutes old, yet ``permit check``
verifies within ``--max-age 10`` when the node hands over head statements by validators
with more than 2/3 of the power, and refuses when they do not prove it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
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
    serve,
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
def idle() -> IdleNode:
    node = IdleNode()
    build_permit(node)
    return node


@pytest.fixture
def idle_server(idle: IdleNode) -> Iterator[ServerThread]:
    s = serve(idle)
    yield s
    s.stop()


@pytest.fixture
def genesis(idle: IdleNode, tmp_path: Path) -> str:
    path = tmp_path / "genesis.json"
    path.write_text(idle.genesis.to_json())
    return str(path)


def check(server: ServerThread, genesis: str, *extra: str) -> Any:
    return run(["permit", "check", "P-0001", "--node", server.url, "--genesis", genesis,
                "--max-age", "10", *extra])  # fmt: skip


def test_an_old_block_without_statements_is_stale(idle_server: ServerThread, genesis: str) -> None:
    result = check(idle_server, genesis)
    assert result.exit_code == 1
    assert "is stale" in message(result) and "0 of 4 voting power" in message(result)


def test_head_statements_by_three_of_four_make_it_fresh(
    idle: IdleNode, idle_server: ServerThread, genesis: str
) -> None:
    idle_server.call(lambda: idle.sign_head(VALIDATORS[:3], now_ms() - 2000))
    result = check(idle_server, genesis)
    assert result.exit_code == 0, message(result)
    assert "still the head 2 s ago" in result.output
    assert "head statements by busan-0, sejong-1, incheon-2 (3 of 4 voting power)" in result.output
    doc = json.loads(check(idle_server, genesis, "--json").stdout)
    assert doc["valid"] is True and doc["head_signed_by"] == ["busan-0", "sejong-1", "incheon-2"]
    assert doc["age_ms"] < 10_000 < now_ms() - doc["block_time_ms"]


def test_a_byzantine_validator_alone_cannot_vouch_for_it(
    idle: IdleNode, idle_server: ServerThread, genesis: str
) -> None:
    """One validator (a byzantine one, or a node lying with its own key) signs it as the
    head now; the others' statements are as old as the block: refused."""

    def sign() -> None:
        idle.sign_head(VALIDATORS[:3], idle.chain.head().time_ms)
        old = idle.heads
        idle.sign_head(VALIDATORS[3:], now_ms())
        idle.heads = old + idle.heads

    idle_server.call(sign)
    result = check(idle_server, genesis)
    assert result.exit_code == 1
    assert "is stale" in message(result) and "prove it the head only 10 min" in message(result)
