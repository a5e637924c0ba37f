"""``GET /v1/shipments/{id}/epcis``: the history as an EPCIS 2.0 document, valid against
GS1's schema, for the shipment's readers only, naming committed transactions."""

from __future__ import annotations

from aiohttp.test_utils import TestClient, TestServer

from devnet.demo import DEFAULT_START_MS, demo_summary
from ledger.crypto import PrivateKey
from node.api.app import make_app
from node.api.auth import sign_request
from node.config import APIConfig
from tests.unit.epcis_kit import schema_errors
from tests.unit.node.api.conftest import SHIPMENT, Client, Clock, TestNode, get_obj, signed
from tests.unit.node.api.test_demo_confidential import (
    CHAIN_ID,
    committed,
    demo_node,
)

PATH = f"/v1/shipments/{SHIPMENT}/epcis"


async def test_readers_get_a_valid_document(client: Client, node: TestNode, clock: Clock) -> None:
    response = await client.get(PATH, headers=signed("customs-officer", PATH, clock))
    assert response.status == 200, await response.text()
    assert response.content_type == "application/ld+json"
    doc = await response.json()
    assert schema_errors(doc) == []
    events = doc["epcisBody"]["eventList"]
    record_path = f"/v1/shipments/{SHIPMENT}"
    _, answer = await get_obj(client, record_path, signed("customs-officer", record_path, clock))
    history = [item["record"] for item in answer["history"]]
    assert [e["cityledger:txHash"] for e in events] == [h["tx_hash"].hex() for h in history]
    assert [e["cityledger:event"] for e in events] == [h["event"] for h in history]
    committed = {tx.hash for h in range(1, node.chain.head().height + 1)
                 for tx in node.chain.block(h).txs}  # fmt: skip
    assert all(h["tx_hash"] in committed for h in history)


async def test_the_same_refusals_as_the_record(client: Client, clock: Clock) -> None:
    unsigned = await client.get(PATH)
    assert unsigned.status == 401
    outsider = await client.get(PATH, headers=signed("outsider-trader", PATH, clock))
    assert outsider.status == 403
    body = await outsider.text()
    assert "mobile phones" not in body and "urn:epc" not in body
    missing = "/v1/shipments/NOPE-1/epcis"
    officer = signed("customs-officer", missing, clock)
    assert (await client.get(missing, headers=officer)).status == 404


async def test_every_demo_shipment_exports_a_valid_document() -> None:
    """The issue's done-when: the demo's shipments (every stage and customs decision it
    reaches) export documents GS1's schema accepts."""
    auditor = PrivateKey.from_label(str(demo_summary()["auditor_label"]))
    node = demo_node()
    ids = [str(tx.payload["id"]) for tx in committed(node) if tx.kind == "shipment.declare"]
    assert len(ids) > 50
    now = DEFAULT_START_MS + 3_600_000
    app = make_app(node, APIConfig(), clock=Clock(now))
    async with TestClient(TestServer(app)) as demo:
        decisions = await _exported_dispositions(demo, auditor, node.public_key, ids, now)
    assert {"active", "in_transit", "unavailable", "conformant"} <= decisions


async def _exported_dispositions(
    client: Client, reader: PrivateKey, node_key: bytes, ids: list[str], now: int
) -> set[str]:
    """Every shipment's export, checked against the schema; the dispositions they use."""
    decisions: set[str] = set()
    for shipment_id in ids:
        path = f"/v1/shipments/{shipment_id}/epcis"
        headers = sign_request(reader, CHAIN_ID, node_key, "GET", path, b"", now)
        response = await client.get(path, headers=headers)
        assert response.status == 200, (shipment_id, await response.text())
        doc = await response.json()
        assert schema_errors(doc) == [], shipment_id
        decisions |= {e.get("disposition", "") for e in doc["epcisBody"]["eventList"]}
    return decisions
