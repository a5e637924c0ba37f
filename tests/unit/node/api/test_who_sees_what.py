"""Every route of the API, walked as an outsider, an unrelated member and an auditor.

The read rules must hold on every road to the data, not only on the domain
queries. This test asks every route the application serves —
taken from the router itself, so a route added without an entry here fails the
test — for every sample request below, unsigned and signed by a member of an
organisation that is party to nothing confidential, in JSON and in msgpack, and
looks for the confidential values of the standard chain in each answer: goods,
container, shipment id, document hash, the meter's key and reading, energy
references. An auditor, who may read everything, must find each of them on some
route: the markers are real, so the test can fail.
"""

from __future__ import annotations

import hashlib

from contracts import state_keys as sk
from ledger.tx import Transaction
from node.api.app import make_app
from node.api.routes_explorer import FILES, PAGES
from node.config import APIConfig
from tests.unit.node.api.conftest import (
    CONTAINER,
    INTERVAL,
    PERMIT,
    SHIPMENT,
    Client,
    Clock,
    Scenario,
    TestNode,
    key,
    signed,
)

UNRELATED = "permit-officer"  # a member of the permit office: party to no shipment or trade


def markers(node: TestNode) -> dict[str, str | bytes]:
    """Confidential values of the standard chain: text, or bytes (hex in JSON answers)."""
    reading = next(tx for tx in all_txs(node) if tx.kind == "energy.submit_reading")
    signature = reading.payload["signature"]
    assert isinstance(signature, bytes)
    return {
        "goods description": "mobile phones",
        "container": CONTAINER,
        "shipment id": SHIPMENT,
        "energy credit reference": "prepaid-2",
        "document hash": hashlib.sha256(b"bill of lading").digest(),
        "meter key": key("solar-meter").public_key,
        "meter reading signature": signature,
    }


def all_txs(node: TestNode) -> list[Transaction]:
    out: list[Transaction] = []
    for h in range(1, node.chain.head().height + 1):
        block = node.chain.block(h)
        assert block is not None
        out.extend(block.txs)
    return out


def samples(node: TestNode) -> dict[tuple[str, str], list[str]]:
    """Concrete requests for every route (method, canonical path) of the application."""
    head = node.chain.head()
    meter = key("solar-meter").public_key
    state_keys = [
        sk.shipment_key(SHIPMENT),
        sk.shipment_history_key(SHIPMENT, 0),
        sk.meter_key(meter),
        sk.energy_account_key("solar-coop"),
        sk.energy_account_key("wind-coop"),
        sk.permit_key(PERMIT),
    ]
    return {
        ("GET", "/v1/blocks/{height}"): [f"/v1/blocks/{h}" for h in range(1, head.height + 1)]
        + ["/v1/blocks/latest"],
        ("GET", "/v1/blocks/{height}/certificate"): ["/v1/blocks/1/certificate"],
        ("GET", "/v1/validators"): ["/v1/validators"],
        ("GET", "/v1/status"): ["/v1/status"],
        ("GET", "/v1/head"): ["/v1/head", "/v1/head?height=1"],
        ("GET", "/v1/evidence"): ["/v1/evidence"],
        ("GET", "/v1/checkpoint"): ["/v1/checkpoint"],
        ("GET", "/v1/energy/accounts/{org}"): [
            "/v1/energy/accounts/solar-coop",
            "/v1/energy/accounts/wind-coop",
        ],
        ("GET", "/v1/energy/market/{interval}"): [f"/v1/energy/market/{INTERVAL}"],
        # a plain GET here is refused (400); the stream itself: tests/unit/node/api/test_events.py
        ("GET", "/v1/events"): ["/v1/events"],
        ("GET", "/healthz"): ["/healthz"],
        ("GET", "/metrics"): ["/metrics"],
        ("GET", "/v1/orgs/{id}"): ["/v1/orgs/acme", "/v1/orgs/solar-coop"],
        ("GET", "/v1/orgs"): ["/v1/orgs", "/v1/orgs?limit=2&after=1"],
        ("GET", "/v1/permits/{id}"): [f"/v1/permits/{PERMIT}"],
        ("GET", "/v1/permits/{id}/validity"): [f"/v1/permits/{PERMIT}/validity"],
        ("GET", "/v1/permits"): ["/v1/permits?holder=acme"],
        ("GET", "/v1/gov/proposals"): ["/v1/gov/proposals"],
        ("GET", "/v1/gov/proposals/{id}"): ["/v1/gov/proposals/gov-" + "00" * 16],
        ("GET", "/v1/state/{key_hex}"): [f"/v1/state/{k.hex()}" for k in state_keys],
        ("GET", "/v1/log/consistency"): ["/v1/log/consistency?old=1"],
        ("GET", "/v1/log/inclusion/{index}"): [
            f"/v1/log/inclusion/{i}" for i in range(head.log_size)
        ],
        ("GET", "/v1/shipments/{id}"): [f"/v1/shipments/{SHIPMENT}"],
        ("GET", "/v1/shipments/{id}/epcis"): [f"/v1/shipments/{SHIPMENT}/epcis"],
        ("GET", "/v1/shipments"): [
            f"/v1/shipments?container={CONTAINER}",
            "/v1/shipments?party=acme",
            "/v1/shipments?status=declared",
            "/v1/shipments?status=in_transit",
        ],
        ("POST", "/v1/txs"): ["/v1/txs"],
        ("GET", "/v1/txs/{hash}"): [f"/v1/txs/{tx.hash.hex()}" for tx in all_txs(node)],
        **explorer_samples(),
    }


def explorer_samples() -> dict[tuple[str, str], list[str]]:
    """The explorer's files and pages (node/api/routes_explorer.py) and the genesis."""
    return {
        ("GET", "/v1/genesis"): ["/v1/genesis"],
        ("GET", "/explorer"): ["/explorer"],
        ("GET", "/explorer/"): ["/explorer/"],
        ("GET", "/explorer/static/{name}"): [f"/explorer/static/{name}" for name in FILES],
        ("GET", "/explorer/permits/{id}"): [f"/explorer/permits/{PERMIT}"],
        ("GET", "/explorer/permits/{id}/qr.svg"): [f"/explorer/permits/{PERMIT}/qr.svg"],
        ("GET", "/explorer/{page}"): [f"/explorer/{page}" for page in PAGES],
    }


def app_routes(node: TestNode) -> set[tuple[str, str]]:
    app = make_app(node, APIConfig())
    out = set()
    for route in app.router.routes():
        if route.method in ("HEAD", "OPTIONS"):
            continue
        assert route.resource is not None
        out.add((route.method, route.resource.canonical))
    return out


def found_in(body: bytes, path: str, marks: dict[str, str | bytes]) -> set[str]:
    """The markers in an answer, less those the request itself named (a state key is
    named in hex: an error may echo it back)."""
    named = path
    if path.startswith("/v1/state/"):
        named += bytes.fromhex(path.removeprefix("/v1/state/")).decode("latin-1")
    found = set()
    for name, value in marks.items():
        forms = [value.encode()] if isinstance(value, str) else [value, value.hex().encode()]
        if any(form.decode("latin-1") in named for form in forms):
            continue
        if any(form in body for form in forms):
            found.add(name)
    return found


async def ask(client: Client, method: str, path: str, headers: dict[str, str]) -> bytes:
    if method == "POST":
        response = await client.post(path, data=b'{"tx": "00"}', headers=headers)
    else:
        response = await client.request(method, path, headers=headers)
    assert response.status < 500, (method, path, response.status)
    return await response.read()


async def walk(
    client: Client, node: TestNode, clock: Clock, reader: str | None
) -> dict[str, set[str]]:
    """For each route, which confidential markers ``reader`` got from it."""
    marks = markers(node)
    seen: dict[str, set[str]] = {}
    for (method, route), paths in samples(node).items():
        for path in paths:
            for accept in ("application/json", "application/msgpack"):
                headers = {"Accept": accept}
                if reader is not None:
                    headers |= signed(reader, path, clock, method)
                body = await ask(client, method, path, headers)
                seen.setdefault(route, set()).update(found_in(body, path, marks))
    return seen


async def test_every_route_has_samples(node: TestNode, scenario: Scenario) -> None:
    """A new route must be added to the walk (and so to the read rules' reach)."""
    assert app_routes(node) == set(samples(node))


async def test_an_unsigned_client_gets_no_confidential_value_on_any_route(
    client: Client, node: TestNode, clock: Clock
) -> None:
    leaks = {route: names for route, names in (await walk(client, node, clock, None)).items()}
    assert {route: names for route, names in leaks.items() if names} == {}


async def test_an_unrelated_member_gets_no_confidential_value_on_any_route(
    client: Client, node: TestNode, clock: Clock
) -> None:
    leaks = await walk(client, node, clock, UNRELATED)
    assert {route: names for route, names in leaks.items() if names} == {}


async def test_an_auditor_finds_every_marker(client: Client, node: TestNode, clock: Clock) -> None:
    """The markers are real: the walk would notice a leak of any of them."""
    seen = await walk(client, node, clock, "auditor")
    everything: set[str] = set().union(*seen.values())
    assert everything == set(markers(node))
    for route in ("/v1/blocks/{height}", "/v1/txs/{hash}", "/v1/state/{key_hex}"):
        assert seen[route], route
