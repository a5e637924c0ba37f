"""The API of a node that prunes blocks ([storage] block_keep_heights): a pruned
height's block and a pruned transaction's receipt answer 410 ``block_pruned`` (for any
reader: the message names only the height the certified header already tells), while
its certificate, the log proofs and the kept blocks answer as before; ``/v1/status``
names the oldest kept block."""

from __future__ import annotations

from ledger.block_prune import prune_blocks_step
from tests.unit.node.api.conftest import (
    Client,
    Clock,
    Scenario,
    TestNode,
    assert_error,
    get_obj,
    signed,
)


async def test_every_road_to_a_pruned_block_says_block_pruned(
    client: Client, node: TestNode, scenario: Scenario, clock: Clock
) -> None:
    head = node.chain.head().height
    status, before = await get_obj(client, "/v1/status")
    assert status == 200 and before["oldest_block_height"] == 1  # an archive node
    declared = node.chain.tx_location(scenario.declare.hash)
    assert declared is not None and declared[0] < 3
    path = f"/v1/blocks/{declared[0]}"
    assert (await client.get(path)).status == 200  # the public's answer, now kept
    tx_path = f"/v1/txs/{scenario.declare.hash.hex()}"
    answer = await client.get(tx_path, headers=signed("acme-trader", tx_path, clock))
    assert answer.status == 200  # and its block's proofs, now cached
    prune_blocks_step(node.store, head, head - 2)  # keeps blocks 3 .. head
    await assert_error(await client.get(path), 410, "block_pruned")
    await assert_error(
        await client.get(path, headers=signed("auditor", path, clock)), 410, "block_pruned"
    )
    response = await client.get(tx_path, headers=signed("acme-trader", tx_path, clock))
    await assert_error(response, 410, "block_pruned")
    message = (await response.json())["error"]["message"]
    assert f"committed at height {declared[0]}" in message and "archive node" in message
    status, cert = await get_obj(client, f"{path}/certificate")  # light clients still check
    assert status == 200 and cert["header"]["height"] == declared[0]  # type: ignore[index]
    status, kept = await get_obj(client, "/v1/blocks/3")
    assert status == 200 and kept["height"] == 3  # type: ignore[index]
    status, after = await get_obj(client, "/v1/status")
    assert after["oldest_block_height"] == 3  # type: ignore[index]
    await assert_error(await client.get(f"/v1/blocks/{head + 1}"), 404, "not_found")
