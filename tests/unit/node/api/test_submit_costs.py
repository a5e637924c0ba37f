"""Admission costs at the API: what a submission costs the node is charged to whoever
sends it, and junk is refused before it is decoded or its signatures are checked.

Counts of decodes and signature checks, never timings (``benchmarks/admission.py``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import msgpack
import pytest
from aiohttp.test_utils import TestClient, TestServer

from ledger.crypto import PrivateKey
from ledger.encoding import Value
from ledger.tx import Transaction
from node.api.app import make_app, metrics_of
from node.api.auth import sign_request
from node.config import APIConfig
from tests.unit.clock_kit import ManualClock
from tests.unit.node.api.conftest import (
    CHAIN_ID,
    Client,
    Clock,
    Scenario,
    TestNode,
    key,
    milestone,
)

STRANGER = PrivateKey.from_label("api-junk-sender")
NODE_KEY = PrivateKey.from_label("api-node").public_key  # the test node (conftest.TestNode)
HEADERS = {"Content-Type": "application/msgpack", "Accept": "application/msgpack"}


def junk(n: int, *, forged: bool = False) -> list[Transaction]:
    out = []
    for i in range(n):
        tx = Transaction.create(STRANGER, CHAIN_ID, "shipment.declare", i % 200, {"i": i})
        if forged:
            bad = bytes([tx.signature[0] ^ 1]) + tx.signature[1:]
            tx = Transaction(tx.kind, tx.chain_id, tx.sender, tx.nonce, tx.payload, bad)
        out.append(tx)
    return out


def body_of(txs: list[Transaction]) -> bytes:
    return msgpack.packb({"txs": [tx.encode() for tx in txs]}, use_bin_type=True)


async def post(
    client: Client, body: bytes, headers: dict[str, str] | None = None
) -> tuple[int, Value, dict[str, str]]:
    response = await client.post("/v1/txs", data=body, headers={**HEADERS, **(headers or {})})
    return response.status, msgpack.unpackb(await response.read()), dict(response.headers)


@pytest.fixture
def limits(request: pytest.FixtureRequest) -> APIConfig:
    """The API's settings: defaults unless a test passes its own (:func:`with_limits`)."""
    return APIConfig(**getattr(request, "param", {}))


def with_limits(**settings: object) -> pytest.MarkDecorator:
    """Run the test against an API with these settings (the others default)."""
    return pytest.mark.parametrize("limits", [settings], indirect=True)


@pytest.fixture
async def app_client(
    node: TestNode, scenario: Scenario, clock: Clock, limits: APIConfig
) -> AsyncIterator[tuple[Client, ManualClock]]:
    t = ManualClock(100.0)
    app = make_app(node, limits, clock=clock, monotonic=t)
    async with TestClient(TestServer(app)) as c:
        yield c, t


# --- junk never decoded, never verified ---------------------------------------------------------


async def test_a_junk_batch_is_refused_on_its_sender_field_alone(
    app_client: tuple[Client, ManualClock], node: TestNode, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, _ = app_client
    decoded: list[bytes] = []
    real_decode = Transaction.decode.__func__  # type: ignore[attr-defined]

    def counting_decode(cls: type[Transaction], data: bytes) -> Transaction:
        decoded.append(data)
        return real_decode(cls, data)  # type: ignore[no-any-return]

    def no_verify(self: Transaction) -> None:
        raise AssertionError("a signature was checked")

    monkeypatch.setattr(Transaction, "decode", classmethod(counting_decode))
    monkeypatch.setattr(Transaction, "verify_signature", no_verify)
    txs = junk(150) + junk(150, forged=True)
    status, answer, _ = await post(client, body_of(txs))
    assert status == 200
    results = answer["results"]
    assert [r["hash"] for r in results] == [tx.hash for tx in txs]  # the hash, undecoded
    assert {r["error"]["code"] for r in results} == {"unknown_sender"}
    assert decoded == [] and node.sigs.verifications == 0 and len(node.mempool) == 0
    one = junk(1, forged=True)[0]
    status, answer, _ = await post(client, msgpack.packb({"tx": one.encode()}))
    assert (status, answer["error"]["code"]) == (403, "unknown_sender")


async def test_members_transactions_in_a_junk_batch_are_admitted_as_before(
    app_client: tuple[Client, ManualClock], node: TestNode
) -> None:
    client, _ = app_client
    good = [milestone(node, "NLRTM"), milestone(node, "NLAMS")]
    txs = [junk(1)[0], good[0], *junk(3)[1:], good[1]]
    status, answer, _ = await post(client, body_of(txs))
    assert status == 200
    statuses = [r["status"] for r in answer["results"]]
    assert statuses == ["rejected", "pending", "rejected", "rejected", "pending"]
    assert all(tx.hash in node.mempool for tx in good)
    broken = msgpack.packb({"txs": [junk(1)[0].encode(), b"\x00"]})  # a client bug: item 1
    status, answer, _ = await post(client, broken)
    assert (status, answer["error"]["code"]) == (400, "malformed")
    assert "transaction 1" in answer["error"]["message"]


@pytest.mark.parametrize("size", [0, 1, 100, 60_000])
def test_the_sender_and_hash_are_read_from_the_canonical_bytes(size: int) -> None:
    from ledger.tx import peek_hash, peek_sender

    tx = Transaction.create(
        key("acme-trader"), CHAIN_ID, "shipment.declare", 7, {"blob": b"x" * size, "n": size}
    )
    raw = tx.encode()
    assert peek_sender(raw) == tx.sender and peek_hash(raw) == tx.hash
    assert peek_sender(raw[:-1]) is None and peek_sender(b"\x86") is None
    assert peek_sender(b"\x80" + raw[1:]) is None


# --- costs charged per transaction and per byte -------------------------------------------------


@with_limits(tx_rate_limit_per_s=1.0, tx_rate_limit_burst=10)
async def test_the_rate_limit_is_charged_per_transaction(
    app_client: tuple[Client, ManualClock], node: TestNode
) -> None:
    client, t = app_client
    assert (await post(client, body_of(junk(8))))[0] == 200
    status, answer, headers = await post(client, body_of(junk(5)))
    assert (status, answer["error"]["code"]) == (429, "rate_limited")
    assert headers["Retry-After"] == "3" and "transactions" in answer["error"]["message"]
    assert (await post(client, body_of(junk(2))))[0] == 200  # a refusal took nothing
    assert (await post(client, body_of(junk(1))))[0] == 429
    t.now += 1.0
    assert (await post(client, body_of(junk(1))))[0] == 200
    big = await post(client, body_of(junk(50)))  # over the burst: needs a full bucket
    assert big[0] == 429
    t.now += 10.0
    assert (await post(client, body_of(junk(50))))[0] == 200
    assert metrics_of(client.app).rate_limited._value.get() == 3  # type: ignore[arg-type]


@with_limits(byte_rate_limit_per_s=1024.0, byte_rate_limit_burst=8192)
async def test_the_rate_limit_is_charged_per_byte(
    app_client: tuple[Client, ManualClock], node: TestNode
) -> None:
    client, t = app_client
    body = body_of(junk(30))
    assert 4096 < len(body) < 8192
    assert (await post(client, body))[0] == 200
    status, answer, headers = await post(client, body)
    assert (status, answer["error"]["code"]) == (429, "rate_limited")
    assert "bytes" in answer["error"]["message"] and int(headers["Retry-After"]) >= 1
    t.now += 8.0
    assert (await post(client, body))[0] == 200


# --- batches from submitters the node does not know ---------------------------------------------


@with_limits(unsigned_batch_max=5)
async def test_an_unsigned_batch_is_capped_and_a_members_is_not(
    app_client: tuple[Client, ManualClock], node: TestNode, clock: Clock
) -> None:
    client, _ = app_client
    assert (await post(client, body_of(junk(5))))[0] == 200
    body = body_of(junk(6))
    status, answer, _ = await post(client, body)
    assert (status, answer["error"]["code"]) == (413, "batch_too_large")

    def signed_by(label: str) -> dict[str, str]:
        return sign_request(key(label), CHAIN_ID, NODE_KEY, "POST", "/v1/txs", body, clock.now_ms)

    assert (await post(client, body, signed_by("customs-officer")))[0] == 200
    status, answer, _ = await post(client, body, sign_request(
        STRANGER, CHAIN_ID, NODE_KEY, "POST", "/v1/txs", body, clock.now_ms
    ))  # fmt: skip
    assert (status, answer["error"]["code"]) == (413, "batch_too_large")  # not a member
    forged = signed_by("customs-officer") | {"X-CityLedger-Signature": "00" * 64}
    status, answer, _ = await post(client, body, forged)
    assert (status, answer["error"]["code"]) == (401, "bad_signature")


# --- the latency budget -------------------------------------------------------------------------


async def test_over_the_latency_budget_is_429_before_anything_is_decoded(
    app_client: tuple[Client, ManualClock], node: TestNode, monkeypatch: pytest.MonkeyPatch
) -> None:
    from node.latency_budget import LatencyBudget

    client, _ = app_client
    node.mempool.budget = LatencyBudget(2.0, floor_txs=1, start_txs=1)  # room for one ready tx
    first = milestone(node, "NLRTM")
    status, answer, _ = await post(client, msgpack.packb({"tx": first.encode()}))
    assert (status, answer["status"]) == (202, "pending")
    decoded: list[bytes] = []
    real_decode = Transaction.decode.__func__  # type: ignore[attr-defined]

    def counting_decode(cls: type[Transaction], data: bytes) -> Transaction:
        decoded.append(data)
        return real_decode(cls, data)  # type: ignore[no-any-return]

    monkeypatch.setattr(Transaction, "decode", classmethod(counting_decode))
    second = milestone(node, "NLAMS")
    for body in (msgpack.packb({"tx": second.encode()}), body_of([second]),
                 msgpack.packb({"txs": [second.encode(), b"\x00"]})):  # fmt: skip
        status, answer, headers = await post(client, body)
        assert (status, answer["error"]["code"]) == (429, "overloaded"), answer
        # one over a capacity of one, drained at the 0.5 tx/s that capacity stands for,
        # asks for 4 s: no longer than the budget, 2 s; to the millisecond as well
        assert (headers["Retry-After"], headers["Retry-After-Ms"]) == ("2", "2000")
        assert "latency budget" in answer["error"]["message"]
    assert decoded == [] and len(node.mempool) == 1 and second.hash not in node.mempool
    node.commit([first])  # the backlog drains: the same transaction is taken
    status, answer, _ = await post(client, msgpack.packb({"tx": second.encode()}))
    assert (status, answer["status"]) == (202, "pending")


async def test_over_the_latency_budget_the_body_is_not_even_read(
    app_client: tuple[Client, ManualClock], node: TestNode, parsed_bodies: list[int]
) -> None:
    """Refused on its Content-Length: not parsed (a body that is not one at all is told
    429, not 400), and the connection goes on serving; without the header, after parsing."""
    from node.latency_budget import LatencyBudget

    client, _ = app_client
    node.mempool.budget = LatencyBudget(2.0, floor_txs=1, start_txs=1)  # room for one ready tx
    first = milestone(node, "NLRTM")
    assert (await post(client, msgpack.packb({"tx": first.encode()})))[0] == 202
    parsed = parsed_bodies
    parsed.clear()  # the first one's
    status, answer, _ = await post(client, b"\xc1 not a submission" * 500)
    assert (status, answer["error"]["code"]) == (429, "overloaded") and parsed == []
    counter = metrics_of(client.app).overloaded
    before = counter._value.get()
    batch = body_of(junk(10))
    assert (await post(client, batch))[1]["error"]["code"] == "overloaded" and parsed == []
    # its turn was reckoned for about ten transactions: the pool's mean size says so
    assert 8 <= counter._value.get() - before <= 12

    async def chunks() -> AsyncIterator[bytes]:
        yield batch  # a body of unknown length: sent chunked, without Content-Length

    response = await client.post("/v1/txs", data=chunks(), headers=HEADERS)
    assert response.status == 429 and parsed == [len(batch)]
    node.commit([first])  # the same connection pool, served as before
    second = milestone(node, "NLAMS")
    status, answer, _ = await post(client, msgpack.packb({"tx": second.encode()}))
    assert (status, answer["status"]) == (202, "pending")


async def test_what_the_budget_cuts_from_a_batch_is_refused_without_being_decoded(
    app_client: tuple[Client, ManualClock], node: TestNode, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Room for three of five: the first three are decoded and admitted, the last two
    answered ``overloaded`` with their hashes and turn, never decoded; an item that is
    not a transaction at all still fails the batch, wherever it is."""
    from node.admission import Admission
    from node.api import routes_txs
    from node.api.metrics import Metrics
    from node.latency_budget import LatencyBudget
    from node.sigcache import SignatureWorker

    client, _ = app_client
    node.mempool.budget = LatencyBudget(2.0, floor_txs=1, start_txs=3)
    worker = SignatureWorker(node.sigs, node.genesis.chain_id, processes=0)
    gate = Admission(node.mempool, worker, Metrics(), lambda: None)

    async def submit(txs: list[Transaction]) -> list[object]:
        return await gate.admit(txs, None, client=True)  # type: ignore[return-value]

    monkeypatch.setattr(node, "submit", submit)
    monkeypatch.setattr(node, "client_room", gate.client_room)
    monkeypatch.setattr(node, "refuse_over_budget", gate.refuse_over_budget)
    decoded: list[int] = []
    real = routes_txs._decode_tx

    def counting(raw: bytes, index: int, single: bool) -> Transaction:
        decoded.append(index)
        return real(raw, index, single)

    monkeypatch.setattr(routes_txs, "_decode_tx", counting)
    txs = [milestone(node, place) for place in ("NLRTM", "NLAMS", "BEANR", "DEHAM", "FRLEH")]
    status, answer, headers = await post(client, body_of(txs))
    assert status == 200
    results = answer["results"]
    assert [r["hash"] for r in results] == [tx.hash for tx in txs]
    assert [r["status"] for r in results] == ["pending"] * 3 + ["rejected"] * 2
    assert {r["error"]["code"] for r in results[3:]} == {"overloaded"}
    assert float(headers["Retry-After-Ms"]) > 0
    assert decoded == [0, 1, 2] and node.mempool.ready == 3
    decoded.clear()  # full now: a single transaction is told so, undecoded
    status, answer, _ = await post(client, msgpack.packb({"tx": txs[3].encode()}))
    assert (status, answer["error"]["code"]) == (429, "overloaded") and decoded == []
    node.commit(txs[:3])
    node.mempool.budget = LatencyBudget(2.0, floor_txs=1, start_txs=1)  # room for one
    overloaded = gate.metrics.overloaded._value.get()
    # a client bug at item 1: 400, and the cut of item 2 neither made nor counted
    broken = msgpack.packb({"txs": [txs[3].encode(), b"\x00", txs[4].encode()]})
    status, answer, _ = await post(client, broken)
    assert (status, answer["error"]["code"]) == (400, "malformed")
    assert "transaction 1" in answer["error"]["message"] and decoded == [0, 1]
    assert gate.metrics.overloaded._value.get() == overloaded
    assert txs[3].hash not in node.mempool


async def test_the_next_nonce_past_the_window_is_429_with_retry_after(
    app_client: tuple[Client, ManualClock], node: TestNode, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In one batch too: the transactions before it in the batch count as its run."""
    import node.mempool as mempool_module

    monkeypatch.setattr(mempool_module, "MAX_NONCE_GAP", 1)
    client, _ = app_client
    txs = [milestone(node, place) for place in ("NLRTM", "NLAMS", "DEHAM")]
    status, answer, headers = await post(client, body_of(txs))
    assert status == 200
    results = answer["results"]
    assert [r["status"] for r in results[:2]] == ["pending", "pending"]
    assert (results[2]["status"], results[2]["error"]["code"]) == ("rejected", "sender_backlog")
    assert headers["Retry-After"] == "2"
    assert txs[2].hash not in node.mempool
