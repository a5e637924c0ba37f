"""Submitting transactions (JSON and msgpack, single and batch) and proven receipts."""

from __future__ import annotations

import json

import msgpack
import pytest
from aiohttp.test_utils import TestClient, TestServer

from ledger.block import Receipt
from ledger.encoding import Value, decode, encode
from ledger.merkle import InclusionProof, leaf_hash
from ledger.tx import Transaction
from node.api.app import make_app
from node.config import APIConfig
from node.mempool import MempoolError
from tests.unit.node.api.conftest import (
    CHAIN_ID,
    MSGPACK,
    Client,
    Clock,
    Scenario,
    TestNode,
    assert_error,
    check_certified,
    get_obj,
    key,
    milestone,
    read_signed,
    signed,
)


async def post_json(client: Client, body: object) -> tuple[int, Value]:
    response = await client.post("/v1/txs", json=body)
    return response.status, await response.json()


# --- submit -------------------------------------------------------------------------------------


async def test_submit_one_then_pending_then_committed(client: Client, node: TestNode) -> None:
    tx = milestone(node)
    status, body = await post_json(client, {"tx": tx.encode().hex()})
    assert (status, body) == (202, {"hash": tx.hash.hex(), "status": "pending"})
    assert tx.hash in node.mempool

    response = await client.get(f"/v1/txs/{tx.hash.hex()}")
    assert response.status == 202
    assert (await response.json())["status"] == "pending"

    node.commit(node.mempool.reap(100, 1 << 20))
    status, answer = await get_obj(client, f"/v1/txs/{tx.hash.hex()}")
    assert status == 200 and answer["status"] == "committed"
    assert answer["receipt"]["height"] == 10


async def test_submit_batch_json_reports_each_item(client: Client, node: TestNode) -> None:
    first, second = milestone(node), milestone(node, "NLAMS")
    stale = Transaction.create(key("acme-trader"), CHAIN_ID, "shipment.milestone", 0, {})
    hexes = [
        first.encode().hex(),
        second.encode().hex(),
        first.encode().hex(),
        stale.encode().hex(),
    ]
    status, body = await post_json(client, {"txs": hexes})
    assert status == 200
    results = body["results"]
    assert [r["status"] for r in results] == ["pending", "pending", "rejected", "rejected"]
    assert results[0]["hash"] == first.hash.hex()
    assert results[2]["error"]["code"] == "duplicate"
    assert results[3]["error"]["code"] == "bad_nonce"
    assert "error" not in results[0]


async def test_submit_batch_msgpack(client: Client, node: TestNode) -> None:
    txs = [milestone(node), milestone(node, "NLAMS")]
    response = await client.post(
        "/v1/txs",
        data=encode({"txs": [tx.encode() for tx in txs]}),
        headers={"Content-Type": "application/msgpack", **MSGPACK},
    )
    assert response.status == 200
    answer = decode(await response.read())
    assert [r["hash"] for r in answer["results"]] == [tx.hash for tx in txs]
    assert all(r["status"] == "pending" for r in answer["results"])


async def test_submit_single_msgpack(client: Client, node: TestNode) -> None:
    tx = milestone(node)
    response = await client.post(
        "/v1/txs", data=encode({"tx": tx.encode()}), headers={"Content-Type": "application/msgpack"}
    )
    assert response.status == 202
    assert (await response.json())["hash"] == tx.hash.hex()


@pytest.mark.parametrize(
    "body",
    [
        {"tx": "zz"},
        {"tx": "0"},
        {"tx": " 00"},
        {"tx": ""},
        {"tx": 5},
        {"txs": []},
        {"txs": "00"},
        {"txs": [1]},
        {"tx": "00", "txs": ["00"]},
        {"other": 1},
        [],
        "text",
    ],
)
async def test_submit_malformed_json_is_400(client: Client, body: object) -> None:
    status, answer = await post_json(client, body)
    assert status == 400
    assert answer["error"]["code"] == "malformed"


async def test_submit_not_json_is_400(client: Client) -> None:
    for data in (b"{", b"\xff\xfe", b"[" * 100_000, b'{"tx": NaN}', b"null", b""):
        response = await client.post(
            "/v1/txs", data=data, headers={"Content-Type": "application/json"}
        )
        await assert_error(response, 400, "malformed")


async def test_non_canonical_transaction_is_400(client: Client, node: TestNode) -> None:
    tx = milestone(node)
    obj = tx.to_obj()
    # the same map with its keys in the wrong order is not canonical
    unsorted = msgpack.packb(dict(reversed(list(obj.items()))), use_bin_type=True)
    # a field of the wrong type
    wrong_type = encode({**obj, "nonce": "0"})
    # trailing bytes
    trailing = tx.encode() + b"\x00"
    for raw in (unsorted, wrong_type, trailing, b"\xc1"):
        status, body = await post_json(client, {"tx": raw.hex()})
        assert status == 400, raw
        assert body["error"]["code"] == "malformed"


async def test_batch_with_one_malformed_item_names_it(client: Client, node: TestNode) -> None:
    status, body = await post_json(client, {"txs": [milestone(node).encode().hex(), "00"]})
    assert status == 400
    assert "transaction 1" in body["error"]["message"]


async def test_non_canonical_msgpack_body_is_400(client: Client) -> None:
    bad = msgpack.packb({"txs": [b"x"], "a": 1}, use_bin_type=True)
    response = await client.post(
        "/v1/txs", data=bad, headers={"Content-Type": "application/msgpack"}
    )
    assert response.status == 400


async def test_bad_signature_is_401(client: Client, node: TestNode) -> None:
    tx = milestone(node)
    forged = Transaction(tx.kind, tx.chain_id, tx.sender, tx.nonce, tx.payload, bytes(64))
    status, body = await post_json(client, {"tx": forged.encode().hex()})
    assert status == 401
    assert body["error"]["code"] == "bad_signature"


async def test_unknown_sender_is_403(client: Client) -> None:
    tx = Transaction.create(key("stranger"), CHAIN_ID, "shipment.milestone", 0, {})
    status, body = await post_json(client, {"tx": tx.encode().hex()})
    assert status == 403
    assert body["error"]["code"] == "unknown_sender"


async def test_used_nonce_and_duplicate_are_409(client: Client, node: TestNode) -> None:
    stale = Transaction.create(key("acme-trader"), CHAIN_ID, "shipment.milestone", 0, {})
    status, body = await post_json(client, {"tx": stale.encode().hex()})
    assert (status, body["error"]["code"]) == (409, "bad_nonce")

    tx = milestone(node)
    assert (await post_json(client, {"tx": tx.encode().hex()}))[0] == 202
    status, body = await post_json(client, {"tx": tx.encode().hex()})
    assert (status, body["error"]["code"]) == (409, "duplicate")


async def test_committed_transaction_resubmitted_is_409(client: Client, scenario: Scenario) -> None:
    status, body = await post_json(client, {"tx": scenario.declare.encode().hex()})
    assert status == 409
    assert body["error"]["code"] in ("duplicate", "bad_nonce")


async def test_wrong_chain_is_400(client: Client) -> None:
    tx = Transaction.create(key("acme-trader"), "other-chain", "shipment.milestone", 9, {})
    status, body = await post_json(client, {"tx": tx.encode().hex()})
    assert (status, body["error"]["code"]) == (400, "wrong_chain")


async def test_unsupported_content_type_is_415(client: Client) -> None:
    response = await client.post("/v1/txs", data=b"{}", headers={"Content-Type": "text/plain"})
    await assert_error(response, 415, "unsupported_media_type")


async def test_body_over_the_limit_is_413_json(node: TestNode, clock: Clock) -> None:
    app = make_app(node, APIConfig(max_body_bytes=1024), clock=clock)
    async with TestClient(TestServer(app)) as c:
        response = await c.post("/v1/txs", data=json.dumps({"tx": "00" * 2000}))
        await assert_error(response, 413, "too_large")


async def test_mempool_full_is_429(client: Client, node: TestNode) -> None:
    node.mempool.max_txs = 0
    tx = milestone(node)
    status, body = await post_json(client, {"tx": tx.encode().hex()})
    assert (status, body["error"]["code"]) == (429, "mempool_full")
    response = await client.post("/v1/txs", json={"txs": [tx.encode().hex()]})
    assert response.status == 429
    assert (response.headers["Retry-After"], response.headers["Retry-After-Ms"]) == ("1", "1000")
    assert (await response.json())["error"]["code"] == "mempool_full"


async def test_a_full_mempool_refuses_before_decoding_or_checking_signatures(
    client: Client, node: TestNode, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under overload, decoding and signature checks would only end in the same 429."""
    submitted: list[int] = []

    async def counting_submit(txs: list[Transaction]) -> list[MempoolError | None]:
        submitted.append(len(txs))
        return [None] * len(txs)

    monkeypatch.setattr(node, "submit", counting_submit)
    not_a_tx = {"txs": ["00", milestone(node).encode().hex()]}
    status, body = await post_json(client, not_a_tx)
    assert (status, body["error"]["code"]) == (400, "malformed"), "room: item 0 is decoded"
    node.mempool.max_txs = 0
    response = await client.post("/v1/txs", json=not_a_tx)
    assert response.status == 429 and response.headers["Retry-After"] == "1"
    assert (await response.json())["error"]["code"] == "mempool_full"
    assert submitted == [], "nothing reached the node"
    status, body = await post_json(client, {"not": "a submission"})
    assert (status, body["error"]["code"]) == (429, "mempool_full"), "the body is not read"
    node.mempool.max_txs = 100
    status, body = await post_json(client, {"not": "a submission"})
    assert status == 400, "with room, a malformed envelope is a 400"


# --- receipts -----------------------------------------------------------------------------------


async def test_receipt_with_proofs_verifies(
    client: Client, node: TestNode, scenario: Scenario, clock: Clock
) -> None:
    tx = scenario.custody_accept
    path = f"/v1/txs/{tx.hash.hex()}"
    answer = await read_signed(client, "oceanic-carrier", path, clock)
    header = check_certified(answer, node.genesis)
    receipt = Receipt.from_obj(answer["receipt"])
    assert receipt.tx_hash == tx.hash and receipt.ok and answer["status"] == "committed"
    assert (receipt.height, receipt.index) == (3, 0)
    assert receipt.events[0].type == "shipment.custody_transferred"
    InclusionProof.from_obj(answer["block_proof"]).verify(leaf_hash(tx.hash), header.tx_root)
    InclusionProof.from_obj(answer["log_proof"]).verify(leaf_hash(tx.hash), header.log_root)
    InclusionProof.from_obj(answer["results_proof"]).verify(
        leaf_hash(receipt.hash), header.results_root
    )


async def test_every_receipt_of_a_block_verifies_and_the_block_is_read_once(
    client: Client, node: TestNode, monkeypatch: pytest.MonkeyPatch, clock: Clock
) -> None:
    payload: dict[str, Value] = {"shipment_id": "NOPE", "event": "arrived", "place": "KRPUS"}
    txs = [node.tx("acme-trader", "shipment.milestone", payload) for _ in range(7)]
    block = node.commit(txs)
    reads: list[int] = []
    real = node.chain.block
    monkeypatch.setattr(node.chain, "block", lambda h: reads.append(h) or real(h))
    for index, tx in enumerate(txs):
        path = f"/v1/txs/{tx.hash.hex()}"
        answer = await read_signed(client, "acme-trader", path, clock)
        header = check_certified(answer, node.genesis)
        assert header.hash == block.hash
        receipt = Receipt.from_obj(answer["receipt"])
        assert (receipt.tx_hash, receipt.index, receipt.ok) == (tx.hash, index, False)
        InclusionProof.from_obj(answer["block_proof"]).verify(leaf_hash(tx.hash), header.tx_root)
        InclusionProof.from_obj(answer["log_proof"]).verify(leaf_hash(tx.hash), header.log_root)
        InclusionProof.from_obj(answer["results_proof"]).verify(
            leaf_hash(receipt.hash), header.results_root
        )
    assert reads == [block.height]  # seven receipts, one decode of their block


async def test_failed_receipt(client: Client, scenario: Scenario, clock: Clock) -> None:
    """The sender's own organisation reads its receipt, failure message included."""
    path = f"/v1/txs/{scenario.failed.hash.hex()}"
    response = await client.get(path, headers=signed("outsider-trader", path, clock))
    assert response.status == 200
    body = await response.json()
    assert body["status"] == "failed"
    assert body["receipt"]["code"] == "forbidden"
    assert body["receipt"]["events"] == []


async def test_unknown_receipt_is_404(client: Client) -> None:
    response = await client.get("/v1/txs/" + "ab" * 32)
    await assert_error(response, 404, "not_found")


async def test_bad_receipt_hash_is_400(client: Client) -> None:
    for text in ("ab", "zz" * 32, "ab" * 33):
        response = await client.get(f"/v1/txs/{text}")
        assert response.status == 400


@pytest.mark.parametrize("reader", [None, "wind-prosumer"])
async def test_a_receipt_is_redacted_for_who_may_not_see_it_and_still_proves_its_place(
    client: Client, node: TestNode, scenario: Scenario, clock: Clock, reader: str | None
) -> None:
    """GET /v1/txs/{hash} shows a shipment transaction's events only to readers allowed them."""
    tx = scenario.custody_accept
    path = f"/v1/txs/{tx.hash.hex()}"
    headers = None if reader is None else signed(reader, path, clock)
    status, answer = await get_obj(client, path, headers)
    assert status == 200 and answer["status"] == "committed"
    stub = answer["receipt"]
    assert stub == {
        "redacted": True,
        "hash": stub["hash"],
        "tx_hash": tx.hash,
        "height": 3,
        "index": 0,
    }
    header = check_certified(answer, node.genesis)
    InclusionProof.from_obj(answer["block_proof"]).verify(leaf_hash(tx.hash), header.tx_root)
    InclusionProof.from_obj(answer["results_proof"]).verify(
        leaf_hash(stub["hash"]), header.results_root
    )
