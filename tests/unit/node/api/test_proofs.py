"""State proofs and Merkle-log proofs, checked the way a client checks them."""

from __future__ import annotations

import pytest

from contracts import state_keys as sk
from ledger.encoding import decode
from ledger.merkle import ConsistencyProof, InclusionProof, leaf_hash
from ledger.state_proof import StateProof, verify_state_proof
from ledger.state_prune import prune_step
from tests.unit.node.api.conftest import (
    SHIPMENT,
    Client,
    Clock,
    Scenario,
    TestNode,
    assert_error,
    check_certified,
    get_obj,
    key,
    signed,
)


def state_path(state_key: bytes, query: str = "") -> str:
    return f"/v1/state/{state_key.hex()}" + (f"?{query}" if query else "")


# --- state --------------------------------------------------------------------------------------


async def test_public_state_value_is_proven(client: Client, node: TestNode) -> None:
    status, answer = await get_obj(client, state_path(sk.org_key("acme")))
    assert status == 200
    header = check_certified(answer, node.genesis)
    assert header.height == 9
    proof = StateProof.from_obj(answer["proof"])
    verify_state_proof(header.state_root, proof)
    assert proof.value == answer["value"]
    assert decode(answer["value"])["id"] == "acme"


async def test_absent_key_is_proven_absent(client: Client, node: TestNode, clock: Clock) -> None:
    path = state_path(sk.shipment_key("no-such-shipment"))
    status, answer = await get_obj(client, path, signed("customs-officer", path, clock))
    assert status == 200 and answer["value"] is None
    header = check_certified(answer, node.genesis)
    verify_state_proof(header.state_root, StateProof.from_obj(answer["proof"]))
    status, answer = await get_obj(client, state_path(sk.permit_key("no-such-permit")))
    assert status == 200 and answer["value"] is None  # a public record type: to anyone


@pytest.mark.parametrize("reader", [None, "wind-prosumer"])
async def test_absence_of_a_confidential_record_is_no_oracle(
    client: Client, clock: Clock, reader: str | None
) -> None:
    """An outsider gets the same refusal for a shipment that exists and one that does not."""
    answers = []
    for shipment_id in (SHIPMENT, "no-such-shipment"):
        for path in (state_path(sk.shipment_key(shipment_id)), f"/v1/shipments/{shipment_id}"):
            headers = None if reader is None else signed(reader, path, clock)
            response = await client.get(path, headers=headers)
            answers.append((response.status, (await response.json())["error"]["code"]))
    assert len(set(answers)) == 1 and answers[0][0] in (401, 403), answers


async def test_state_at_an_earlier_height(client: Client, node: TestNode) -> None:
    path = state_path(sk.permit_key("P-0001"), "height=2")
    status, answer = await get_obj(client, path)
    assert status == 200
    header = check_certified(answer, node.genesis)
    assert header.height == 2
    verify_state_proof(header.state_root, StateProof.from_obj(answer["proof"]))
    assert decode(answer["value"])["status"] == "in_review"


async def test_state_json_form(client: Client) -> None:
    response = await client.get(state_path(sk.org_key("acme")))
    body = await response.json()
    assert response.status == 200
    assert body["key"] == sk.org_key("acme").hex()
    assert isinstance(body["proof"]["siblings"], list)


async def test_private_state_needs_a_signature(client: Client) -> None:
    response = await client.get(state_path(sk.shipment_key(SHIPMENT)))
    await assert_error(response, 401, "signature_required")


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        ("globex-trader", 200),  # consignee
        ("oceanic-carrier", 200),  # has held it
        ("customs-officer", 200),  # customs role
        ("auditor", 200),
        ("outsider-trader", 403),
        ("solar-prosumer", 403),
        ("stranger", 403),  # a valid signature by a key that is no member
    ],
)
async def test_private_state_by_role(
    client: Client, node: TestNode, clock: Clock, label: str, expected: int
) -> None:
    path = state_path(sk.shipment_history_key(SHIPMENT, 0))
    status, answer = await get_obj(client, path, signed(label, path, clock))
    assert status == expected, answer
    if expected == 200:
        header = check_certified(answer, node.genesis)
        verify_state_proof(header.state_root, StateProof.from_obj(answer["proof"]))
    else:
        assert answer["error"]["code"] == "forbidden"


async def test_unknown_key_kinds_are_for_auditors(client: Client, clock: Clock) -> None:
    path = state_path(b"\xff\x00weird")
    assert (await client.get(path)).status == 401  # absent or not: only auditors know
    assert (await client.get(path, headers=signed("auditor", path, clock))).status == 200
    present = state_path(sk.nonce_key(key("acme-trader").public_key))
    assert (await client.get(present)).status == 200  # nonces are public


async def test_bad_state_requests(client: Client) -> None:
    for path, status in [
        ("/v1/state/zz", 400),
        ("/v1/state/0", 400),
        ("/v1/state/" + "00" * 1025, 400),
        (state_path(b"org/acme", "height=0"), 400),
        (state_path(b"org/acme", "height=x"), 400),
        (state_path(b"org/acme", "height=1&height=2"), 400),
        (state_path(b"org/acme", "height=10"), 404),
    ]:
        response = await client.get(path)
        assert response.status == status, path


# --- log ----------------------------------------------------------------------------------------


async def test_consistency_from_a_checkpoint(client: Client, node: TestNode) -> None:
    old = node.header(1)  # an auditor's old checkpoint: log size 3
    status, answer = await get_obj(client, f"/v1/log/consistency?old={old.log_size}")
    assert status == 200
    new = check_certified(answer, node.genesis)
    assert new.log_size == answer["new_size"] == 18
    proof = ConsistencyProof.from_obj(answer["proof"])
    proof.verify(old.log_root, new.log_root)
    assert answer["old_root"] == old.log_root


async def test_consistency_to_an_earlier_size(client: Client, node: TestNode) -> None:
    status, answer = await get_obj(client, "/v1/log/consistency?old=3&new=8")
    assert status == 200
    new = check_certified(answer, node.genesis)
    assert new.height == 3
    ConsistencyProof.from_obj(answer["proof"]).verify(node.header(1).log_root, new.log_root)


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("", 400),
        ("old=x", 400),
        ("old=-1", 400),
        ("old=9&new=3", 400),
        ("old=1&old=2", 400),
        ("old=3&new=19", 404),
        ("old=3&new=4", 404),  # no header ends at log size 4
    ],
)
async def test_consistency_errors(client: Client, query: str, status: int) -> None:
    response = await client.get(f"/v1/log/consistency?{query}")
    assert response.status == status
    assert "error" in await response.json()


async def test_inclusion_in_the_log(client: Client, node: TestNode, scenario: Scenario) -> None:
    status, answer = await get_obj(client, "/v1/log/inclusion/0")
    assert status == 200
    header = check_certified(answer, node.genesis)
    assert answer["leaf_hash"] == leaf_hash(scenario.declare.hash)
    InclusionProof.from_obj(answer["proof"]).verify(answer["leaf_hash"], header.log_root)

    status, answer = await get_obj(client, "/v1/log/inclusion/0?size=3")
    header = check_certified(answer, node.genesis)
    assert header.height == 1
    InclusionProof.from_obj(answer["proof"]).verify(
        leaf_hash(scenario.declare.hash), header.log_root
    )


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/v1/log/inclusion/18", 404),
        ("/v1/log/inclusion/5?size=3", 404),
        ("/v1/log/inclusion/0?size=19", 404),
        ("/v1/log/inclusion/0?size=0", 400),
        ("/v1/log/inclusion/x", 400),
    ],
)
async def test_inclusion_errors(client: Client, path: str, status: int) -> None:
    assert (await client.get(path)).status == status


async def test_state_below_a_pruned_nodes_window_is_refused_with_the_height(
    client: Client, node: TestNode, clock: Clock
) -> None:
    """A node that keeps the last 4 heights (pruning switched on at head 9) answers 410
    ``state_pruned`` below height 6, for raw state and domain reads alike, and serves 6."""
    head = node.chain.head()
    prune_step(node.store, head.height, 4)
    status, answer = await get_obj(client, "/v1/status")
    assert status == 200 and answer["oldest_state_height"] == 6
    for path in (state_path(sk.org_key("acme"), "height=5"), "/v1/orgs/acme?height=5"):
        status, answer = await get_obj(client, path)
        assert status == 410, (path, answer)
        assert answer["error"]["code"] == "state_pruned"
        assert answer["error"]["message"].startswith(
            "this node keeps state from height 6 on; ask an archive node"
        )
    status, answer = await get_obj(client, state_path(sk.org_key("acme"), "height=6"))
    assert status == 200 and check_certified(answer, node.genesis).height == 6
