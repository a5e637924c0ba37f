"""Shipment records as stored: the consignment at ``shipment/<id>`` and its provenance
entries at ``shipment/<id>/h/<seq>`` (:mod:`contracts.state_keys`).

The shipment record holds what the consignment is now (parties, route, goods,
containers, documents, holder, stage and customs status); each entry is one
EPCIS-shaped event of its history. Handlers read a shipment through
:func:`load_shipment`, store it with :meth:`~contracts.context.TxContext.save` and
an entry with :func:`store_entry`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from contracts import codes
from contracts import state_keys as sk
from contracts.context import TxContext
from contracts.fields import ANY_TEXT, ORG_ID, PLACE, RECORD_ID, HistoryEntry, stored, text
from ledger.encoding import MAX_SIZE
from ledger.schema import (
    HASH,
    Described,
    Int,
    List,
    Nested,
    Optional,
    Str,
    Where,
    wire,
)

STAGES = ("declared", "in_transit", "delivered")
CUSTOMS_STATUSES = ("pending", "held", "inspection", "cleared", "released", "seized")
PARTY_ROLES = ("consignee", "consignor")
MAX_GOODS = 100
MAX_CONTAINERS = 50
MAX_DOCUMENTS = 32
MAX_HISTORY = 1000

CONTAINER = Where(
    Str(max_len=MAX_SIZE, pattern=codes.CONTAINER_PATTERN),
    codes.is_container_number,
    "container {value!r}: ISO 6346 check digit is wrong",
)
"""An ISO 6346 container number with its check digit."""
ORGS = List(ORG_ID, max_len=MAX_SIZE)


@stored("goods")
class GoodsLine(Described):
    """One line of goods: HS code, description, quantity in a unit, value in a currency."""

    hs_code: str = field(
        metadata=wire(
            Where(
                Str(max_len=10, pattern=codes.HS_CODE_PATTERN, control=False),
                codes.is_hs_code,
                "{value!r} is not an HS code (chapter 01..97)",
            )
        )
    )
    description: str = field(metadata=wire(text(200)))
    quantity: int = field(metadata=wire(Int(lo=1, hi=10**12)))
    unit: str = field(metadata=wire(Str(max_len=3, pattern=codes.UNIT_PATTERN, control=False)))
    value: int = field(metadata=wire(Int(hi=10**15)))
    currency: str = field(
        metadata=wire(
            Where(text(3), codes.is_currency, "{value!r} is not an ISO 4217 currency code")
        )
    )


@stored("document")
class Document(Described):
    """The SHA-256 of an off-chain trade document, who attached it and when."""

    type: str
    sha256: bytes = field(metadata=wire(HASH))
    uri: str
    attached_by: str = field(metadata=wire(ORG_ID))
    height: int


@stored("custody_offer")
class CustodyOffer(Described):
    """An open offer of custody by the holder ``by`` to organisation ``to``."""

    to: str = field(metadata=wire(ORG_ID))
    by: str = field(metadata=wire(ORG_ID))
    height: int


@dataclass(frozen=True, slots=True)
class Consignment(Described):
    """What a declaration lodges: parties (WCO), route, goods lines and containers. The
    ``shipment.declare`` payload and the stored shipment both start with these fields."""

    id: str = field(metadata=wire(RECORD_ID))
    consignor: str = field(metadata=wire(ORG_ID))
    consignee: str = field(metadata=wire(ORG_ID))
    declarant: str = field(metadata=wire(ORG_ID))
    origin: str = field(metadata=wire(PLACE))
    destination: str = field(metadata=wire(PLACE))
    goods: tuple[GoodsLine, ...] = field(
        metadata=wire(List(Nested(GoodsLine), min_len=1, max_len=MAX_GOODS))
    )
    containers: tuple[str, ...] = field(
        metadata=wire(List(CONTAINER, max_len=MAX_CONTAINERS, distinct=True))
    )


@stored("shipment")
class Shipment(Consignment):
    """A consignment as it stands; ``history_len`` entries make up its provenance."""

    documents: tuple[Document, ...] = field(
        metadata=wire(List(Nested(Document), max_len=MAX_DOCUMENTS))
    )
    holder: str = field(metadata=wire(ORG_ID))
    holders: tuple[str, ...] = field(metadata=wire(ORGS))
    unconfirmed: tuple[str, ...] = field(metadata=wire(List(ANY_TEXT, max_len=2)))
    custody_offer: CustodyOffer | None = field(metadata=wire(Optional(Nested(CustodyOffer))))
    stage: str
    customs_status: str
    licence_id: str | None = field(metadata=wire(Optional(RECORD_ID)))
    last_place: str = field(metadata=wire(PLACE))
    declared_time_ms: int
    delivered_time_ms: int | None
    declared_height: int
    updated_height: int
    history_len: int = field(metadata=wire(Int(hi=MAX_HISTORY)))

    @property
    def key(self) -> bytes:
        return sk.shipment_key(self.id)

    def parties(self) -> set[str]:
        """Consignor, consignee and declarant."""
        return {self.consignor, self.consignee, self.declarant}

    def involved(self) -> set[str]:
        """The parties and every organisation that has held the shipment."""
        return self.parties() | set(self.holders)

    def confirmed(self, role: str) -> bool:
        """Whether the organisation named as ``role`` (consignor, consignee) has agreed to it."""
        return role not in self.unconfirmed


@stored("shipment_history")
class ShipmentEvent(HistoryEntry):
    """Provenance entry ``seq``: what happened (``event``, ``details``), when (event and
    record time), where (a UN/LOCODE or nil), why (``biz_step``) and who (actor)."""

    event: str
    biz_step: str
    time_ms: int
    recorded_ms: int
    place: str | None = field(metadata=wire(Optional(PLACE)))


def load_shipment(ctx: TxContext, shipment_id: str) -> Shipment:
    """The shipment ``shipment_id``; ``not_found`` when it does not exist."""
    return ctx.require_record(sk.shipment_key(shipment_id), Shipment, "shipment", shipment_id)


def store_entry(ctx: TxContext, shipment_id: str, entry: ShipmentEvent) -> None:
    ctx.store(sk.shipment_history_key(shipment_id, entry.seq), entry.to_obj())
