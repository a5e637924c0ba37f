"""Searches answered complete: one page of a proven bucket, checked by the light client.

Shipments (by container, party, status), permits (by holder, address), an
account's trades and an interval's market: every answer is checked here with
the same :mod:`lightclient` functions the CLI uses, so a test passes only if the
node's answer proves that nothing matching was left out.
"""

from __future__ import annotations

import urllib.parse

import pytest

from contracts import state_keys as sk
from contracts.shipment_search import ShipmentFilter
from ledger.encoding import Value, decode
from ledger.tx import Transaction
from lightclient.answers import check_whole
from lightclient.energy import verify_account, verify_market
from lightclient.errors import VerificationError
from lightclient.search import Paging, verify_permit_search, verify_shipment_search
from tests.unit.node.api.conftest import (
    ADDRESS,
    CONTAINER,
    INTERVAL,
    MSGPACK,
    PERMIT,
    SHIPMENT,
    Client,
    Clock,
    Scenario,
    TestNode,
    get_obj,
    key,
    read_signed,
    signed,
)

OFFICER = key("customs-officer").public_key
ACME = key("acme-trader").public_key


def _filter(query: str) -> ShipmentFilter:
    fields = dict(urllib.parse.parse_qsl(query))
    return ShipmentFilter(fields.get("container"), fields.get("party"), fields.get("status"))


@pytest.mark.parametrize(
    ("query", "found"),
    [
        (f"container={CONTAINER}", [SHIPMENT]),
        ("party=oceanic", [SHIPMENT]),
        ("party=globex", [SHIPMENT]),
        ("status=in_transit", [SHIPMENT]),
        ("status=cleared", [SHIPMENT]),
        ("status=pending", []),
        (f"container={CONTAINER}&status=delivered", []),
        (f"container={CONTAINER}&party=globex", [SHIPMENT]),
    ],
)
async def test_shipment_search(
    client: Client, node: TestNode, clock: Clock, query: str, found: list[str]
) -> None:
    path = f"/v1/shipments?{query}"
    answer = await read_signed(client, "customs-officer", path, clock)
    view = verify_shipment_search(answer, node.genesis, _filter(query), Paging(), OFFICER)
    check_whole(view.page.count)
    assert [s.id for s in view.found] == found
    assert view.page.count.next_after is None


async def test_a_search_walks_the_smallest_bucket_given(
    client: Client, node: TestNode, clock: Clock
) -> None:
    path = "/v1/shipments?status=pending&party=oceanic"
    answer = await read_signed(client, "customs-officer", path, clock)
    assert answer["bucket"] == {"family": "shipment-status", "name": "pending"}
    assert answer["head"]["record"] is None  # proven empty: nothing to walk


async def test_a_search_counts_what_the_caller_may_not_read(
    client: Client, node: TestNode, clock: Clock
) -> None:
    path = f"/v1/shipments?container={CONTAINER}"
    assert (await client.get(path)).status == 401
    response = await client.get(path, headers={**MSGPACK, **signed("outsider-trader", path, clock)})
    raw = await response.read()
    outsider = key("outsider-trader").public_key
    view = verify_shipment_search(decode(raw), node.genesis, _filter(path[14:]), Paging(), outsider)
    check_whole(view.page.count)
    assert view.found == () and view.page.withheld == 1
    assert SHIPMENT.encode() not in raw


async def test_shipment_search_paging_at_one_height(
    client: Client, node: TestNode, clock: Clock
) -> None:
    path = "/v1/shipments?party=acme&limit=1"
    status, first = await get_obj(client, path, signed("acme-trader", path, clock))
    assert status == 200 and first["next_after"] is None  # one shipment: one page
    path = f"/v1/shipments?party=acme&after=1&height={first['height']}"
    status, answer = await get_obj(client, path, signed("acme-trader", path, clock))
    assert status == 200 and answer["slots"] == [] and answer["next_after"] is None
    search = ShipmentFilter(party="acme")
    view = verify_shipment_search(answer, node.genesis, search, Paging(1), ACME)
    check_whole(view.page.count)
    for query in (
        "party=acme&after=c1.AAAA",
        "party=acme&after=-1",
        f"party=acme&after={SHIPMENT}",
    ):
        path = f"/v1/shipments?{query}"
        response = await client.get(path, headers=signed("acme-trader", path, clock))
        assert response.status == 400


def declare(node: TestNode, sender: str, shipment_id: str, consignee: str) -> Transaction:
    org = sender.split("-")[0]
    goods = {"hs_code": "851712", "description": "tablets", "quantity": 5, "unit": "PCE",
             "value": 100, "currency": "EUR"}  # fmt: skip
    payload: dict[str, Value] = {
        "id": shipment_id,
        "consignor": org,
        "consignee": consignee,
        "declarant": org,
        "origin": "CNSHA",
        "destination": "NLRTM",
        "goods": [goods],
        "containers": [CONTAINER],
    }
    return node.tx(sender, "shipment.declare", payload)


async def test_paging_through_a_bucket_never_names_what_the_caller_may_not_read(
    client: Client, node: TestNode, clock: Clock
) -> None:
    """Ten shipments share a container; acme may read four. Paged two slots at a time
    at one height, it sees those four, learns that six more exist, and not their ids."""
    hidden = [f"HID-{i:02}" for i in range(6)]
    mine = ["MY-01", "MY-02", "ZZ-03"]
    node.commit([declare(node, "outsider-trader", i, "oceanic") for i in hidden])
    node.commit([declare(node, "acme-trader", i, "globex") for i in mine])
    seen: list[str] = []
    withheld, start, height = 0, 0, ""
    texts: list[bytes] = []
    while True:
        path = f"/v1/shipments?container={CONTAINER}&limit=2&after={start}{height}"
        response = await client.get(path, headers={**MSGPACK, **signed("acme-trader", path, clock)})
        assert response.status == 200
        texts.append(await response.read())
        answer = decode(texts[-1])
        height = f"&height={answer['height']}"
        search = ShipmentFilter(container=CONTAINER)
        view = verify_shipment_search(answer, node.genesis, search, Paging(start, 2), ACME)
        check_whole(view.page.count)
        seen += [s.id for s in view.found]
        withheld += view.page.withheld
        if view.page.count.next_after is None:
            break
        start = view.page.count.next_after
    assert sorted(seen) == sorted([SHIPMENT, *mine]) and withheld == len(hidden)
    assert not any(h.encode() in text for h in hidden for text in texts)


@pytest.mark.parametrize(
    "query",
    [
        "holder=acme",
        "address=" + ADDRESS.replace(" ", "%20"),
        "address=1%20%20HARBOUR%20road,%20rotterdam",
    ],
)
async def test_permit_search(client: Client, node: TestNode, query: str) -> None:
    status, answer = await get_obj(client, f"/v1/permits?{query}")
    assert status == 200
    fields = dict(urllib.parse.parse_qsl(query))
    holder, address = fields.get("holder"), fields.get("address")
    view = verify_permit_search(answer, node.genesis, holder, address, Paging())
    check_whole(view.page.count)
    assert [p.id for p in view.found] == [PERMIT]


async def test_a_record_withheld_from_a_reader_who_may_read_it_is_refused(
    client: Client, node: TestNode, clock: Clock
) -> None:
    """The officer reads every shipment: a node redacting one from it hides a match."""
    path = "/v1/shipments?status=cleared"
    status, answer = await get_obj(client, path, signed("customs-officer", path, clock))
    _, redacted = await get_obj(client, path, signed("outsider-trader", path, clock))
    assert status == 200 and redacted["slots"][0]["member"] is None
    answer["slots"] = redacted["slots"]  # the same slot, withheld
    search = ShipmentFilter(status="cleared")
    view = verify_shipment_search(answer, node.genesis, search, Paging(), OFFICER)
    with pytest.raises(VerificationError, match=r"withheld 1 record\(s\) this key may read"):
        check_whole(view.page.count)
    # acme withheld its own shipment in its own party bucket: refused too
    path = "/v1/shipments?party=acme"
    _, answer = await get_obj(client, path, signed("acme-trader", path, clock))
    _, other = await get_obj(client, path, signed("outsider-trader", path, clock))
    answer["slots"] = other["slots"]
    view = verify_shipment_search(
        answer, node.genesis, ShipmentFilter(party="acme"), Paging(), ACME
    )
    with pytest.raises(VerificationError, match="this key may read"):
        check_whole(view.page.count)


async def test_the_reader_record_must_be_the_signers(
    client: Client, node: TestNode, clock: Clock
) -> None:
    path = "/v1/shipments?status=cleared"
    _, answer = await get_obj(client, path, signed("outsider-trader", path, clock))
    search = ShipmentFilter(status="cleared")
    with pytest.raises(VerificationError, match="another key"):
        verify_shipment_search(answer, node.genesis, search, Paging(), OFFICER)


async def test_a_short_page_is_refused(client: Client, node: TestNode) -> None:
    status, answer = await get_obj(client, "/v1/permits?holder=acme")
    assert status == 200
    answer["slots"] = []
    view = verify_permit_search(answer, node.genesis, "acme", None, Paging())
    with pytest.raises(VerificationError, match="must hold 1, it holds 0"):
        check_whole(view.page.count)


# --- energy -------------------------------------------------------------------------------------


async def test_energy_account_of_the_owner(client: Client, node: TestNode, clock: Clock) -> None:
    path = "/v1/energy/accounts/solar-coop"
    answer = await read_signed(client, "solar-prosumer", path, clock)
    view = verify_account(answer, node.genesis, "solar-coop", None, Paging())
    check_whole(view.trades.page.count)
    assert view.account.to_obj() == answer["balances"]
    account = view.account
    assert (account.produced_wh, account.consumed_wh, account.sold_wh) == (8_000, 1_000, 4_000)
    assert [(t.seller, t.buyer, t.quantity_wh) for t in view.trades.found] == [
        ("solar-coop", "wind-coop", 4_000)
    ]
    other = verify_account(answer, node.genesis, "solar-coop", INTERVAL + 1, Paging())
    assert other.trades.found == ()  # another interval: filtered here, the page still whole


async def test_energy_account_never_used_is_proven_absent(
    client: Client, node: TestNode, clock: Clock
) -> None:
    path = "/v1/energy/accounts/acme"
    answer = await read_signed(client, "energy-regulator", path, clock)
    view = verify_account(answer, node.genesis, "acme", None, Paging())
    assert view.account.balance == 0 and view.trades.page.count.total == 0


async def test_energy_market(
    client: Client, node: TestNode, clock: Clock, scenario: Scenario
) -> None:
    path = f"/v1/energy/market/{INTERVAL}"
    answer = await read_signed(client, "energy-regulator", path, clock)
    view = verify_market(answer, node.genesis, INTERVAL, key("energy-regulator").public_key)
    for count in view.histories():
        check_whole(count)
    assert view.book.status == answer["status"] == "settled"
    assert [o.id for o in view.orders if o is not None] == [
        scenario.offer.hash.hex(),
        scenario.bid.hash.hex(),
    ]
    assert len(view.trades) == 1 and view.trades[0] is not None


async def test_energy_market_shows_prosumers_their_own_orders_and_counts_the_rest(
    client: Client, node: TestNode, scenario: Scenario, clock: Clock
) -> None:
    path = f"/v1/energy/market/{INTERVAL}"
    response = await client.get(path, headers={**MSGPACK, **signed("solar-prosumer", path, clock)})
    raw = await response.read()
    view = verify_market(decode(raw), node.genesis, INTERVAL, key("solar-prosumer").public_key)
    assert [o and o.id for o in view.orders] == [scenario.offer.hash.hex(), None]
    assert view.trades[0] is not None  # solar-coop is the seller
    bid_key = sk.order_key(scenario.bid.hash.hex())
    assert decode(raw)["orders"][1] == {"key": bid_key, "withheld": True}  # no value, no hash
    assert (await client.get(path)).status == 401
    assert (await client.get(path, headers=signed("acme-trader", path, clock))).status == 403


async def test_energy_market_of_a_quiet_interval(
    client: Client, node: TestNode, clock: Clock
) -> None:
    path = f"/v1/energy/market/{INTERVAL + 900_000}"
    answer = await read_signed(client, "wind-prosumer", path, clock)
    view = verify_market(answer, node.genesis, INTERVAL + 900_000, key("wind-prosumer").public_key)
    assert view.book.status == "open" and view.orders == () and view.trades == ()
    assert (await client.get("/v1/energy/market/soon")).status == 400
