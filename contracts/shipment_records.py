"""Shipment records as stored: the consignment at ``shipment/<id>`` and its provenance
entries at ``shipment/<id>/h/<seq>`` (:mod:`contracts.state_keys`).

The shipment record holds what the consignment is now (parties, route, goods,
containers, documents, holder, stage and customs status); each entry is one
EPCIS-shaped event of its history. Handlers read and write them through
:func:`load_shipment` / :func:`save_shipment` and :func:`store_entry`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from contracts import state_keys as sk
from contracts.context import TxContext
from contracts.record import Bounds, Details, Natural, Record

STAGES = ("declared", "in_transit", "delivered")
CUSTOMS_STATUSES = ("pending", "held", "inspection", "cleared", "released", "seized")
PARTY_ROLES = ("consignee", "consignor")
MAX_DOCUMENTS = 32
MAX_HISTORY = 1000


@dataclass(frozen=True, slots=True)
class GoodsLine(Record):
    """One line of goods: HS code, description, quantity in a unit, value in a currency."""

    record_type = "goods"
    hs_code: str
    description: str
    quantity: Annotated[int, Bounds(1, 10**12)]
    unit: str
    value: Annotated[int, Bounds(0, 10**15)]
    currency: str


@dataclass(frozen=True, slots=True)
class Document(Record):
    """The SHA-256 of an off-chain trade document, who attached it and when."""

    record_type = "document"
    type: str
    sha256: bytes
    uri: str
    attached_by: str
    height: Natural


@dataclass(frozen=True, slots=True)
class CustodyOffer(Record):
    """An open offer of custody by the holder ``by`` to organisation ``to``."""

    record_type = "custody_offer"
    to: str
    by: str
    height: Natural


@dataclass(frozen=True, slots=True)
class Shipment(Record):
    """A consignment as it stands; ``history_len`` entries make up its provenance."""

    record_type = "shipment"
    id: str
    consignor: str
    consignee: str
    declarant: str
    origin: str
    destination: str
    goods: tuple[GoodsLine, ...]
    containers: tuple[str, ...]
    documents: tuple[Document, ...]
    holder: str
    holders: tuple[str, ...]
    unconfirmed: tuple[str, ...]
    custody_offer: CustodyOffer | None
    stage: str
    customs_status: str
    licence_id: str | None
    last_place: str
    declared_time_ms: Natural
    delivered_time_ms: Natural | None
    declared_height: Natural
    updated_height: Natural
    history_len: Annotated[int, Bounds(0, MAX_HISTORY)]

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


@dataclass(frozen=True, slots=True)
class ShipmentEvent(Record):
    """Provenance entry ``seq``: what happened (``event``, ``details``), when (event and
    record time), where (a UN/LOCODE or nil), why (``biz_step``) and who (actor)."""

    record_type = "shipment_history"
    seq: int
    event: str
    biz_step: str
    actor_org: str
    actor: bytes
    time_ms: int
    recorded_ms: int
    height: int
    tx_hash: bytes
    place: str | None
    details: Details


def load_shipment(ctx: TxContext, shipment_id: str) -> Shipment:
    """The shipment ``shipment_id``; ``not_found`` when it does not exist."""
    return Shipment.from_obj(ctx.require(sk.shipment_key(shipment_id), "shipment", shipment_id))


def save_shipment(ctx: TxContext, shipment: Shipment) -> None:
    ctx.store(shipment.key, shipment.to_obj())


def store_entry(ctx: TxContext, shipment_id: str, entry: ShipmentEvent) -> None:
    ctx.store(sk.shipment_history_key(shipment_id, entry.seq), entry.to_obj())
