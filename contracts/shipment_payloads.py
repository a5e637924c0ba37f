"""Shipment payloads: the parsed, checked form of each ``shipment.*`` transaction.

Each ``parse_*`` function reads one payload map with a :class:`~contracts.payload.Fields`
reader into a frozen dataclass and makes every check that needs no state: field limits,
HS codes and currencies of goods lines, UN/LOCODE places, ISO 6346 container check
digits, and the vocabularies a field must come from (document types, milestones, customs
decisions). Parsing is stateless, so the mempool runs it once at admission; the handlers
that apply a parsed payload to state are in :mod:`contracts.shipments`.
"""

from __future__ import annotations

from dataclasses import dataclass

from contracts import codes
from contracts.errors import bad_payload
from contracts.payload import Fields
from contracts.shipment_records import GoodsLine
from ledger.encoding import Value

DOCUMENT_TYPES = frozenset(
    {
        "bill_of_lading",
        "commercial_invoice",
        "packing_list",
        "certificate_of_origin",
        "import_licence",
    }
)
MILESTONES = frozenset({"gate_in", "gate_out", "loaded", "departed", "arrived", "discharged"})

# decision -> (customs statuses it may follow, status it leads to). "seize" is the
# only decision still possible after delivery; nothing at all follows a seizure.
CUSTOMS_TRANSITIONS: dict[str, tuple[frozenset[str], str]] = {
    "hold": (frozenset({"pending", "inspection", "cleared", "released"}), "held"),
    "inspect": (frozenset({"pending", "held"}), "inspection"),
    "clear": (frozenset({"pending", "held", "inspection"}), "cleared"),
    "release": (frozenset({"cleared"}), "released"),
    "seize": (frozenset({"pending", "held", "inspection", "cleared", "released"}), "seized"),
}

MAX_GOODS = 100
MAX_CONTAINERS = 50


def _parse_goods(f: Fields) -> GoodsLine:
    line = GoodsLine(
        hs_code=f.text("hs_code", max_len=10, pattern=codes.HS_CODE_PATTERN),
        description=f.text("description", max_len=200),
        quantity=f.integer("quantity", lo=1, hi=10**12),
        unit=f.text("unit", max_len=3, pattern=codes.UNIT_PATTERN),
        value=f.integer("value", lo=0, hi=10**15),
        currency=f.text("currency", max_len=3),
    )
    f.done()
    if not codes.is_hs_code(line.hs_code):
        raise bad_payload(f"goods: {line.hs_code!r} is not an HS code (chapter 01..97)")
    if not codes.is_currency(line.currency):
        raise bad_payload(f"goods: {line.currency!r} is not an ISO 4217 currency code")
    return line


def _place(f: Fields, name: str) -> str:
    place = f.text(name, max_len=5)
    if not codes.is_unlocode(place):
        raise bad_payload(f"{name}: {place!r} is not a UN/LOCODE (country + 3 of A-Z, 2-9)")
    return place


@dataclass(frozen=True, slots=True)
class Declare:
    id: str
    consignor: str
    consignee: str
    declarant: str
    origin: str
    destination: str
    goods: tuple[GoodsLine, ...]
    containers: tuple[str, ...]
    time_ms: int | None


def parse_declare(payload: Value) -> Declare:
    f = Fields(payload, "shipment.declare")
    shipment_id = f.record_id("id")
    parties = (f.org_id("consignor"), f.org_id("consignee"), f.org_id("declarant"))
    origin, destination = _place(f, "origin"), _place(f, "destination")
    goods = tuple(
        _parse_goods(f.sub(g, i, "goods"))
        for i, g in enumerate(f.items("goods", min_len=1, max_len=MAX_GOODS))
    )
    containers = f.strings("containers", max_len=MAX_CONTAINERS, pattern=codes.CONTAINER_PATTERN)
    time_ms = f.opt_integer("time_ms")
    f.done()
    for number in containers:
        if not codes.is_container_number(number):
            raise bad_payload(f"container {number!r}: ISO 6346 check digit is wrong")
    if origin == destination:
        raise bad_payload("origin and destination must differ")
    if parties[0] == parties[1]:
        raise bad_payload("consignor and consignee must differ")
    return Declare(shipment_id, *parties, origin, destination, goods, containers, time_ms)


@dataclass(frozen=True, slots=True)
class AttachDocument:
    shipment_id: str
    type: str
    sha256: bytes
    uri: str


def parse_attach_document(payload: Value) -> AttachDocument:
    f = Fields(payload, "shipment.attach_document")
    out = AttachDocument(
        f.record_id("shipment_id"),
        f.choice("type", DOCUMENT_TYPES),
        f.raw("sha256", size=32),
        f.opt_text("uri", max_len=512),
    )
    f.done()
    return out


@dataclass(frozen=True, slots=True)
class OfferCustody:
    shipment_id: str
    to: str
    time_ms: int | None


def parse_offer_custody(payload: Value) -> OfferCustody:
    f = Fields(payload, "shipment.offer_custody")
    out = OfferCustody(f.record_id("shipment_id"), f.org_id("to"), f.opt_integer("time_ms"))
    f.done()
    return out


@dataclass(frozen=True, slots=True)
class ShipmentRef:
    shipment_id: str
    time_ms: int | None


def parse_accept_custody(payload: Value) -> ShipmentRef:
    f = Fields(payload, "shipment.accept_custody")
    out = ShipmentRef(f.record_id("shipment_id"), f.opt_integer("time_ms"))
    f.done()
    return out


def parse_confirm_party(payload: Value) -> ShipmentRef:
    f = Fields(payload, "shipment.confirm_party")
    out = ShipmentRef(f.record_id("shipment_id"), f.opt_integer("time_ms"))
    f.done()
    return out


@dataclass(frozen=True, slots=True)
class Milestone:
    shipment_id: str
    event: str
    place: str
    time_ms: int


def parse_milestone(payload: Value) -> Milestone:
    f = Fields(payload, "shipment.milestone")
    out = Milestone(
        f.record_id("shipment_id"),
        f.choice("event", MILESTONES),
        _place(f, "place"),
        f.integer("time_ms"),
    )
    f.done()
    return out


@dataclass(frozen=True, slots=True)
class CustomsDecision:
    shipment_id: str
    decision: str
    reason: str
    licence_id: str | None
    time_ms: int | None


def parse_customs_decision(payload: Value) -> CustomsDecision:
    f = Fields(payload, "shipment.customs_decision")
    shipment_id = f.record_id("shipment_id")
    decision = f.choice("decision", CUSTOMS_TRANSITIONS)
    reason = f.text("reason")
    licence_id = f.record_id("licence_id") if f.has("licence_id") else None
    time_ms = f.opt_integer("time_ms")
    f.done()
    if licence_id is not None and decision != "clear":
        raise bad_payload("licence_id is only given with a 'clear' decision")
    return CustomsDecision(shipment_id, decision, reason, licence_id, time_ms)


@dataclass(frozen=True, slots=True)
class Deliver:
    shipment_id: str
    place: str
    time_ms: int | None


def parse_deliver(payload: Value) -> Deliver:
    f = Fields(payload, "shipment.deliver")
    out = Deliver(f.record_id("shipment_id"), _place(f, "place"), f.opt_integer("time_ms"))
    f.done()
    return out
