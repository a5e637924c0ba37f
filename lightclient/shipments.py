"""A shipment record and its whole history, proven at one certified height."""

from __future__ import annotations

from dataclasses import dataclass

from contracts import state_keys as sk
from contracts.shipment_records import Shipment, ShipmentEvent
from ledger.encoding import Value
from ledger.genesis import Genesis
from lightclient.answers import HistoryCount
from lightclient.errors import VerificationError, answer_field
from lightclient.headers import CertifiedHeader, verify_certified
from lightclient.records import KeptHistory, verify_item

SHIPMENTS = KeptHistory(
    "shipment", Shipment, ShipmentEvent, sk.shipment_key, sk.shipment_history_key
)


@dataclass(frozen=True, slots=True)
class ShipmentView:
    certified: CertifiedHeader
    shipment: Shipment
    history: tuple[ShipmentEvent, ...]
    tx_checked: bool = False

    @property
    def tx_hashes(self) -> list[bytes]:
        return [e.tx_hash for e in self.history]

    def histories(self) -> tuple[HistoryCount, ...]:
        what = f"shipment {self.shipment.id!r}"
        return (HistoryCount(what, self.shipment.history_len, len(self.history)),)


def verify_shipment(answer: Value, genesis: Genesis, shipment_id: str) -> ShipmentView:
    """The shipment record and its whole history, proven at the answer's certified height."""
    certified = verify_certified(answer, genesis)
    header = certified.header
    record, history = SHIPMENTS.verify(answer, header, shipment_id)
    length = record.history_len
    end = verify_item(
        answer_field(answer, "history_end", "the answer"),
        header,
        sk.shipment_history_key(shipment_id, length),
    )
    if end is not None:
        raise VerificationError(
            f"an entry {length} exists after the last one the node sent (hidden tail)"
        )
    return ShipmentView(certified, record, history)
