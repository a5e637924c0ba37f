"""Shipments: declare, documents, custody, milestones, customs decisions, delivery."""

from __future__ import annotations

import hashlib

import pytest

from contracts import index_keys as ik
from contracts import queries
from contracts import state_keys as sk
from ledger.block import Receipt
from ledger.crypto import PrivateKey
from ledger.encoding import Value

from .harness import Chain, as_obj, event_types, goods_line, member_key

BROKER = member_key("broker", "clerk")
EXPORTER = member_key("exporter", "clerk")
IMPORTER = member_key("importer", "clerk")
CARRIER_A = member_key("carrier-a", "ops")
CARRIER_B = member_key("carrier-b", "ops")
PORT = member_key("port", "officer")
CUSTOMS = member_key("customs", "officer")
PERMIT_CLERK = member_key("permits", "clerk")
AUDITOR = member_key("audit", "auditor")

C1, C2 = "CSQU3054383", "BICU1234565"


def declare_payload(**over: Value) -> dict[str, Value]:
    payload: dict[str, Value] = {
        "id": "SHP-1",
        "consignor": "exporter",
        "consignee": "importer",
        "declarant": "broker",
        "origin": "CNSHA",
        "destination": "KRPUS",
        "goods": [goods_line(description="Lithium-ion batteries", quantity=1200, value=4_500_000)],
        "containers": [C1, C2],
    }
    payload.update(over)
    return payload


def declared(chain: Chain | None = None, *, confirm: bool = True, **over: Value) -> Chain:
    """Declared by the broker; with ``confirm``, consignor and consignee confirm their roles."""
    chain = chain or Chain()
    chain.ok(BROKER, "shipment.declare", declare_payload(**over))
    if confirm:
        sid = over.get("id", "SHP-1")
        parties = {"consignor": EXPORTER, "consignee": IMPORTER}
        payload = declare_payload(**over)
        for role, signer in parties.items():
            if payload[role] in ("exporter", "importer") and payload[role] != "broker":
                chain.ok(
                    member_key(str(payload[role]), "clerk"),
                    "shipment.confirm_party",
                    {"shipment_id": sid},
                )
            del signer
    return chain


def in_custody_of_carrier(chain: Chain | None = None, **over: Value) -> Chain:
    chain = declared(chain, **over)
    sid = over.get("id", "SHP-1")
    chain.ok(EXPORTER, "shipment.offer_custody", {"shipment_id": sid, "to": "carrier-a"})
    chain.ok(CARRIER_A, "shipment.accept_custody", {"shipment_id": sid})
    return chain


def doc(kind: str = "bill_of_lading", body: bytes = b"BL 1") -> dict[str, Value]:
    return {"shipment_id": "SHP-1", "type": kind, "sha256": hashlib.sha256(body).digest()}


def decide(decision: str, **extra: Value) -> dict[str, Value]:
    return {"shipment_id": "SHP-1", "decision": decision, "reason": f"{decision} per rule"} | extra


def refuses_documents_and_offers(chain: Chain, holder: PrivateKey, to: str) -> None:
    """Closed SHP-1 takes neither a document nor a custody offer to ``to`` from ``holder``."""
    chain.fails("wrong_state", holder, "shipment.attach_document", doc())
    offer: dict[str, Value] = {"shipment_id": "SHP-1", "to": to}
    chain.fails("wrong_state", holder, "shipment.offer_custody", offer)


def clearing_refused(chain: Chain, **extra: Value) -> Receipt:
    """Customs' ``clear`` of SHP-1 (with ``extra``: a licence id) is refused: no valid licence."""
    return chain.fails(
        "licence_required", CUSTOMS, "shipment.customs_decision", decide("clear", **extra)
    )


# --- declare ---------------------------------------------------------------------------------


def test_declare_creates_record_history_events_and_indexes() -> None:
    chain = Chain()
    when = chain.time_ms - 5000
    receipt = chain.ok(BROKER, "shipment.declare", declare_payload(time_ms=when))
    assert event_types(receipt) == ["shipment.declared"]
    assert receipt.events[0].attrs["containers"] == [C1, C2]
    s = as_obj(queries.get_shipment(chain.state, "SHP-1"))
    assert s is not None
    assert (s["holder"], s["stage"], s["customs_status"], s["history_len"]) == (
        "exporter",
        "declared",
        "pending",
        1,
    )
    assert s["declared_time_ms"] == when
    [entry] = as_obj(queries.get_shipment_history(chain.state, "SHP-1"))
    assert entry["event"] == "declared" and entry["actor_org"] == "broker"
    assert entry["place"] == "CNSHA" and entry["height"] == 1
    assert entry["tx_hash"] == chain.outcomes[-1].receipts[0].tx_hash
    assert queries.find_shipments_by_container(chain.index, C1) == ["SHP-1"]
    for party in ("exporter", "importer", "broker"):
        assert queries.find_shipments_by_party(chain.index, party) == ["SHP-1"]
    assert queries.find_shipments_by_status(chain.index, "declared") == ["SHP-1"]
    assert queries.find_shipments_by_status(chain.index, "pending") == ["SHP-1"]
    assert chain.outcomes[-1].index_changes[ik.SHIPMENT_CONTAINER.key(C2, "SHP-1")] == (
        sk.shipment_key("SHP-1")
    )


@pytest.mark.parametrize(
    "over",
    [
        {"origin": "KRPU"},
        {"destination": "krpus"},
        {"destination": "CNSHA"},
        {"containers": ["CSQU3054384"]},
        {"containers": [C1, C1]},
        {"consignee": "exporter"},
        {"id": "has space"},
        {"goods": []},
        {"goods": [goods_line(hs_code="85076")]},
        {"goods": [goods_line(currency="XYZ")]},
        {"goods": [goods_line(quantity=0)]},
        {"goods": [goods_line(value=-1)]},
        {"goods": [goods_line(colour="red")]},
        {"surprise": True},
        {"time_ms": "yesterday"},
    ],
)
def test_declare_bad_payload(over: dict[str, Value]) -> None:
    Chain().fails("bad_payload", BROKER, "shipment.declare", declare_payload(**over))


def test_declare_rejections() -> None:
    chain = Chain()
    chain.fails("forbidden_role", CARRIER_A, "shipment.declare", declare_payload())
    chain.fails("forbidden", EXPORTER, "shipment.declare", declare_payload())  # not declarant
    chain.fails("not_found", BROKER, "shipment.declare", declare_payload(consignee="nobody"))
    chain.fails(
        "bad_time", BROKER, "shipment.declare", declare_payload(time_ms=chain.time_ms + 3_600_000)
    )
    declared(chain)
    chain.fails("duplicate", BROKER, "shipment.declare", declare_payload())


# --- documents -------------------------------------------------------------------------------


def test_attach_document() -> None:
    chain = declared(confirm=False)
    receipt = chain.ok(
        EXPORTER, "shipment.attach_document", doc() | {"uri": "https://docs.example/bl/1"}
    )
    assert event_types(receipt) == ["shipment.document_attached"]
    chain.ok(CUSTOMS, "shipment.attach_document", doc("certificate_of_origin", b"CO"))
    s = as_obj(queries.get_shipment(chain.state, "SHP-1"))
    assert s is not None and [d["type"] for d in s["documents"]] == [
        "bill_of_lading",
        "certificate_of_origin",
    ]
    assert s["documents"][0]["sha256"] == hashlib.sha256(b"BL 1").digest()
    assert s["documents"][0]["uri"] == "https://docs.example/bl/1"
    assert s["history_len"] == 3


def test_attach_document_rejections() -> None:
    chain = declared()
    chain.fails("forbidden", CARRIER_B, "shipment.attach_document", doc())  # not involved
    chain.fails("forbidden_role", PORT, "shipment.attach_document", doc())
    chain.fails("bad_payload", EXPORTER, "shipment.attach_document", doc("selfie"))
    chain.fails("bad_payload", EXPORTER, "shipment.attach_document", doc() | {"sha256": b"x"})
    chain.fails("not_found", EXPORTER, "shipment.attach_document", doc() | {"shipment_id": "NOPE"})
    chain.ok(EXPORTER, "shipment.attach_document", doc())
    chain.fails("duplicate", IMPORTER, "shipment.attach_document", doc())


# --- custody ---------------------------------------------------------------------------------


def test_custody_changes_only_on_acceptance() -> None:
    chain = declared()
    offer = chain.ok(
        EXPORTER, "shipment.offer_custody", {"shipment_id": "SHP-1", "to": "carrier-a"}
    )
    assert event_types(offer) == ["shipment.custody_offered"]
    s = as_obj(queries.get_shipment(chain.state, "SHP-1"))
    assert s is not None and s["holder"] == "exporter" and s["custody_offer"]["to"] == "carrier-a"
    accept = chain.ok(CARRIER_A, "shipment.accept_custody", {"shipment_id": "SHP-1"})
    assert accept.events[0].attrs == {"shipment": "SHP-1", "from": "exporter", "to": "carrier-a"}
    s = as_obj(queries.get_shipment(chain.state, "SHP-1"))
    assert s is not None and s["holder"] == "carrier-a" and s["custody_offer"] is None
    assert s["stage"] == "in_transit" and s["holders"] == ["exporter", "carrier-a"]
    assert queries.find_shipments_by_party(chain.index, "carrier-a") == ["SHP-1"]
    assert queries.find_shipments_by_status(chain.index, "declared") == []
    assert queries.find_shipments_by_status(chain.index, "in_transit") == ["SHP-1"]
    # a new offer replaces an open one
    chain.ok(CARRIER_A, "shipment.offer_custody", {"shipment_id": "SHP-1", "to": "carrier-b"})
    chain.ok(CARRIER_A, "shipment.offer_custody", {"shipment_id": "SHP-1", "to": "port"})
    chain.fails("forbidden", CARRIER_B, "shipment.accept_custody", {"shipment_id": "SHP-1"})
    chain.ok(PORT, "shipment.accept_custody", {"shipment_id": "SHP-1"})


def test_custody_rejections() -> None:
    chain = declared()
    offer = {"shipment_id": "SHP-1", "to": "carrier-a"}
    chain.fails("forbidden", IMPORTER, "shipment.offer_custody", offer)  # not the holder
    chain.fails("forbidden_role", CUSTOMS, "shipment.offer_custody", offer)
    chain.fails("bad_payload", EXPORTER, "shipment.offer_custody", {**offer, "to": "exporter"})
    chain.fails("not_found", EXPORTER, "shipment.offer_custody", {**offer, "to": "nobody"})
    chain.fails("wrong_state", CARRIER_A, "shipment.accept_custody", {"shipment_id": "SHP-1"})
    chain.ok(EXPORTER, "shipment.offer_custody", offer)
    chain.fails("forbidden", CARRIER_B, "shipment.accept_custody", {"shipment_id": "SHP-1"})
    chain.ok(CUSTOMS, "shipment.customs_decision", decide("hold"))
    chain.fails("wrong_state", CARRIER_A, "shipment.accept_custody", {"shipment_id": "SHP-1"})
    chain.fails("wrong_state", EXPORTER, "shipment.offer_custody", offer)


# --- milestones ------------------------------------------------------------------------------


def test_milestones_by_holder_or_port() -> None:
    chain = in_custody_of_carrier()
    t = chain.time_ms
    r = chain.ok(
        CARRIER_A,
        "shipment.milestone",
        {"shipment_id": "SHP-1", "event": "loaded", "place": "CNSHA", "time_ms": t - 10},
    )
    assert r.events[0].attrs == {
        "shipment": "SHP-1",
        "milestone": "loaded",
        "place": "CNSHA",
        "time_ms": t - 10,
    }
    chain.ok(
        PORT,
        "shipment.milestone",
        {"shipment_id": "SHP-1", "event": "discharged", "place": "KRPUS", "time_ms": t},
    )
    history = as_obj(queries.get_shipment_history(chain.state, "SHP-1"))
    last = history[-1]
    assert last["event"] == "milestone" and last["details"] == {"milestone": "discharged"}
    assert last["biz_step"] == "unloading" and last["actor_org"] == "port"
    assert last["recorded_ms"] == chain.time_ms and last["time_ms"] == t
    assert [h["seq"] for h in history] == list(range(len(history)))


def test_milestone_rejections() -> None:
    chain = in_custody_of_carrier()
    m = {"shipment_id": "SHP-1", "event": "departed", "place": "CNSHA", "time_ms": chain.time_ms}
    chain.fails("forbidden", CARRIER_B, "shipment.milestone", m)  # not the holder
    chain.fails("forbidden", EXPORTER, "shipment.milestone", m)  # no longer the holder
    chain.fails("forbidden_role", CUSTOMS, "shipment.milestone", m)
    chain.fails("bad_payload", CARRIER_A, "shipment.milestone", {**m, "event": "sank"})
    chain.fails("bad_payload", CARRIER_A, "shipment.milestone", {**m, "place": "Shanghai"})
    chain.fails(
        "bad_payload",
        CARRIER_A,
        "shipment.milestone",
        {k: v for k, v in m.items() if k != "time_ms"},
    )
    chain.fails(
        "bad_time", CARRIER_A, "shipment.milestone", {**m, "time_ms": chain.time_ms + 10**9}
    )


# --- customs ---------------------------------------------------------------------------------


def test_customs_hold_inspect_clear_release() -> None:
    chain = declared(confirm=False)
    for decision, status in [
        ("hold", "held"),
        ("inspect", "inspection"),
        ("clear", "cleared"),
        ("release", "released"),
    ]:
        r = chain.ok(CUSTOMS, "shipment.customs_decision", decide(decision))
        assert r.events[0].attrs == {"shipment": "SHP-1", "decision": decision, "status": status}
        assert queries.find_shipments_by_status(chain.index, status) == ["SHP-1"]
    assert queries.find_shipments_by_status(chain.index, "pending") == []
    assert queries.find_shipments_by_status(chain.index, "held") == []
    history = as_obj(queries.get_shipment_history(chain.state, "SHP-1"))
    assert [h["details"].get("decision") for h in history[1:]] == [
        "hold",
        "inspect",
        "clear",
        "release",
    ]
    assert history[1]["biz_step"] == "holding"


def test_customs_transition_table() -> None:
    chain = declared()
    chain.fails("wrong_state", CUSTOMS, "shipment.customs_decision", decide("release"))
    chain.ok(CUSTOMS, "shipment.customs_decision", decide("clear"))
    chain.fails("wrong_state", CUSTOMS, "shipment.customs_decision", decide("inspect"))
    chain.fails("wrong_state", CUSTOMS, "shipment.customs_decision", decide("clear"))
    chain.fails("forbidden_role", PORT, "shipment.customs_decision", decide("release"))
    chain.fails("bad_payload", CUSTOMS, "shipment.customs_decision", decide("wave_through"))
    chain.fails(
        "bad_payload",
        CUSTOMS,
        "shipment.customs_decision",
        {"shipment_id": "SHP-1", "decision": "release"},
    )  # no reason
    chain.fails(
        "bad_payload", CUSTOMS, "shipment.customs_decision", decide("release", licence_id="L1")
    )
    chain.ok(CUSTOMS, "shipment.customs_decision", decide("seize"))
    for d in ("hold", "inspect", "clear", "release", "seize"):
        chain.fails("wrong_state", CUSTOMS, "shipment.customs_decision", decide(d))
    # nothing else either
    refuses_documents_and_offers(chain, EXPORTER, "carrier-a")


RESTRICTED_GOODS: list[Value] = [
    goods_line(hs_code="930200", description="Revolvers", quantity=10, value=900_000)
]


def issue_licence(
    chain: Chain,
    holder_key: object,
    permit_id: str = "LIC-1",
    window: tuple[int, int] | None = None,
    hs_codes: list[str] | None = None,
) -> None:
    payload: dict[str, Value] = {
        "id": permit_id,
        "type": "import_licence",
        "address": "12 Harbour Rd",
        "description": "arms import",
    }
    if hs_codes is not None:
        payload["hs_codes"] = hs_codes
    chain.ok(holder_key, "permit.apply", payload)  # type: ignore[arg-type]
    chain.ok(PERMIT_CLERK, "permit.review", {"permit_id": permit_id})
    chain.ok(PERMIT_CLERK, "permit.approve", {"permit_id": permit_id})
    start, end = window or (chain.time_ms - 1000, chain.time_ms + 10**9)
    chain.ok(
        PERMIT_CLERK,
        "permit.issue",
        {"permit_id": permit_id, "valid_from": start, "valid_until": end},
    )


def test_restricted_goods_need_a_valid_licence_of_the_consignee() -> None:
    chain = declared(goods=RESTRICTED_GOODS)
    clearing_refused(chain)
    clearing_refused(chain, licence_id="NOPE")
    issue_licence(chain, EXPORTER, "LIC-EXP")  # held by the consignor, not the consignee
    clearing_refused(chain, licence_id="LIC-EXP")
    issue_licence(chain, IMPORTER, "LIC-NARROW", hs_codes=["3601"])
    r = clearing_refused(chain, licence_id="LIC-NARROW")
    assert "does not cover" in r.message
    issue_licence(chain, IMPORTER, "LIC-OLD", window=(chain.time_ms - 10**9, chain.time_ms - 10))
    r = clearing_refused(chain, licence_id="LIC-OLD")
    assert "expired" in r.message
    issue_licence(chain, IMPORTER, "LIC-1", hs_codes=["93"])
    chain.ok(PERMIT_CLERK, "permit.suspend", {"permit_id": "LIC-1", "reason": "audit"})
    clearing_refused(chain, licence_id="LIC-1")
    chain.ok(PERMIT_CLERK, "permit.reinstate", {"permit_id": "LIC-1", "reason": "audit done"})
    chain.ok(CUSTOMS, "shipment.customs_decision", decide("clear", licence_id="LIC-1"))
    s = as_obj(queries.get_shipment(chain.state, "SHP-1"))
    assert s is not None and s["licence_id"] == "LIC-1"
    assert (
        as_obj(queries.get_shipment_history(chain.state, "SHP-1"))[-1]["details"]["licence_id"]
        == "LIC-1"
    )


def test_unrestricted_goods_clear_without_licence() -> None:
    chain = declared()
    chain.ok(CUSTOMS, "shipment.customs_decision", decide("clear"))


# --- delivery --------------------------------------------------------------------------------


def test_delivery_closes_the_shipment_except_for_seizure() -> None:
    chain = in_custody_of_carrier()
    deliver = {"shipment_id": "SHP-1", "place": "KRPUS"}
    chain.fails("wrong_state", CARRIER_A, "shipment.deliver", deliver)  # not released
    chain.ok(CUSTOMS, "shipment.customs_decision", decide("clear"))
    chain.fails("wrong_state", CARRIER_A, "shipment.deliver", deliver)  # cleared, not released
    chain.ok(CUSTOMS, "shipment.customs_decision", decide("release"))
    chain.fails("forbidden", CARRIER_B, "shipment.deliver", deliver)
    chain.fails("forbidden_role", PORT, "shipment.deliver", deliver)
    chain.fails("bad_payload", CARRIER_A, "shipment.deliver", {"shipment_id": "SHP-1"})
    r = chain.ok(CARRIER_A, "shipment.deliver", deliver)
    assert r.events[0].attrs == {"shipment": "SHP-1", "consignee": "importer", "place": "KRPUS"}
    s = as_obj(queries.get_shipment(chain.state, "SHP-1"))
    assert s is not None and s["stage"] == "delivered" and s["holder"] == "importer"
    assert queries.find_shipments_by_status(chain.index, "delivered") == ["SHP-1"]
    chain.fails("wrong_state", IMPORTER, "shipment.deliver", deliver)
    chain.fails("forbidden", CARRIER_A, "shipment.deliver", deliver)  # no longer the holder
    chain.fails(
        "wrong_state",
        PORT,
        "shipment.milestone",
        {"shipment_id": "SHP-1", "event": "gate_out", "place": "KRPUS", "time_ms": chain.time_ms},
    )
    refuses_documents_and_offers(chain, IMPORTER, "carrier-b")
    chain.fails("wrong_state", CUSTOMS, "shipment.customs_decision", decide("hold"))
    chain.ok(CUSTOMS, "shipment.customs_decision", decide("seize"))
    assert queries.find_shipments_by_status(chain.index, "seized") == ["SHP-1"]


def test_consignee_may_record_delivery() -> None:
    chain = in_custody_of_carrier()
    chain.ok(CUSTOMS, "shipment.customs_decision", decide("clear"))
    chain.ok(CUSTOMS, "shipment.customs_decision", decide("release"))
    chain.ok(IMPORTER, "shipment.deliver", {"shipment_id": "SHP-1", "place": "KRSEL"})


def test_full_history_is_provable_key_by_key() -> None:
    chain = in_custody_of_carrier()
    chain.ok(EXPORTER, "shipment.attach_document", doc())
    keys = queries.shipment_proof_keys(chain.state, "SHP-1")
    assert keys[0] == sk.shipment_key("SHP-1")
    assert keys[1:] == [sk.shipment_history_key("SHP-1", i) for i in range(6)]
    assert all(chain.state.get(k) is not None for k in keys)
    assert chain.state.get(sk.shipment_history_key("SHP-1", 6)) is None
    events = [h["event"] for h in as_obj(queries.get_shipment_history(chain.state, "SHP-1"))]
    assert events == [
        "declared",
        "party_confirmed",
        "party_confirmed",
        "custody_offered",
        "custody_transferred",
        "document_attached",
    ]


def test_index_paging() -> None:
    chain = Chain()
    for i in range(5):
        declared(chain, id=f"SHP-{i}")
    assert queries.find_shipments_by_container(chain.index, C1, limit=2) == ["SHP-0", "SHP-1"]
    assert queries.find_shipments_by_container(chain.index, C1, limit=2, after="SHP-1") == [
        "SHP-2",
        "SHP-3",
    ]
    assert queries.find_shipments_by_party(chain.index, "broker", after="SHP-3") == ["SHP-4"]
