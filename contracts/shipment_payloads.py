"""Shipment payloads: the described form of each ``shipment.*`` transaction.

Each payload class describes its fields once (:mod:`contracts.fields`); parsing
(``from_obj``) makes every check that needs no state: field limits, HS codes and
currencies of goods lines, UN/LOCODE places, ISO 6346 container check digits,
the vocabularies a field must come from (document types, milestones, customs
decisions) and the rules between fields (``__post_init__``). Parsing is
stateless, so the mempool runs it once at admission; the handlers that apply a
parsed payload to state are in :mod:`contracts.shipments`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from contracts.errors import bad_payload
from contracts.fields import AMOUNT, ORG_ID, PLACE, RECORD_ID, optional, payload, text
from contracts.shipment_records import Consignment
from ledger.schema import HASH, Choice, Described, wire

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


@payload("shipment.declare")
class Declare(Consignment):
    """The declarant lodges a consignment: parties, route, goods lines, containers.

    An event time may be given."""

    time_ms: int | None = optional(AMOUNT, None)

    def __post_init__(self) -> None:
        if self.origin == self.destination:
            raise bad_payload("origin and destination must differ")
        if self.consignor == self.consignee:
            raise bad_payload("consignor and consignee must differ")


@payload("shipment.attach_document")
class AttachDocument(Described):
    """A party, the holder or customs attaches the SHA-256 of a trade document."""

    shipment_id: str = field(metadata=wire(RECORD_ID))
    type: str = field(metadata=wire(Choice(DOCUMENT_TYPES)))
    sha256: bytes = field(metadata=wire(HASH))
    uri: str = optional(text(512, min_len=0), "")


@payload("shipment.offer_custody")
class OfferCustody(Described):
    """The current holder offers custody to another organisation (replacing any open offer)."""

    shipment_id: str = field(metadata=wire(RECORD_ID))
    to: str = field(metadata=wire(ORG_ID))
    time_ms: int | None = optional(AMOUNT, None)


@dataclass(frozen=True, slots=True)
class ShipmentRef(Described):
    """A payload naming only the shipment (and an event time): :class:`AcceptCustody`,
    :class:`ConfirmParty`."""

    shipment_id: str = field(metadata=wire(RECORD_ID))
    time_ms: int | None = optional(AMOUNT, None)


@payload("shipment.accept_custody")
class AcceptCustody(ShipmentRef):
    """The organisation custody was offered to accepts it; only then does the holder change."""


@payload("shipment.confirm_party")
class ConfirmParty(ShipmentRef):
    """A member of a named consignor or consignee confirms its organisation's role."""


@payload("shipment.milestone")
class Milestone(Described):
    """The holder or a port records a transport milestone at a UN/LOCODE place."""

    shipment_id: str = field(metadata=wire(RECORD_ID))
    event: str = field(metadata=wire(Choice(MILESTONES)))
    place: str = field(metadata=wire(PLACE))
    time_ms: int = field(metadata=wire(AMOUNT))


@payload("shipment.customs_decision")
class CustomsDecision(Described):
    """Customs holds, inspects, clears, releases or seizes a shipment, with a reason."""

    shipment_id: str = field(metadata=wire(RECORD_ID))
    decision: str = field(metadata=wire(Choice(CUSTOMS_TRANSITIONS)))
    reason: str = field(metadata=wire(text()))
    licence_id: str | None = optional(RECORD_ID, None)
    time_ms: int | None = optional(AMOUNT, None)

    def __post_init__(self) -> None:
        if self.licence_id is not None and self.decision != "clear":
            raise bad_payload("licence_id is only given with a 'clear' decision")


@payload("shipment.deliver")
class Deliver(Described):
    """The holder or the consignee records delivery; customs must have released the goods."""

    shipment_id: str = field(metadata=wire(RECORD_ID))
    place: str = field(metadata=wire(PLACE))
    time_ms: int | None = optional(AMOUNT, None)
