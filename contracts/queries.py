"""Pure reads over committed state and the secondary index (used by the API and the CLI).

Record lookups read authenticated state, so every record returned here can be
proven: its key is in :mod:`contracts.state_keys` (a shipment's full provenance
is the record at ``shipment_key(id)`` plus the entries at
``shipment_history_key(id, 0 .. history_len-1)``; see
:func:`shipment_proof_keys`). The ``find_*`` / ``*_by_*`` functions read the
unauthenticated index and return ids (the contracts' tests check the index with
them); searches are served from the proven search buckets instead
(:func:`bucket_members`, :mod:`contracts.search_buckets`).

Records come back typed (:mod:`contracts.shipment_records`, ``permit_records``,
``energy_records``, ``identity_records``). Read rules are not applied here; the
API applies :mod:`contracts.read_rules`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

from contracts import index_keys as ik
from contracts import search_buckets as sb
from contracts import state_keys as sk
from contracts.context import StateReader
from contracts.energy_records import (
    Account,
    Clearing,
    MarketBook,
    Meter,
    MeterReading,
    Order,
    Position,
    Trade,
)
from contracts.identity_records import Member, Organisation
from contracts.params import DEFAULT_ENERGY_INTERVAL_MS
from contracts.permit_records import Permit, PermitEvent
from contracts.permits import permit_valid_at as _permit_valid_at
from contracts.record_cache import typed_record
from contracts.shipment_records import Shipment, ShipmentEvent
from contracts.shipment_search import ShipmentFilter
from ledger.encoding import Value, decode
from ledger.schema import Described
from ledger.storage.protocol import KVReader

DEFAULT_LIMIT = 100
R = TypeVar("R", bound=Described)


def _load_obj(state: StateReader, key: bytes) -> dict[str, Value] | None:
    raw = state.get(key)
    if raw is None:
        return None
    obj = decode(raw)
    assert isinstance(obj, dict)
    return obj


def _load(state: StateReader, key: bytes, cls: type[R]) -> R | None:
    raw = state.get(key)
    return None if raw is None else typed_record(cls, raw)


def _entries(state: StateReader, keys: list[bytes], cls: type[R]) -> list[R]:
    """The records at ``keys``, every one of which must exist (a history's entries)."""
    out = []
    for key in keys:
        entry = _load(state, key, cls)
        assert entry is not None, f"history entry {key!r} missing"
        out.append(entry)
    return out


def _ids(index: KVReader, prefix: bytes, limit: int, after: str | None) -> list[str]:
    """Ids under ``prefix`` in byte order, strictly after ``after`` (for paging)."""
    start = None if after is None else prefix + after.encode() + b"\x00"
    out: list[str] = []
    for key, _value in index.iterate(prefix, start=start):
        out.append(ik.last_component(key, prefix))
        if len(out) >= limit:
            break
    return out


# --- proven search buckets (contracts.search_buckets) ---------------------------------------


def bucket_count(state: StateReader, bucket: sb.Bucket) -> int:
    """How many members ``bucket`` has (its head row; absent: none)."""
    return sb.head_count(state.get(bucket.head_key))


def bucket_members(state: StateReader, bucket: sb.Bucket, start: int, limit: int) -> list[bytes]:
    """The record keys in slots ``start`` .. ``start + limit - 1`` (fewer at the end)."""
    end = min(bucket_count(state, bucket), start + limit)
    out: list[bytes] = []
    for slot in range(start, end):
        member = _load_obj(state, bucket.slot_key(slot))
        assert member is not None and isinstance(member["key"], bytes), "bucket slot missing"
        out.append(member["key"])
    return out


def shipment_bucket(state: StateReader, search: ShipmentFilter) -> sb.Bucket:
    """The smallest bucket among the filters given: a search walks it and checks the
    others on each record (:func:`contracts.shipment_search.matches_search`)."""
    given = search.buckets()
    assert given, "a shipment search needs at least one filter"
    return min(given, key=lambda bucket: bucket_count(state, bucket))


def permit_bucket(*, holder: str | None = None, address: str | None = None) -> sb.Bucket:
    """The bucket of permits held by ``holder``, else at ``address`` (normalised)."""
    if holder is not None:
        return sb.PERMIT_HOLDER.bucket(holder)
    assert address is not None, "a permit search needs a holder or an address"
    return sb.PERMIT_ADDRESS.bucket(ik.normalise_address(address))


# --- identity --------------------------------------------------------------------------------


def get_params(state: StateReader) -> dict[str, Value]:
    return _load_obj(state, sk.params_key()) or {}


def get_organisation(state: StateReader, org_id: str) -> Organisation | None:
    return _load(state, sk.org_key(org_id), Organisation)


def get_member(state: StateReader, public_key: bytes) -> Member | None:
    return _load(state, sk.member_key(public_key), Member)


def get_nonce(state: StateReader, public_key: bytes) -> int:
    raw = state.get(sk.nonce_key(public_key))
    return 0 if raw is None else int(decode(raw))


# --- shipments -------------------------------------------------------------------------------


def get_shipment(state: StateReader, shipment_id: str) -> Shipment | None:
    return _load(state, sk.shipment_key(shipment_id), Shipment)


def get_shipment_history(state: StateReader, shipment_id: str) -> list[ShipmentEvent]:
    """The provenance: every entry in order (declared, documents, custody, milestones, ...)."""
    return _entries(state, shipment_proof_keys(state, shipment_id)[1:], ShipmentEvent)


def shipment_proof_keys(state: StateReader, shipment_id: str) -> list[bytes]:
    """Every state key a client must prove to check a shipment and its full history.

    The record (which holds ``history_len``) comes first, then each entry; a
    verifier also proves ``shipment_history_key(id, history_len)`` absent.
    """
    shipment = get_shipment(state, shipment_id)
    keys = [sk.shipment_key(shipment_id)]
    if shipment is not None:
        keys += [sk.shipment_history_key(shipment_id, i) for i in range(shipment.history_len)]
    return keys


def find_shipments_by_container(
    index: KVReader, container: str, *, limit: int = DEFAULT_LIMIT, after: str | None = None
) -> list[str]:
    return _ids(index, ik.SHIPMENT_CONTAINER.prefix(container), limit, after)


def find_shipments_by_party(
    index: KVReader, org_id: str, *, limit: int = DEFAULT_LIMIT, after: str | None = None
) -> list[str]:
    return _ids(index, ik.SHIPMENT_PARTY.prefix(org_id), limit, after)


def find_shipments_by_status(
    index: KVReader, status: str, *, limit: int = DEFAULT_LIMIT, after: str | None = None
) -> list[str]:
    """``status`` is a stage (declared, in_transit, delivered) or a customs status
    (pending, held, inspection, cleared, released, seized)."""
    return _ids(index, ik.SHIPMENT_STATUS.prefix(status), limit, after)


# --- permits ---------------------------------------------------------------------------------


def get_permit(state: StateReader, permit_id: str) -> Permit | None:
    """The permit record (its status as it reads at a time: :func:`permits.effective_status`)."""
    return _load(state, sk.permit_key(permit_id), Permit)


def get_permit_history(state: StateReader, permit_id: str) -> list[PermitEvent]:
    permit = get_permit(state, permit_id)
    if permit is None:
        return []
    keys = [sk.permit_history_key(permit_id, seq) for seq in range(permit.history_len)]
    return _entries(state, keys, PermitEvent)


def permit_valid_at(state: StateReader, permit_id: str, time_ms: int) -> tuple[bool, str]:
    """Is permit ``permit_id`` valid at ``time_ms``? Answered from the proven record alone."""
    permit = get_permit(state, permit_id)
    if permit is None:
        return False, f"permit {permit_id!r} does not exist"
    return _permit_valid_at(permit, time_ms)


def permits_by_holder(
    index: KVReader, org_id: str, *, limit: int = DEFAULT_LIMIT, after: str | None = None
) -> list[str]:
    return _ids(index, ik.PERMIT_HOLDER.prefix(org_id), limit, after)


def permits_by_address(
    index: KVReader, address: str, *, prefix: bool = False, limit: int = DEFAULT_LIMIT
) -> list[str]:
    """Permits at ``address`` (case and spacing ignored); ``prefix`` matches a street."""
    out: list[str] = []
    for key, _value in index.iterate(ik.permit_address_prefix(address, exact=not prefix)):
        out.append(key.rsplit(b"\x00", 1)[1].decode())
        if len(out) >= limit:
            break
    return out


# --- energy ----------------------------------------------------------------------------------


def energy_interval_ms(state: StateReader) -> int:
    value = get_params(state).get("energy_interval_ms", DEFAULT_ENERGY_INTERVAL_MS)
    assert isinstance(value, int)
    return value


def interval_start(state: StateReader, time_ms: int) -> int:
    """Start of the settlement interval containing ``time_ms``."""
    length = energy_interval_ms(state)
    return time_ms - time_ms % length


def get_energy_account(state: StateReader, org_id: str) -> Account:
    """Money (minor units, available and reserved) and energy totals; zero if never used."""
    return _load(state, sk.energy_account_key(org_id), Account) or Account.empty(org_id)


def get_energy_position(state: StateReader, org_id: str, interval_start_ms: int) -> Position:
    """The account's position in one interval: produced, consumed, offered, sold, bought."""
    key = sk.energy_position_key(org_id, interval_start_ms)
    return _load(state, key, Position) or Position.empty(org_id, interval_start_ms)


def get_meter(state: StateReader, meter_key: bytes) -> Meter | None:
    return _load(state, sk.meter_key(meter_key), Meter)


def get_meter_reading(
    state: StateReader, meter_key: bytes, interval_start_ms: int
) -> MeterReading | None:
    return _load(state, sk.meter_reading_key(meter_key, interval_start_ms), MeterReading)


def get_order(state: StateReader, order_id: str) -> Order | None:
    return _load(state, sk.order_key(order_id), Order)


def get_trade(state: StateReader, interval_start_ms: int, n: int) -> Trade | None:
    return _load(state, sk.trade_key(interval_start_ms, n), Trade)


@dataclass(frozen=True, slots=True)
class MarketView:
    """An interval's market as read: status, offers and bids (placement order), clearing
    and trades."""

    interval_start_ms: int
    status: str
    offers: tuple[Order, ...]
    bids: tuple[Order, ...]
    clearing: Clearing | None
    trades: tuple[Trade, ...]


def get_market(state: StateReader, interval_start_ms: int) -> MarketView:
    """The interval's offers, bids (in placement order), clearing result and trades."""
    book = _load(state, sk.market_key(interval_start_ms), MarketBook)
    if book is None:
        book = MarketBook.empty(interval_start_ms)
    orders = [o for o in (get_order(state, oid) for oid in book.orders) if o is not None]
    trade_count = 0 if book.clearing is None else book.clearing.trade_count
    trades = (get_trade(state, interval_start_ms, n) for n in range(trade_count))
    return MarketView(
        interval_start_ms=interval_start_ms,
        status=book.status,
        offers=tuple(o for o in orders if o.side == "offer"),
        bids=tuple(o for o in orders if o.side == "bid"),
        clearing=book.clearing,
        trades=tuple(t for t in trades if t is not None),
    )


def trades_by_account(
    state: StateReader,
    index: KVReader,
    org_id: str,
    interval_start_ms: int | None = None,
    *,
    limit: int = 1000,
) -> list[Trade]:
    """Trades where ``org_id`` sold or bought, by interval then trade number."""
    out: list[Trade] = []
    for _key, trade_key in index.iterate(ik.trade_account_prefix(org_id, interval_start_ms)):
        trade = _load(state, trade_key, Trade)
        if trade is not None:
            out.append(trade)
        if len(out) >= limit:
            break
    return out
