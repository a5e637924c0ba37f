"""A shipment record and its whole history, proven at one certified height."""

from __future__ import annotations

from dataclasses import dataclass

from contracts import state_keys as sk
from contracts.shipment_records import Shipment, ShipmentEvent
from ledger.block import BlockHeader
from ledger.encoding import Value
from ledger.genesis import Genesis
from lightclient.answers import HistoryCount
from lightclient.errors import VerificationError, answer_field
from lightclient.headers import CertifiedHeader, verify_certified
from lightclient.records import require_typed, verify_item


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
    record = require_typed(
        answer_field(answer, "shipment", "the answer"),
        header,
        sk.shipment_key(shipment_id),
        Shipment,
    )
    if record.id != shipment_id:
        raise VerificationError(f"the proven record is not shipment {shipment_id!r}")
    length = record.history_len
    items = answer_field(answer, "history", "the answer")
    if not isinstance(items, list):
        raise VerificationError("the shipment history is malformed")
    if len(items) != length:
        raise VerificationError(
            f"the shipment record says {length} history entries, the node sent {len(items)} "
            "(truncated or padded history)"
        )
    history = [_history_entry(item, header, shipment_id, seq) for seq, item in enumerate(items)]
    end = verify_item(
        answer_field(answer, "history_end", "the answer"),
        header,
        sk.shipment_history_key(shipment_id, length),
    )
    if end is not None:
        raise VerificationError(
            f"an entry {length} exists after the last one the node sent (hidden tail)"
        )
    return ShipmentView(certified, record, tuple(history))


def _history_entry(item: Value, header: BlockHeader, shipment_id: str, seq: int) -> ShipmentEvent:
    """History entry ``seq``, proven, well formed and not from after the answered height."""
    key = sk.shipment_history_key(shipment_id, seq)
    entry = require_typed(item, header, key, ShipmentEvent)
    if entry.seq != seq:
        raise VerificationError(f"history entry {seq} is malformed")
    if entry.height > header.height:
        raise VerificationError(f"history entry {seq} claims a height after the answered one")
    return entry
