"""A real chain behind the API: executed blocks, 3-of-4 certificates, a minimal NodeHandle.

:class:`TestNode` builds blocks with the real :class:`~node.executor.Executor`
and contracts, commits each with a :class:`~ledger.votes.CommitCertificate`
signed by three of the four genesis validators, and publishes it on its
:class:`~node.events.EventHub`, so every answer the API gives can be checked
with the same code a client uses.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient, TestServer

from contracts.codes import with_check_digit
from contracts.energy import sign_reading
from ledger.block import Block, BlockHeader
from ledger.crypto import PrivateKey
from ledger.encoding import Value, decode
from ledger.genesis import Genesis
from ledger.state_proof import StateProof, verify_state_proof
from ledger.storage import MemoryStore
from ledger.tx import Transaction
from ledger.votes import CommitCertificate
from node.api.app import make_app
from node.api.auth import sign_request
from node.config import APIConfig
from tests.unit.chain_kit import MemoryNode, phones_declaration, precommit_certificate
from tests.unit.genesis_kit import genesis_from_table

CHAIN_ID = "cityledger-test"
GENESIS_TIME = 1_700_000_000_000
BLOCK_MS = 1_000
CONTAINER = with_check_digit("MSCU123456")
SHIPMENT = "S-2024-0001"
PERMIT = "P-0001"
ADDRESS = "1 Harbour Road, Rotterdam"
PERMIT_FROM = GENESIS_TIME
PERMIT_UNTIL = GENESIS_TIME + 365 * 86_400_000
INTERVAL_MS = 900_000  # the default energy settlement interval
INTERVAL = GENESIS_TIME - GENESIS_TIME % INTERVAL_MS  # the interval traded and settled
READ_TIME = INTERVAL + INTERVAL_MS + 1_000  # the interval has ended: read and trade it
SETTLE_TIME = INTERVAL + 2 * INTERVAL_MS + 5_000  # after the default settlement delay


Client = TestClient[web.Request, web.Application]


def key(label: str) -> PrivateKey:
    return PrivateKey.from_label(label)


VALIDATORS = [key(f"validator-{i}") for i in range(4)]

# organisation id -> (kind, [(member label, roles)])
ORGS: dict[str, tuple[str, list[tuple[str, tuple[str, ...]]]]] = {
    "customs-rtm": ("agency", [("customs-admin", ("admin",)), ("customs-officer", ("customs",))]),
    "audit-office": ("agency", [("auditor", ("auditor",))]),
    "permits-rtm": ("agency", [("permit-officer", ("permit_office",))]),
    "energy-reg": ("agency", [("energy-regulator", ("energy_regulator",))]),
    "acme": ("trader", [("acme-trader", ("admin", "trader"))]),
    "globex": ("trader", [("globex-trader", ("admin", "trader"))]),
    "outsider": ("trader", [("outsider-trader", ("admin", "trader"))]),
    "oceanic": ("carrier", [("oceanic-carrier", ("admin", "carrier"))]),
    "solar-coop": ("prosumer", [("solar-prosumer", ("admin", "prosumer"))]),
    "wind-coop": ("prosumer", [("wind-prosumer", ("admin", "prosumer"))]),
}


def make_genesis() -> Genesis:
    return genesis_from_table(
        CHAIN_ID,
        GENESIS_TIME,
        [(f"validator-{i}", k) for i, k in enumerate(VALIDATORS)],
        ORGS,
        member_key=lambda _org, label: key(label),
        city="Rotterdam",
    )


def certify(block: Block, signers: list[PrivateKey] | None = None) -> CommitCertificate:
    """A precommit certificate for ``block`` from (by default) three of the four validators."""
    keys = signers if signers is not None else VALIDATORS[:3]
    return precommit_certificate(block, keys, block.header.chain_id)


class TestNode(MemoryNode):
    """A minimal :class:`~node.handle.NodeHandle` over a chain built in memory."""

    __test__ = False

    def __init__(self, genesis: Genesis | None = None) -> None:
        genesis = genesis if genesis is not None else make_genesis()
        super().__init__(genesis, MemoryStore(), key, VALIDATORS)
        self.evidence_items: list[dict[str, Value]] = []
        self.linked = VALIDATORS[:3]  # the validators this node has a peer link to

    def status(self) -> dict[str, Value]:
        peers: list[Value] = [
            {"name": f"validator-{VALIDATORS.index(k)}", "key": k.public_key, "height": 9}
            for k in self.linked
        ]
        return {"peers": peers, "sync_progress_permille": 1000, "last_rounds": 1}

    def evidence(self) -> list[dict[str, Value]]:
        return list(self.evidence_items)

    def commit(self, txs: list[Transaction], now_ms: int | None = None) -> Block:
        height = self.chain.head().height + 1
        now = GENESIS_TIME + height * BLOCK_MS if now_ms is None else now_ms
        return self.commit_at(txs, now).block

    def header(self, height: int) -> BlockHeader:
        block = self.chain.block(height)
        assert block is not None
        return block.header


def milestone(node: TestNode, place: str = "NLRTM") -> Transaction:
    """A valid arrival of the standard chain's shipment, by its carrier (next nonce)."""
    payload: dict[str, Value] = {
        "shipment_id": SHIPMENT,
        "event": "arrived",
        "place": place,
        "time_ms": 1_700_000_006_500,
    }
    return node.tx("oceanic-carrier", "shipment.milestone", payload)


@dataclass
class Scenario:
    """Hashes of the interesting transactions of the standard chain."""

    declare: Transaction
    failed: Transaction
    custody_accept: Transaction
    offer: Transaction
    bid: Transaction


def build_standard_chain(node: TestNode) -> Scenario:
    """Nine blocks: a shipment's life, a permit issued, a refused tx, an energy market
    settled (meter reading, offer, bid, trade), and an empty block."""
    t = node.tx
    declare = t("acme-trader", "shipment.declare", phones_declaration(SHIPMENT, CONTAINER, "NLRTM"))
    node.commit(
        [
            declare,
            t(
                "energy-regulator",
                "energy.credit_balance",
                {"account": "solar-coop", "amount": 50_000, "reference": "prepaid-1"},
            ),
            t(
                "acme-trader",
                "permit.apply",
                {
                    "id": PERMIT,
                    "type": "business",
                    "address": ADDRESS,
                    "description": "warehouse operation",
                },
            ),
        ]
    )
    node.commit(
        [
            t("acme-trader", "shipment.offer_custody", {"shipment_id": SHIPMENT, "to": "oceanic"}),
            t(
                "acme-trader",
                "shipment.attach_document",
                {
                    "shipment_id": SHIPMENT,
                    "type": "bill_of_lading",
                    "sha256": hashlib.sha256(b"bill of lading").digest(),
                },
            ),
            t("permit-officer", "permit.review", {"permit_id": PERMIT}),
        ]
    )
    accept = t("oceanic-carrier", "shipment.accept_custody", {"shipment_id": SHIPMENT})
    node.commit([accept, t("permit-officer", "permit.approve", {"permit_id": PERMIT})])
    node.commit(
        [
            t(
                "oceanic-carrier",
                "shipment.milestone",
                {
                    "shipment_id": SHIPMENT,
                    "event": "departed",
                    "place": "CNSHA",
                    "time_ms": GENESIS_TIME + 3_500,
                },
            ),
            t(
                "permit-officer",
                "permit.issue",
                {"permit_id": PERMIT, "valid_from": PERMIT_FROM, "valid_until": PERMIT_UNTIL},
            ),
        ]
    )
    failed = t("outsider-trader", "shipment.deliver", {"shipment_id": SHIPMENT, "place": "NLRTM"})
    node.commit(
        [
            t(
                "customs-officer",
                "shipment.customs_decision",
                {"shipment_id": SHIPMENT, "decision": "clear", "reason": "documents in order"},
            ),
            failed,
        ]
    )
    offer, bid = trade_energy(node)
    node.commit([])
    return Scenario(declare, failed, accept, offer, bid)


def trade_energy(node: TestNode) -> tuple[Transaction, Transaction]:
    """Blocks 6-8: solar-coop's meter reads a surplus in INTERVAL, which it sells to wind-coop."""
    meter = key("solar-meter")
    t = node.tx
    node.commit(
        [
            t(
                "energy-regulator",
                "energy.register_meter",
                {
                    "meter_key": meter.public_key,
                    "owner": "solar-coop",
                    "name": "roof",
                    "active_from_ms": INTERVAL,
                },
            ),
            t(
                "energy-regulator",
                "energy.credit_balance",
                {"account": "wind-coop", "amount": 1_000_000, "reference": "prepaid-2"},
            ),
        ]
    )
    reading_interval = INTERVAL  # energy is sold in the interval that produced it
    signature = sign_reading(meter, CHAIN_ID, reading_interval, 8_000, 1_000)
    reading = t(
        "solar-prosumer",
        "energy.submit_reading",
        {
            "meter_key": meter.public_key,
            "interval_start_ms": reading_interval,
            "produced_wh": 8_000,
            "consumed_wh": 1_000,
            "signature": signature,
        },
    )
    offer = t(
        "solar-prosumer",
        "energy.place_order",
        {"interval_start_ms": INTERVAL, "side": "offer", "quantity_wh": 5_000, "price_per_kwh": 90},
    )
    bid = t(
        "wind-prosumer",
        "energy.place_order",
        {"interval_start_ms": INTERVAL, "side": "bid", "quantity_wh": 4_000, "price_per_kwh": 120},
    )
    node.commit([reading, offer, bid], READ_TIME)
    node.commit(
        [t("energy-regulator", "energy.settle", {"interval_start_ms": INTERVAL})], SETTLE_TIME
    )
    return offer, bid


class Clock:
    """Wall-clock milliseconds the tests set by hand."""

    def __init__(self, now_ms: int) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms


@pytest.fixture
def node() -> TestNode:
    return TestNode()


@pytest.fixture
def scenario(node: TestNode) -> Scenario:
    return build_standard_chain(node)


@pytest.fixture
def clock() -> Clock:
    return Clock(GENESIS_TIME + 3_600_000)


@pytest.fixture
def api_config() -> APIConfig:
    return APIConfig()


@pytest.fixture
async def client(
    node: TestNode, scenario: Scenario, clock: Clock, api_config: APIConfig
) -> AsyncIterator[Client]:
    app = make_app(node, api_config, clock=clock)
    async with TestClient(TestServer(app)) as c:
        yield c


@pytest.fixture
async def empty_client(node: TestNode, clock: Clock) -> AsyncIterator[Client]:
    """The API of a node that has committed nothing yet."""
    async with TestClient(TestServer(make_app(node, APIConfig(), clock=clock))) as c:
        yield c


# --- helpers for the tests --------------------------------------------------------------------

MSGPACK = {"Accept": "application/msgpack"}


async def get_obj(
    client: Client, path: str, headers: dict[str, str] | None = None
) -> tuple[int, Value]:
    """GET ``path`` as msgpack and decode the answer strictly (as the CLI does)."""
    response = await client.get(path, headers={**MSGPACK, **(headers or {})})
    assert response.content_type == "application/msgpack", await response.text()
    return response.status, decode(await response.read())


async def read_signed(client: Client, label: str, path: str, clock: Clock) -> Value:
    """GET ``path`` signed by ``label``'s key (:func:`signed`) as msgpack: the answer,
    which must be a 200."""
    status, answer = await get_obj(client, path, signed(label, path, clock))
    assert status == 200, answer
    return answer


async def assert_error(response: ClientResponse, status: int, code: str) -> None:
    """``response`` is the API's one error shape: ``status`` and ``{"error": {"code":
    code, "message": ...}}``."""
    assert response.status == status, await response.text()
    assert (await response.json())["error"]["code"] == code


def check_certified(answer: Value, genesis: Genesis) -> BlockHeader:
    """Check an answer's certificate against the validators and return its header."""
    header = BlockHeader.from_obj(answer["header"])
    cert = CommitCertificate.from_obj(answer["certificate"])
    cert.verify(genesis.validators, genesis.chain_id, height=header.height, block_hash=header.hash)
    assert answer["height"] == header.height
    return header


def check_item(item: Value, header: BlockHeader) -> Value:
    """Check one ``{"key", "record", "proof"}`` item against the header; return the record."""
    proof = StateProof.from_obj(item["proof"])
    verify_state_proof(header.state_root, proof)
    assert proof.key == item["key"]
    if proof.value is None:
        assert item["record"] is None
    else:
        assert decode(proof.value) == item["record"]
    return item["record"]


def signed(label: str, path: str, clock: Clock, method: str = "GET") -> dict[str, str]:
    """Signed-read headers for ``path`` by ``label``'s key at the test clock's time."""
    return sign_request(
        key(label), CHAIN_ID, key("api-node").public_key, method, path, b"", clock.now_ms
    )


@pytest.fixture
def parsed_bodies(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The sizes of the submission bodies the API parses from now on (none: not read)."""
    from node.api import routes_txs

    parsed: list[int] = []
    real_parse = routes_txs.parse_submission

    def counting_parse(body: bytes, content_type: str, typed: bool) -> tuple[list[bytes], bool]:
        parsed.append(len(body))
        return real_parse(body, content_type, typed)

    monkeypatch.setattr(routes_txs, "parse_submission", counting_parse)
    return parsed
