"""A shipment's history as a GS1 EPCIS 2.0 document (JSON-LD), for trading partners and
foreign customs systems that speak the trade world's standard for supply-chain events.

Each provenance entry becomes one ``ObjectEvent``; the mapping (docs/contracts.md,
"EPCIS 2.0 export") in short:

=====================  ====================================================================
EPCIS                  from
=====================  ====================================================================
``eventID``            ``urn:cityledger:event:<transaction hash>:<seq>``
``eventTime``          the entry's event time (UTC; the ledger keeps no local offset, so
                       ``eventTimeZoneOffset`` is ``+00:00``)
``recordTime``         the block time the entry was recorded at
``action``             ``ADD`` for the declaration (the consignment enters the record),
                       ``OBSERVE`` for everything after it
``epcList``            the containers, as ``urn:epc:id:bic:<ISO 6346 number>`` (GS1 TDS 2.0)
``bizStep``            the entry's CBV business step, where the ledger gives one
``disposition``        :data:`DISPOSITIONS`: what the event leaves the goods as
``readPoint``,         the entry's place, ``urn:cityledger:locode:<UN/LOCODE>``
``bizLocation``
``bizTransactionList`` the consignment, ``urn:cityledger:shipment:<id>``
``sourceList``,        parties (``urn:cityledger:org:<id>``): owning parties on the
``destinationList``    declaration, possessing parties on a custody transfer or delivery
``cityledger:*``       extension: the ledger's event name, sequence number, acting
                       organisation, details, and the transaction hash and block height a
                       receiver checks against a proof bundle (``cityledger proof export``)
=====================  ====================================================================

Pure: built from records the caller has (the CLI: records it verified; the API: its own
state), so the same shipment gives the same document on both roads.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from contracts.shipment_payloads import CUSTOMS_TRANSITIONS
from contracts.shipment_records import Shipment, ShipmentEvent
from ledger.encoding import to_json_value

CONTEXT = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
NAMESPACE = "urn:cityledger:epcis:"
PREFIX = "cityledger"

# what each event leaves the goods as (CBV 2.0 dispositions); absent: the event says
# nothing about the goods' condition (a document attached, a custody offer)
MILESTONE_DISPOSITIONS: dict[str, str] = {
    "gate_out": "in_transit",
    "loaded": "in_transit",
    "departed": "in_transit",
    "arrived": "in_progress",
    "discharged": "in_progress",
    "gate_in": "in_progress",
}
DECISION_DISPOSITIONS: dict[str, str] = {
    "hold": "unavailable",
    "inspect": "unavailable",
    "clear": "conformant",
    "release": "available",
    "seize": "non_conformant",
}
EVENT_DISPOSITIONS: dict[str, str] = {"declared": "active", "delivered": "in_progress"}
assert set(DECISION_DISPOSITIONS) == set(CUSTOMS_TRANSITIONS)


def org_uri(org: str) -> str:
    return f"urn:cityledger:org:{org}"


def place_uri(locode: str) -> str:
    return f"urn:cityledger:locode:{locode}"


def container_uri(number: str) -> str:
    return f"urn:epc:id:bic:{number}"


def iso_time(ms: int) -> str:
    """``2026-12-02T10:15:00.250Z``: RFC 3339 in UTC with milliseconds."""
    moment = datetime.fromtimestamp(ms / 1000, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def epcis_document(shipment: Shipment, history: Sequence[ShipmentEvent], created_ms: int) -> Any:
    """The EPCIS 2.0 ``EPCISDocument`` of ``shipment``'s history (entries in ``seq`` order).

    ``created_ms`` is the document's ``creationDate``: the time of the block it was read
    at, so one answer always exports to the same bytes."""
    return {
        "@context": [CONTEXT, {PREFIX: NAMESPACE}],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": iso_time(created_ms),
        "epcisBody": {"eventList": [object_event(shipment, e) for e in history]},
    }


def object_event(shipment: Shipment, entry: ShipmentEvent) -> dict[str, Any]:
    """One provenance entry as an ``ObjectEvent``."""
    event: dict[str, Any] = {
        "type": "ObjectEvent",
        "eventID": f"urn:cityledger:event:{entry.tx_hash.hex()}:{entry.seq}",
        "eventTime": iso_time(entry.time_ms),
        "eventTimeZoneOffset": "+00:00",
        "recordTime": iso_time(entry.recorded_ms),
        "action": "ADD" if entry.event == "declared" else "OBSERVE",
        "epcList": [container_uri(c) for c in shipment.containers],
        "bizTransactionList": [{"bizTransaction": f"urn:cityledger:shipment:{shipment.id}"}],
    }
    if entry.biz_step:
        event["bizStep"] = entry.biz_step
    disposition = disposition_of(entry)
    if disposition is not None:
        event["disposition"] = disposition
    if entry.place is not None:
        event["readPoint"] = {"id": place_uri(entry.place)}
        event["bizLocation"] = {"id": place_uri(entry.place)}
    event.update(parties(shipment, entry))
    event.update(
        {
            f"{PREFIX}:event": entry.event,
            f"{PREFIX}:seq": entry.seq,
            f"{PREFIX}:actorOrg": entry.actor_org,
            f"{PREFIX}:txHash": entry.tx_hash.hex(),
            f"{PREFIX}:blockHeight": entry.height,
            f"{PREFIX}:details": to_json_value(entry.details),
        }
    )
    return event


def disposition_of(entry: ShipmentEvent) -> str | None:
    if entry.event == "milestone":
        return MILESTONE_DISPOSITIONS.get(str(entry.details.get("milestone")))
    if entry.event == "customs_decision":
        return DECISION_DISPOSITIONS.get(str(entry.details.get("decision")))
    return EVENT_DISPOSITIONS.get(entry.event)


def parties(shipment: Shipment, entry: ShipmentEvent) -> dict[str, Any]:
    """``sourceList``/``destinationList``: who owns the goods (declaration), who hands
    them over and who takes them (custody transfer, delivery)."""
    if entry.event == "declared":
        return {
            "sourceList": [{"type": "owning_party", "source": org_uri(shipment.consignor)}],
            "destinationList": [
                {"type": "owning_party", "destination": org_uri(shipment.consignee)}
            ],
        }
    if entry.event in ("custody_transferred", "delivered"):
        giver, taker = entry.details.get("from"), entry.details.get("to")
        if isinstance(giver, str) and isinstance(taker, str):
            return {
                "sourceList": [{"type": "possessing_party", "source": org_uri(giver)}],
                "destinationList": [{"type": "possessing_party", "destination": org_uri(taker)}],
            }
    return {}
