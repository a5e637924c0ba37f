"""Domain queries: shipments with provenance, permits, energy, organisations; read rules."""

from __future__ import annotations

import pytest

from contracts import state_keys as sk
from ledger.crypto import PrivateKey
from node.api.auth import TIME_HEADER, sign_request
from tests.unit.node.api.conftest import (
    BLOCK_MS,
    CHAIN_ID,
    CONTAINER,
    GENESIS_TIME,
    PERMIT,
    PERMIT_FROM,
    PERMIT_UNTIL,
    SHIPMENT,
    Client,
    Clock,
    TestNode,
    assert_error,
    check_certified,
    check_item,
    get_obj,
    key,
    read_signed,
    signed,
)

# --- shipments ----------------------------------------------------------------------------------


async def test_shipment_with_full_provenance(client: Client, node: TestNode, clock: Clock) -> None:
    path = f"/v1/shipments/{SHIPMENT}"
    answer = await read_signed(client, "globex-trader", path, clock)
    header = check_certified(answer, node.genesis)
    record = check_item(answer["shipment"], header)
    assert answer["shipment"]["key"] == sk.shipment_key(SHIPMENT)
    assert record["holder"] == "oceanic" and record["customs_status"] == "cleared"
    events = []
    for seq, item in enumerate(answer["history"]):
        assert item["key"] == sk.shipment_history_key(SHIPMENT, seq)
        events.append(check_item(item, header)["event"])
    assert events == [
        "declared",
        "custody_offered",
        "document_attached",
        "custody_transferred",
        "milestone",
        "customs_decision",
    ]
    assert len(events) == record["history_len"]
    # the history provably ends here
    assert answer["history_end"]["key"] == sk.shipment_history_key(SHIPMENT, len(events))
    assert check_item(answer["history_end"], header) is None


async def test_shipment_at_an_earlier_height(client: Client, node: TestNode, clock: Clock) -> None:
    path = f"/v1/shipments/{SHIPMENT}?height=1"
    answer = await read_signed(client, "customs-officer", path, clock)
    header = check_certified(answer, node.genesis)
    assert header.height == 1
    assert check_item(answer["shipment"], header)["holder"] == "acme"
    assert len(answer["history"]) == 1


async def test_shipment_read_rules(client: Client, clock: Clock) -> None:
    path = f"/v1/shipments/{SHIPMENT}"
    response = await client.get(path)
    await assert_error(response, 401, "signature_required")
    response = await client.get(path, headers=signed("outsider-trader", path, clock))
    await assert_error(response, 403, "forbidden")
    for label in ("acme-trader", "oceanic-carrier", "auditor", "customs-officer"):
        assert (await client.get(path, headers=signed(label, path, clock))).status == 200


async def test_unknown_and_bad_shipment_ids(client: Client, clock: Clock) -> None:
    path = "/v1/shipments/NOPE-1"
    assert (await client.get(path, headers=signed("customs-officer", path, clock))).status == 404
    assert (await client.get("/v1/shipments/%20bad")).status == 400


async def test_search_needs_an_active_member(client: Client, clock: Clock) -> None:
    path = f"/v1/shipments?container={CONTAINER}"
    stranger = PrivateKey.from_label("not-registered")
    headers = sign_request(stranger, CHAIN_ID, key("api-node").public_key, "GET", path, b"", 0)
    headers[TIME_HEADER] = str(clock.now_ms)  # a bad signature: never even checked
    response = await client.get(path, headers=headers)
    await assert_error(response, 403, "forbidden")


@pytest.mark.parametrize(
    "query",
    [
        "",
        "container=MSCU1234567x",
        "container=msc",
        "party=Bad%20Org",
        "status=lost",
        "party=acme&limit=0",
        "party=acme&limit=1001",
        "party=acme&party=globex",
    ],
)
async def test_shipment_search_errors(client: Client, clock: Clock, query: str) -> None:
    path = f"/v1/shipments?{query}"
    response = await client.get(path, headers=signed("customs-officer", path, clock))
    await assert_error(response, 400, "malformed")


# --- permits ------------------------------------------------------------------------------------


async def test_permit_is_public_and_proven(client: Client, node: TestNode) -> None:
    status, answer = await get_obj(client, f"/v1/permits/{PERMIT}")
    assert status == 200
    header = check_certified(answer, node.genesis)
    record = check_item(answer["permit"], header)
    assert record["status"] == "issued" and answer["effective_status"] == "issued"
    assert answer["blds_status"] == "Permit Issued"
    actions = [check_item(i, header)["action"] for i in answer["history"]]
    assert actions == ["applied", "reviewed", "approved", "issued"]


ISSUED_AT = GENESIS_TIME + 5 * BLOCK_MS  # the issuing block's time in the standard chain


@pytest.mark.parametrize(
    ("at", "valid", "reason"),
    [
        (ISSUED_AT, True, "issued, valid from"),
        (PERMIT_UNTIL - 1, True, "issued, valid from"),
        (PERMIT_UNTIL, False, "expired"),
        # valid_from lies before the permit was applied for: at that time it was not on
        # the ledger, so no one could have been shown it
        (PERMIT_FROM, False, "did not exist yet"),
    ],
)
async def test_permit_validity(
    client: Client, node: TestNode, at: int, valid: bool, reason: str
) -> None:
    status, answer = await get_obj(client, f"/v1/permits/{PERMIT}/validity?at={at}")
    assert status == 200
    header = check_certified(answer, node.genesis)
    check_item(answer["permit"], header)
    assert (answer["valid"], answer["at_ms"]) == (valid, at)
    assert reason in answer["reason"]


async def test_validity_at_a_time_before_a_revocation_is_judged_as_it_stood(
    client: Client, node: TestNode
) -> None:
    """A revocation written later does not make the permit invalid in the past: the answer
    is given at the height the permit last changed by then (issue 19)."""
    issued = node.chain.head().height
    before = node.chain.head().time_ms
    node.commit([node.tx("permit-officer", "permit.revoke", {"permit_id": PERMIT, "reason": "x"})])
    status, answer = await get_obj(client, f"/v1/permits/{PERMIT}/validity?at={before}")
    assert status == 200 and answer["valid"] is True, answer["reason"]
    header = check_certified(answer, node.genesis)
    assert header.height <= issued < node.chain.head().height
    assert check_item(answer["permit"], header)["status"] == "issued"
    assert len(answer["history"]) == check_item(answer["permit"], header)["history_len"]
    status, now = await get_obj(client, f"/v1/permits/{PERMIT}/validity")
    assert now["valid"] is False and "revoked" in now["reason"]


async def test_permit_validity_before_issue(client: Client) -> None:
    response = await client.get(f"/v1/permits/{PERMIT}/validity?at={PERMIT_FROM}&height=3")
    body = await response.json()
    assert response.status == 200 and body["valid"] is False
    assert "approved" in body["reason"]


async def test_permit_errors(client: Client) -> None:
    assert (await client.get("/v1/permits/P-404")).status == 404
    assert (await client.get("/v1/permits/P-404/validity")).status == 404
    assert (await client.get(f"/v1/permits/{PERMIT}/validity?at=-5")).status == 400
    assert (await client.get("/v1/permits/%00")).status == 400


async def test_permit_search_errors(client: Client) -> None:
    for query in ("", "holder=acme&address=x", "holder=UPPER"):
        assert (await client.get(f"/v1/permits?{query}")).status == 400


# --- energy -------------------------------------------------------------------------------------


async def test_energy_account_read_rules(client: Client, clock: Clock) -> None:
    path = "/v1/energy/accounts/solar-coop"
    assert (await client.get(path)).status == 401
    assert (await client.get(path, headers=signed("wind-prosumer", path, clock))).status == 403
    assert (await client.get(path, headers=signed("energy-regulator", path, clock))).status == 200
    unknown = "/v1/energy/accounts/nobody"
    assert (await client.get(unknown, headers=signed("auditor", unknown, clock))).status == 404
    assert (await client.get("/v1/energy/accounts/No%20Way")).status == 400


# --- organisations ------------------------------------------------------------------------------


async def test_organisation_with_members(client: Client, node: TestNode) -> None:
    status, answer = await get_obj(client, "/v1/orgs/customs-rtm")
    assert status == 200
    header = check_certified(answer, node.genesis)
    assert check_item(answer["organisation"], header)["kind"] == "agency"
    roles = sorted(tuple(check_item(m, header)["roles"]) for m in answer["members"])
    assert roles == [("admin",), ("customs",)]
    assert (await client.get("/v1/orgs/nobody")).status == 404
    assert (await client.get("/v1/orgs/NOBODY")).status == 400
