"""GET /v1/gov/proposals and /v1/gov/proposals/{id}: members only, every record proven."""

from __future__ import annotations

from ledger.encoding import Value
from tests.unit.node.api.conftest import (
    Client,
    Clock,
    TestNode,
    check_certified,
    check_item,
    get_obj,
    key,
    read_signed,
    signed,
)


def propose(node: TestNode, label: str) -> str:
    """A role-grant proposal by the customs agency's admin (pending: 3 of 4 are needed)."""
    member: Value = {"public_key": key(label).public_key, "name": label, "roles": ["permit_office"]}
    change: dict[str, Value] = {"org": "permits-rtm", "members": [member]}
    tx = node.tx("customs-admin", "gov.propose", {"kind": "role-grant", "change": change})
    node.commit([tx])  # the listing tests count what executed
    return "gov-" + tx.hash.hex()[:32]


async def test_proposals_are_listed_and_proven_for_members(
    client: Client, node: TestNode, clock: Clock
) -> None:
    first, second = propose(node, "clerk-1"), propose(node, "clerk-2")
    path = "/v1/gov/proposals"
    answer = await read_signed(client, "acme-trader", path, clock)
    header = check_certified(answer, node.genesis)
    assert check_item(answer["registry"], header)["count"] == 2
    assert [p["id"] for p in answer["proposals"]] == [second, first]
    for item in answer["proposals"]:
        record = check_item(item["proposal"], header)
        assert check_item(item["entry"], header) == {"id": record["id"]}
        assert item["status"] == record["status"] == "pending"
        assert record["approvals"] == ["customs-rtm"]
    # paging
    path = "/v1/gov/proposals?limit=1"
    _, page = await get_obj(client, path, signed("acme-trader", path, clock))
    assert [p["id"] for p in page["proposals"]] == [second] and page["next_before"] == 1
    path = "/v1/gov/proposals?limit=1&before=1"
    _, page = await get_obj(client, path, signed("acme-trader", path, clock))
    assert [p["id"] for p in page["proposals"]] == [first] and page["next_before"] is None


async def test_one_proposal(client: Client, node: TestNode, clock: Clock) -> None:
    pid = propose(node, "clerk-3")
    path = f"/v1/gov/proposals/{pid}"
    status, answer = await get_obj(client, path, signed("oceanic-carrier", path, clock))
    assert status == 200 and answer["status"] == "pending"
    header = check_certified(answer, node.genesis)
    record = check_item(answer["proposal"], header)
    assert record["kind"] == "role-grant" and record["proposer_org"] == "customs-rtm"
    missing = "/v1/gov/proposals/gov-" + "00" * 16
    assert (await client.get(missing, headers=signed("acme-trader", missing, clock))).status == 404
    bad = "/v1/gov/proposals/gov-XYZ"
    assert (await client.get(bad, headers=signed("acme-trader", bad, clock))).status == 400


async def test_outsiders_read_no_governance(client: Client, node: TestNode, clock: Clock) -> None:
    pid = propose(node, "clerk-4")
    for path in ("/v1/gov/proposals", f"/v1/gov/proposals/{pid}"):
        response = await client.get(path)
        assert response.status == 401
        assert pid not in await response.text()
    # a key that is no member signs in vain
    path = "/v1/gov/proposals"
    response = await client.get(path, headers=signed("stranger", path, clock))
    assert response.status == 403 and pid not in await response.text()
