"""The /v1/events WebSocket: blocks, a sender's receipts and a shipment's events, pushed."""

from __future__ import annotations

import asyncio

from aiohttp import WSMsgType

from contracts.read_rules import Reader
from ledger.encoding import decode, encode
from ledger.tx import Transaction
from node.api.disclosure import Disclosure
from node.api.routes_events import MAX_PER_CLIENT, Filter, frames_for, parse_subscription
from node.events import BlockPublished
from tests.unit.node.api.conftest import (
    GENESIS_TIME,
    SHIPMENT,
    Client,
    Clock,
    Scenario,
    TestNode,
    assert_error,
    key,
    signed,
)

TIMEOUT = 5.0


def arrival(node: TestNode) -> Transaction:
    # an event time within max_event_age_ms of the block
    payload = {
        "shipment_id": SHIPMENT,
        "event": "arrived",
        "place": "NLRTM",
        "time_ms": GENESIS_TIME + 3_600,
    }
    return node.tx("oceanic-carrier", "shipment.milestone", payload)


async def test_block_receipt_and_shipment_event_after_a_commit(
    client: Client, node: TestNode, clock: Clock
) -> None:
    carrier = key("oceanic-carrier").public_key
    headers = signed("oceanic-carrier", "/v1/events", clock)
    async with client.ws_connect("/v1/events", headers=headers) as ws:
        await ws.send_json({"blocks": True, "sender": carrier.hex(), "shipment": SHIPMENT})
        ack = await ws.receive_json(timeout=TIMEOUT)
        assert ack == {
            "type": "subscribed",
            "blocks": True,
            "sender": carrier.hex(),
            "shipment": SHIPMENT,
        }
        tx = arrival(node)
        block = node.commit([tx])
        frames = [await ws.receive_json(timeout=TIMEOUT) for _ in range(3)]
    assert [f["type"] for f in frames] == ["block", "receipt", "event"]
    assert frames[0]["height"] == block.height == 10
    assert frames[0]["hash"] == block.hash.hex() and frames[0]["tx_count"] == 1
    assert frames[1]["receipt"]["tx_hash"] == tx.hash.hex()
    assert frames[1]["status"] == "committed"
    assert frames[2]["event"]["type"] == "shipment.milestone"
    assert frames[2]["tx_hash"] == tx.hash.hex()


async def test_msgpack_frames(client: Client, node: TestNode) -> None:
    async with client.ws_connect("/v1/events", headers={"Accept": "application/msgpack"}) as ws:
        await ws.send_bytes(encode({"blocks": True}))
        ack = await ws.receive(timeout=TIMEOUT)
        assert ack.type == WSMsgType.BINARY
        assert decode(ack.data)["type"] == "subscribed"
        block = node.commit([])
        msg = await ws.receive(timeout=TIMEOUT)
    frame = decode(msg.data)
    assert frame["type"] == "block" and frame["hash"] == block.hash


async def test_only_what_was_asked_for(client: Client, node: TestNode, clock: Clock) -> None:
    headers = signed("customs-officer", "/v1/events", clock)
    async with client.ws_connect("/v1/events", headers=headers) as ws:
        await ws.send_json({"shipment": "OTHER-1"})
        assert (await ws.receive_json(timeout=TIMEOUT))["type"] == "subscribed"
        node.commit([arrival(node)])
        await ws.send_json({"blocks": True})  # replaces the subscription
        assert (await ws.receive_json(timeout=TIMEOUT))["type"] == "subscribed"
        node.commit([])
        frame = await ws.receive_json(timeout=TIMEOUT)
    assert frame["type"] == "block" and frame["height"] == 11


async def test_bad_subscription_gets_an_error_frame(client: Client, clock: Clock) -> None:
    headers = signed("customs-officer", "/v1/events", clock)
    async with client.ws_connect("/v1/events", headers=headers) as ws:
        for bad in ('{"blocks": 1}', '{"sender": "xyz"}', "[]", "{", '{"unknown": true}'):
            await ws.send_str(bad)
            frame = await ws.receive_json(timeout=TIMEOUT)
            assert frame["type"] == "error" and frame["error"]["code"] == "malformed"
        await ws.send_bytes(b"\xc1")
        assert (await ws.receive_json(timeout=TIMEOUT))["type"] == "error"
        await ws.send_json({"blocks": False})
        assert (await ws.receive_json(timeout=TIMEOUT))["type"] == "subscribed"


async def test_unsubscribes_when_the_client_leaves(client: Client, node: TestNode) -> None:
    async with client.ws_connect("/v1/events") as ws:
        await ws.send_json({"blocks": True})
        await ws.receive_json(timeout=TIMEOUT)
        assert len(node.events) == 1
    for _ in range(100):
        if len(node.events) == 0:
            break
        await asyncio.sleep(0.01)
    assert len(node.events) == 0


async def test_plain_get_is_400(client: Client) -> None:
    response = await client.get("/v1/events")
    await assert_error(response, 400, "malformed")


def test_frames_for_filters(node: TestNode, scenario: Scenario) -> None:
    block = node.chain.block(1)
    assert block is not None
    event = BlockPublished(block, tuple(node.chain.receipts(1)))
    auditor = Disclosure.over(Reader("audit-office", frozenset({"auditor"})), node.store)
    assert frames_for(event, Filter(), auditor) == []
    acme = key("acme-trader").public_key
    receipts = frames_for(event, Filter(sender=acme), auditor)
    assert [f["receipt"]["index"] for f in receipts] == [0, 2]  # declare, permit.apply
    shipment = frames_for(event, Filter(shipment=SHIPMENT), auditor)
    assert [f["event"]["type"] for f in shipment] == ["shipment.declared"]
    # an unrelated member gets the public permit.apply receipt and nothing of the shipment
    stranger = Disclosure.over(Reader("wind-coop", frozenset({"prosumer"})), node.store)
    receipts = frames_for(event, Filter(sender=acme), stranger)
    assert [f["receipt"]["index"] for f in receipts] == [2]
    assert frames_for(event, Filter(shipment=SHIPMENT), stranger) == []


async def test_receipts_and_events_need_a_signed_subscription(
    client: Client, node: TestNode, clock: Clock
) -> None:
    """An unsigned /v1/events subscription does not stream a shipment's events."""
    for subscription in ({"shipment": SHIPMENT}, {"sender": key("acme-trader").public_key.hex()}):
        async with client.ws_connect("/v1/events") as ws:
            await ws.send_json(subscription)
            frame = await ws.receive_json(timeout=TIMEOUT)
            assert frame["type"] == "error"
            assert frame["error"]["code"] == "signature_required"
            node.commit([arrival(node)])
            await ws.send_json({"blocks": True})
            assert (await ws.receive_json(timeout=TIMEOUT))["type"] == "subscribed"


async def test_each_frame_follows_the_read_rules_of_its_subscriber(
    client: Client, node: TestNode, clock: Clock
) -> None:
    """A member of an unrelated organisation subscribed to the shipment gets no frame of it."""
    headers = signed("wind-prosumer", "/v1/events", clock)
    async with client.ws_connect("/v1/events", headers=headers) as ws:
        await ws.send_json({"shipment": SHIPMENT, "blocks": True})
        assert (await ws.receive_json(timeout=TIMEOUT))["type"] == "subscribed"
        block = node.commit([arrival(node)])
        frame = await ws.receive_json(timeout=TIMEOUT)
        assert frame["type"] == "block" and frame["height"] == block.height
        node.commit([])
        frame = await ws.receive_json(timeout=TIMEOUT)
        assert frame["type"] == "block" and frame["height"] == block.height + 1


async def test_one_client_cannot_take_every_subscription_slot(client: Client) -> None:
    """One client cannot hold all 1,024 subscriptions."""
    open_sockets = []
    try:
        for _ in range(MAX_PER_CLIENT):
            open_sockets.append(await client.ws_connect("/v1/events"))
        response = await client.get(
            "/v1/events",
            headers={
                "Connection": "Upgrade",
                "Upgrade": "websocket",
                "Sec-WebSocket-Version": "13",
                "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
            },
        )
        await assert_error(response, 429, "too_many_subscribers")
    finally:
        for ws in open_sockets:
            await ws.close()
    async with client.ws_connect("/v1/events") as ws:  # a slot is free again
        await ws.send_json({"blocks": True})
        assert (await ws.receive_json(timeout=TIMEOUT))["type"] == "subscribed"


def test_parse_subscription_forms() -> None:
    carrier = key("oceanic-carrier").public_key
    assert parse_subscription(encode({"sender": carrier})).sender == carrier
    assert parse_subscription('{"sender": "' + carrier.hex() + '"}').sender == carrier
    assert parse_subscription("{}") == Filter()
