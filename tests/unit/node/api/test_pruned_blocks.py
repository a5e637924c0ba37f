"""Blocks older than a pruning node's window (docs/operations.md, "Pruning"): still
served — their roots check — but a payload whose read rule needs that height's state is
redacted for every reader but an auditor (fail closed); public ones stay visible."""

from __future__ import annotations

from ledger.state_prune import prune_step
from tests.unit.node.api.conftest import Client, Clock, TestNode, get_obj, signed


def _height_of(node: TestNode, kind: str) -> int:
    head = node.chain.head().height
    return next(
        h for h in range(1, head + 1) if any(t.kind == kind for t in node.queries.block(h).txs)
    )


async def _redacted(client: Client, clock: Clock, height: int, who: str | None) -> list[int]:
    path = f"/v1/blocks/{height}"
    status, answer = await get_obj(client, path, None if who is None else signed(who, path, clock))
    assert status == 200, answer
    return list(answer["redacted"])


async def test_old_blocks_are_served_with_what_needs_their_state_redacted(
    client: Client, node: TestNode, clock: Clock
) -> None:
    declared = _height_of(node, "shipment.declare")
    kinds = [tx.kind for tx in node.queries.block(declared).txs]
    declare, permit = kinds.index("shipment.declare"), kinds.index("permit.apply")
    assert declare not in await _redacted(client, clock, declared, "acme-trader")  # consignor
    head = node.chain.head()
    prune_step(node.store, head.height, 1)
    assert declared < head.height
    hidden = await _redacted(client, clock, declared, "acme-trader")
    assert declare in hidden and permit not in hidden  # permits are public: no state needed
    assert await _redacted(client, clock, declared, "auditor") == []
