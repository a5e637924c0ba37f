"""Sweeps over every transaction kind: the generic refusals, and payload fuzzing."""

from __future__ import annotations

from dataclasses import field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts import context
from contracts.errors import HTTP_STATUS, ContractError
from contracts.fields import AMOUNT, payload
from contracts.registry import HANDLERS, tx_kinds
from ledger.crypto import PrivateKey
from ledger.encoding import Value
from ledger.schema import Described, wire

from .harness import WORLD, Chain, goods_line, key, member_key

# one member key per role in the test world
ROLE_KEYS: dict[str, PrivateKey] = {}
for _org, (_kind, _members) in WORLD.items():
    for _name, _roles in _members.items():
        for _role in _roles:
            ROLE_KEYS.setdefault(_role, member_key(_org, _name))
AUDITOR = member_key("audit", "auditor")  # holds no role any kind accepts

EXPECTED_KINDS = {
    "identity.register_org",
    "identity.register_member",
    "identity.revoke_member",
    "shipment.declare",
    "shipment.confirm_party",
    "shipment.attach_document",
    "shipment.offer_custody",
    "shipment.accept_custody",
    "shipment.milestone",
    "shipment.customs_decision",
    "shipment.deliver",
    "permit.apply",
    "permit.review",
    "permit.approve",
    "permit.deny",
    "permit.issue",
    "permit.inspect",
    "permit.renew",
    "permit.suspend",
    "permit.reinstate",
    "permit.revoke",
    "energy.register_meter",
    "energy.revoke_meter",
    "energy.submit_reading",
    "energy.credit_balance",
    "energy.place_order",
    "energy.cancel_order",
    "energy.settle",
    "gov.propose",
    "gov.approve",
    "gov.withdraw",
}


def test_registry_holds_exactly_the_documented_kinds() -> None:
    assert set(tx_kinds()) == EXPECTED_KINDS
    for kind, handler in HANDLERS.items():
        assert handler.kind == kind and handler.roles and handler.summary
        assert "meter" not in handler.roles and "auditor" not in handler.roles


@pytest.mark.parametrize("kind", sorted(EXPECTED_KINDS))
def test_each_handler_reads_its_own_kind(kind: str) -> None:
    """The kind a handler is registered under is the one its parser names in a refusal
    (both come from the payload's description), and its summary is one written line."""
    with pytest.raises(ContractError) as refused:
        HANDLERS[kind].parse({})
    assert refused.value.code == "bad_payload"
    assert refused.value.message.startswith(f"{kind}: missing field")
    assert HANDLERS[kind].summary and "\n" not in HANDLERS[kind].summary


def test_handler_takes_kind_parser_and_summary_from_the_payload() -> None:
    @payload("test.kind")
    class Kind(Described):
        """Someone does something
        worth a summary.

        Details that stay out of it."""

        n: int = field(metadata=wire(AMOUNT))

    @context.handler(Kind, {"admin"})
    def process(ctx: context.TxContext, p: Kind) -> None:
        raise AssertionError("not applied here")

    assert (process.kind, process.roles) == ("test.kind", frozenset({"admin"}))
    assert process.summary == "Someone does something worth a summary."
    assert process.parse({"n": 3}) == Kind(3)
    with pytest.raises(ContractError, match=r"^test\.kind\.n: must be an integer"):
        process.parse({"n": "3"})


def test_a_payload_without_a_docstring_is_refused() -> None:
    with pytest.raises(TypeError, match=r"payload Bare \(test\.bare\) has no docstring"):

        @payload("test.bare")
        class Bare(Described):
            n: int = field(metadata=wire(AMOUNT))


@pytest.mark.parametrize("kind", sorted(EXPECTED_KINDS))
def test_generic_refusals_for_every_kind(kind: str) -> None:
    chain = Chain()
    sender = ROLE_KEYS[sorted(HANDLERS[kind].roles)[0]]
    # wrong role: the auditor holds none of any kind's roles
    chain.fails("forbidden_role", AUDITOR, kind, {})
    # malformed payload from a sender with the right role
    chain.fails("bad_payload", sender, kind, {})
    chain.fails("bad_payload", sender, kind, {"unexpected": 1})
    # bad nonce / replay: nothing changes, not even the nonce
    before = dict(chain.state.data)
    tx = chain.tx(sender, kind, {}, nonce=99)
    assert chain.block([tx]).receipts[0].code == "bad_nonce"
    assert chain.state.data == before
    # unknown key
    assert chain.send(key("stranger"), kind, {}).code == "unknown_sender"
    # revoked key
    admin = member_key("exporter", "admin")
    chain.ok(
        admin,
        "identity.revoke_member",
        {"public_key": member_key("exporter", "clerk").public_key, "reason": "x"},
    )
    before = dict(chain.state.data)
    assert chain.send(member_key("exporter", "clerk"), kind, {}).code == "revoked"
    assert chain.state.data == before


FIELD_NAMES = sorted(
    {
        "id",
        "name",
        "kind",
        "city",
        "members",
        "public_key",
        "roles",
        "reason",
        "shipment_id",
        "consignor",
        "consignee",
        "declarant",
        "origin",
        "destination",
        "goods",
        "containers",
        "time_ms",
        "type",
        "sha256",
        "uri",
        "to",
        "event",
        "place",
        "decision",
        "licence_id",
        "permit_id",
        "address",
        "description",
        "hs_codes",
        "valid_from",
        "valid_until",
        "conditions",
        "result",
        "notes",
        "note",
        "meter_key",
        "owner",
        "active_from_ms",
        "interval_start_ms",
        "produced_wh",
        "consumed_wh",
        "signature",
        "account",
        "amount",
        "reference",
        "side",
        "quantity_wh",
        "price_per_kwh",
        "order_id",
        "hs_code",
        "quantity",
        "unit",
        "value",
        "currency",
        "change",
        "org",
        "params",
    }
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**64 - 1),
    st.text(max_size=12),
    st.binary(max_size=70),
    st.sampled_from(["KRPUS", "CSQU3054383", "850760", "USD", "offer", "clear", "admin"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(FIELD_NAMES), inner, max_size=5),
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(sorted(EXPECTED_KINDS)),
    st.dictionaries(st.sampled_from(FIELD_NAMES), values, max_size=9),
)
def test_parsing_never_raises_anything_but_contract_errors(
    kind: str, payload: dict[str, Value]
) -> None:
    try:
        HANDLERS[kind].parse(payload)
    except ContractError as exc:
        assert exc.code == "bad_payload"


# --- mutation fuzzing through execution: only contract errors, never an exception -------------

METER = key("fuzz-meter")


def templates(chain: Chain) -> dict[str, dict[str, Value]]:
    from contracts.energy import sign_reading

    t = chain.time_ms
    start = (t // 900_000 - 3) * 900_000
    return {
        "identity.register_org": {
            "id": "fuzzco",
            "name": "Fuzz Co",
            "kind": "trader",
            "city": "Busan",
            "members": [{"public_key": key("f1").public_key, "name": "a", "roles": ["admin"]}],
        },
        "identity.register_member": {
            "public_key": key("f2").public_key,
            "name": "b",
            "roles": ["trader"],
        },
        "identity.revoke_member": {
            "public_key": member_key("exporter", "clerk").public_key,
            "reason": "x",
        },
        "shipment.declare": {
            "id": "SHP-F",
            "consignor": "exporter",
            "consignee": "importer",
            "declarant": "broker",
            "origin": "CNSHA",
            "destination": "KRPUS",
            "goods": [goods_line(hs_code="930200")],
            "containers": ["CSQU3054383"],
            "time_ms": t,
        },
        "shipment.attach_document": {
            "shipment_id": "SHP-1",
            "type": "packing_list",
            "sha256": bytes(32),
            "uri": "u",
        },
        "shipment.offer_custody": {"shipment_id": "SHP-1", "to": "carrier-b", "time_ms": t},
        "shipment.accept_custody": {"shipment_id": "SHP-1", "time_ms": t},
        "shipment.confirm_party": {"shipment_id": "SHP-1", "time_ms": t},
        "shipment.milestone": {
            "shipment_id": "SHP-1",
            "event": "loaded",
            "place": "CNSHA",
            "time_ms": t,
        },
        "shipment.customs_decision": {
            "shipment_id": "SHP-1",
            "decision": "clear",
            "reason": "r",
            "licence_id": "BP-1",
        },
        "shipment.deliver": {"shipment_id": "SHP-1", "place": "KRPUS", "time_ms": t},
        "permit.apply": {
            "id": "P-F",
            "type": "import_licence",
            "address": "a",
            "description": "d",
            "hs_codes": ["93"],
        },
        "permit.review": {"permit_id": "BP-1", "note": "n"},
        "permit.approve": {"permit_id": "BP-1"},
        "permit.deny": {"permit_id": "BP-1", "reason": "r"},
        "permit.issue": {
            "permit_id": "BP-1",
            "valid_from": t,
            "valid_until": t + 1,
            "conditions": "c",
        },
        "permit.inspect": {"permit_id": "BP-1", "result": "pass", "notes": "n", "time_ms": t},
        "permit.renew": {"permit_id": "BP-1", "valid_until": t + 10**10},
        "permit.suspend": {"permit_id": "BP-1", "reason": "r"},
        "permit.reinstate": {"permit_id": "BP-1", "reason": "r"},
        "permit.revoke": {"permit_id": "BP-1", "reason": "r"},
        "energy.register_meter": {
            "meter_key": key("m-f").public_key,
            "owner": "solar-1",
            "name": "m",
        },
        "energy.revoke_meter": {"meter_key": METER.public_key, "reason": "r"},
        "energy.submit_reading": {
            "meter_key": METER.public_key,
            "interval_start_ms": start,
            "produced_wh": 5,
            "consumed_wh": 1,
            "signature": sign_reading(METER, chain.genesis.chain_id, start, 5, 1),
        },
        "energy.credit_balance": {"account": "solar-1", "amount": 10, "reference": "r"},
        "energy.place_order": {
            "interval_start_ms": start,
            "side": "bid",
            "quantity_wh": 10,
            "price_per_kwh": 100,
        },
        "energy.cancel_order": {"order_id": "ab" * 32},
        "energy.settle": {"interval_start_ms": start},
        "gov.propose": {
            "kind": "role-grant",
            "change": {
                "org": "customs",
                "members": [
                    {"public_key": key("g1").public_key, "name": "g", "roles": ["customs"]}
                ],
            },
        },
        "gov.approve": {"id": "gov-" + "ab" * 16},
        "gov.withdraw": {"id": "gov-" + "ab" * 16},
    }


def prepared() -> Chain:
    chain = Chain()
    broker, exporter = member_key("broker", "clerk"), member_key("exporter", "clerk")
    chain.ok(broker, "shipment.declare", templates(chain)["shipment.declare"] | {"id": "SHP-1"})
    chain.ok(exporter, "shipment.confirm_party", {"shipment_id": "SHP-1"})
    chain.ok(exporter, "shipment.offer_custody", {"shipment_id": "SHP-1", "to": "carrier-a"})
    chain.ok(member_key("carrier-a", "ops"), "shipment.accept_custody", {"shipment_id": "SHP-1"})
    chain.ok(
        member_key("importer", "clerk"),
        "permit.apply",
        {"id": "BP-1", "type": "import_licence", "address": "a", "description": "d"},
    )
    chain.ok(
        member_key("energy", "regulator"),
        "energy.register_meter",
        {
            "meter_key": METER.public_key,
            "owner": "solar-1",
            "name": "m",
            "active_from_ms": chain.time_ms - 86_400_000,
        },
    )
    chain.ok(
        member_key("energy", "regulator"),
        "energy.credit_balance",
        {"account": "solar-1", "amount": 10**6, "reference": "r"},
    )
    return chain


SNAPSHOT = prepared()
SENDERS: dict[str, PrivateKey] = {
    "identity": member_key("customs", "admin"),
    "shipment.declare": member_key("broker", "clerk"),
    "shipment.customs_decision": member_key("customs", "officer"),
    "shipment": member_key("carrier-a", "ops"),
    "permit.apply": member_key("importer", "clerk"),
    "permit.inspect": member_key("permits", "insp"),
    "permit": member_key("permits", "clerk"),
    "energy.register_meter": member_key("energy", "regulator"),
    "energy.revoke_meter": member_key("energy", "regulator"),
    "energy.credit_balance": member_key("energy", "regulator"),
    "energy": member_key("solar-1", "owner"),
    "gov": member_key("customs", "admin"),
}


def sender_for(kind: str) -> PrivateKey:
    return SENDERS.get(kind) or SENDERS[kind.split(".")[0]]


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(sorted(EXPECTED_KINDS)), st.data())
def test_mutated_payloads_execute_to_a_receipt(kind: str, data: st.DataObject) -> None:
    chain = Chain()
    chain.state.data = dict(SNAPSHOT.state.data)
    chain.height, chain.time_ms = SNAPSHOT.height, SNAPSHOT.time_ms
    payload = dict(templates(chain)[kind])
    for _ in range(data.draw(st.integers(0, 2))):
        name = data.draw(st.sampled_from([*sorted(payload), "extra"]))
        if data.draw(st.booleans()):
            payload[name] = data.draw(values)
        else:
            payload.pop(name, None)
    receipt = chain.send(sender_for(kind), kind, payload)
    assert receipt.ok or receipt.code in HTTP_STATUS
