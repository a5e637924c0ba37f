"""Pure reads over committed state and the secondary index (used by the API and the CLI).

Record lookups read authenticated state, so every record returned here can be
proven: its key is in :mod:`contracts.state_keys` (a shipment's full provenance
is the record at ``shipment_key(id)`` plus the entries at
``shipment_history_key(id, 0 .. history_len-1)``; see
:func:`shipment_proof_keys`). The ``find_*`` / ``*_by_*`` functions read the
unauthenticated index and return ids; fetch and prove the records themselves.

Read rules are not applied here; the API applies :mod:`contracts.read_rules`.
"""

from __future__ import annotations

from contracts import index_keys as ik
from contracts import state_keys as sk
from contracts.context import StateReader
from contracts.energy import empty_account, empty_position
from contracts.params import DEFAULT_ENERGY_INTERVAL_MS
from contracts.permits import BLDS_STATUS, effective_status
from contracts.permits import permit_valid_at as _permit_valid_at
from ledger.encoding import Value, decode
from ledger.storage.protocol import KVReader

Record = dict[str, Value]
DEFAULT_LIMIT = 100


def _load(state: StateReader, key: bytes) -> Record | None:
    raw = state.get(key)
    if raw is None:
        return None
    record = decode(raw)
    assert isinstance(record, dict)
    return record


def _ids(index: KVReader, prefix: bytes, limit: int, after: str | None) -> list[str]:
    """Ids under ``prefix`` in byte order, strictly after ``after`` (for paging)."""
    start = None if after is None else prefix + after.encode() + b"\x00"
    out: list[str] = []
    for key, _value in index.iterate(prefix, start=start):
        out.append(ik.last_component(key, prefix))
        if len(out) >= limit:
            break
    return out


# --- identity --------------------------------------------------------------------------------


def get_params(state: StateReader) -> Record:
    return _load(state, sk.params_key()) or {}


def get_organisation(state: StateReader, org_id: str) -> Record | None:
    return _load(state, sk.org_key(org_id))


def get_member(state: StateReader, public_key: bytes) -> Record | None:
    return _load(state, sk.member_key(public_key))


def get_nonce(state: StateReader, public_key: bytes) -> int:
    raw = state.get(sk.nonce_key(public_key))
    return 0 if raw is None else int(decode(raw))


# --- shipments -------------------------------------------------------------------------------


def get_shipment(state: StateReader, shipment_id: str) -> Record | None:
    return _load(state, sk.shipment_key(shipment_id))


def get_shipment_history(state: StateReader, shipment_id: str) -> list[Record]:
    """The provenance: every entry in order (declared, documents, custody, milestones, ...)."""
    shipment = get_shipment(state, shipment_id)
    if shipment is None:
        return []
    entries = []
    for seq in range(shipment["history_len"]):
        entry = _load(state, sk.shipment_history_key(shipment_id, seq))
        assert entry is not None, f"shipment {shipment_id} history entry {seq} missing"
        entries.append(entry)
    return entries


def shipment_proof_keys(state: StateReader, shipment_id: str) -> list[bytes]:
    """Every state key a client must prove to check a shipment and its full history.

    The record (which holds ``history_len``) comes first, then each entry; a
    verifier also proves ``shipment_history_key(id, history_len)`` absent.
    """
    shipment = get_shipment(state, shipment_id)
    keys = [sk.shipment_key(shipment_id)]
    if shipment is not None:
        keys += [sk.shipment_history_key(shipment_id, i) for i in range(shipment["history_len"])]
    return keys


def find_shipments_by_container(
    index: KVReader, container: str, *, limit: int = DEFAULT_LIMIT, after: str | None = None
) -> list[str]:
    return _ids(index, ik.shipment_container_prefix(container), limit, after)


def find_shipments_by_party(
    index: KVReader, org_id: str, *, limit: int = DEFAULT_LIMIT, after: str | None = None
) -> list[str]:
    return _ids(index, ik.shipment_party_prefix(org_id), limit, after)


def find_shipments_by_status(
    index: KVReader, status: str, *, limit: int = DEFAULT_LIMIT, after: str | None = None
) -> list[str]:
    """``status`` is a stage (declared, in_transit, delivered) or a customs status
    (pending, held, inspection, cleared, released, seized)."""
    return _ids(index, ik.shipment_status_prefix(status), limit, after)


# --- permits ---------------------------------------------------------------------------------


def get_permit(state: StateReader, permit_id: str, at_ms: int | None = None) -> Record | None:
    """The permit record; with ``at_ms``, plus ``effective_status`` and ``blds_status`` then."""
    permit = _load(state, sk.permit_key(permit_id))
    if permit is not None and at_ms is not None:
        status = effective_status(permit, at_ms)
        permit["effective_status"] = status
        permit["blds_status"] = BLDS_STATUS[status]
    return permit


def get_permit_history(state: StateReader, permit_id: str) -> list[Record]:
    permit = _load(state, sk.permit_key(permit_id))
    if permit is None:
        return []
    out = []
    for seq in range(permit["history_len"]):
        entry = _load(state, sk.permit_history_key(permit_id, seq))
        assert entry is not None
        out.append(entry)
    return out


def permit_valid_at(state: StateReader, permit_id: str, time_ms: int) -> tuple[bool, str]:
    """Is permit ``permit_id`` valid at ``time_ms``? Answered from the proven record alone."""
    permit = _load(state, sk.permit_key(permit_id))
    if permit is None:
        return False, f"permit {permit_id!r} does not exist"
    return _permit_valid_at(permit, time_ms)


def permits_by_holder(
    index: KVReader, org_id: str, *, limit: int = DEFAULT_LIMIT, after: str | None = None
) -> list[str]:
    return _ids(index, ik.permit_holder_prefix(org_id), limit, after)


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


def get_energy_account(state: StateReader, org_id: str) -> Record:
    """Money (minor units, available and reserved) and energy totals; zero if never used."""
    return _load(state, sk.energy_account_key(org_id)) or empty_account(org_id)


def get_energy_position(state: StateReader, org_id: str, interval_start_ms: int) -> Record:
    """The account's position in one interval: produced, consumed, offered, sold, bought."""
    key = sk.energy_position_key(org_id, interval_start_ms)
    return _load(state, key) or empty_position(org_id, interval_start_ms)


def get_meter(state: StateReader, meter_key: bytes) -> Record | None:
    return _load(state, sk.meter_key(meter_key))


def get_meter_reading(
    state: StateReader, meter_key: bytes, interval_start_ms: int
) -> Record | None:
    return _load(state, sk.meter_reading_key(meter_key, interval_start_ms))


def get_order(state: StateReader, order_id: str) -> Record | None:
    return _load(state, sk.order_key(order_id))


def get_trade(state: StateReader, interval_start_ms: int, n: int) -> Record | None:
    return _load(state, sk.trade_key(interval_start_ms, n))


def get_market(state: StateReader, interval_start_ms: int) -> Record:
    """The interval's offers, bids (in placement order), clearing result and trades."""
    book = _load(state, sk.market_key(interval_start_ms))
    if book is None:
        return {
            "interval_start_ms": interval_start_ms,
            "status": "open",
            "offers": [],
            "bids": [],
            "clearing": None,
            "trades": [],
        }
    orders = [get_order(state, oid) for oid in book["orders"]]
    clearing = book["clearing"]
    trade_count = 0 if clearing is None else clearing["trade_count"]
    return {
        "interval_start_ms": interval_start_ms,
        "status": book["status"],
        "offers": [o for o in orders if o is not None and o["side"] == "offer"],
        "bids": [o for o in orders if o is not None and o["side"] == "bid"],
        "clearing": clearing,
        "trades": [get_trade(state, interval_start_ms, n) for n in range(trade_count)],
    }


def trades_by_account(
    state: StateReader,
    index: KVReader,
    org_id: str,
    interval_start_ms: int | None = None,
    *,
    limit: int = 1000,
) -> list[Record]:
    """Trades where ``org_id`` sold or bought, by interval then trade number."""
    out: list[Record] = []
    for _key, trade_key in index.iterate(ik.trade_account_prefix(org_id, interval_start_ms)):
        trade = _load(state, trade_key)
        if trade is not None:
            out.append(trade)
        if len(out) >= limit:
            break
    return out
