"""Every record the demo stores reads back into its typed record (checked, and unchecked
as the contracts read their own state) and encodes to the same bytes."""

from __future__ import annotations

from collections import Counter

import pytest

from contracts import search_buckets as sb
from contracts import state_keys as sk
from contracts.energy_records import (
    Account,
    MarketBook,
    Meter,
    MeterReading,
    Order,
    Position,
    Trade,
)
from contracts.fields import RecordError
from contracts.identity_records import Member, Organisation
from contracts.permit_records import Permit, PermitEvent
from contracts.shipment_records import Shipment, ShipmentEvent
from ledger.encoding import decode, encode
from ledger.schema import Described

from .test_demo import loaded

RECORDS: dict[str, type[Described]] = {
    "organisation": Organisation,
    "member": Member,
    "shipment": Shipment,
    "shipment_history": ShipmentEvent,
    "permit": Permit,
    "permit_history": PermitEvent,
    "energy_account": Account,
    "meter": Meter,
    "meter_reading": MeterReading,
    "energy_order": Order,
    "market": MarketBook,
    "trade": Trade,
}


def record_class(key: bytes) -> type[Described] | None:
    kind = sk.key_kind(key)
    if kind == "energy_account" and b"/i/" in key:
        return Position
    return RECORDS.get(kind)


def test_every_stored_record_round_trips_byte_for_byte() -> None:
    chain, _receipts = loaded()
    seen: Counter[str] = Counter()
    for key, raw in chain.state.data.items():
        cls = record_class(key)
        if key.startswith(sb.PREFIX):
            assert set(decode(raw)) in ({"count"}, {"key", "salt"}, {"slot"}, {"salt"}), key
            seen["search rows"] += 1
            continue
        if cls is None:
            assert sk.key_kind(key) in ("params", "nonce"), key
            continue
        checked = cls.from_obj(decode(raw))
        assert encode(checked.to_obj()) == raw, key
        # read back unchecked (as the contracts read their own state): the same value
        assert cls.load(decode(raw)) == checked, key
        seen[cls.__name__] += 1
    assert set(seen) == {c.__name__ for c in RECORDS.values()} | {"Position", "search rows"}


def test_a_map_that_is_not_the_record_is_refused_naming_the_field() -> None:
    chain, _receipts = loaded()
    raw = chain.state.data[sk.shipment_key("SHP-0001")]
    obj = decode(raw)
    with pytest.raises(RecordError, match=r"shipment\.history_len"):
        Shipment.from_obj({**obj, "history_len": -1})
    with pytest.raises(RecordError, match="missing field 'holder'"):
        Shipment.from_obj({k: v for k, v in obj.items() if k != "holder"})
