"""Every authenticated-state key the contracts use, in one place.

State keys are readable ASCII paths (the state tree hashes them, so their order
does not matter). The API serves a state proof for exactly the key a record
lives under, so a client that knows a record's id computes its key here and
checks the proof itself. Ids never contain ``/`` (their patterns forbid it), so
no two paths can collide.

Layout (``<hex>`` = lowercase hex of a 32-byte public key):

=====================================  ==========================================
``params``                             genesis app parameters
``nonce/<hex>``                        next nonce of a sender (absent = 0)
``org/<org id>``                       organisation
``member/<hex>``                       member key: organisation, roles, status
``shipment/<id>``                      shipment (consignment) record
``shipment/<id>/h/<seq>``              provenance entry ``seq`` (0 .. history_len-1)
``permit/<id>``                        permit record
``permit/<id>/h/<seq>``                permit history entry
``energy/account/<org id>``            money and energy totals of an organisation
``energy/account/<org id>/i/<start>``  its energy position in one interval
``energy/meter/<hex>``                 registered meter
``energy/meter/<hex>/r/<start ms>``    one meter reading per settlement interval
``energy/order/<order id>``            offer or bid (order id = tx hash hex)
``energy/market/<start ms>``           order book and clearing result of an interval
``energy/trade/<start ms>/<n>``        trade ``n`` (0 .. trade_count-1) of an interval
``gov/registry``                       proposal count and the open proposals' ids
``gov/list/<n>``                       id of the ``n``-th proposal (0 .. count-1)
``gov/proposal/<id>``                  governance proposal
``gov/suspended/<org id>``             suspension of an organisation (absent = none)
``gov/founding``                       agencies admitted as founding after genesis
``gov/validator/<hex>``                organisation owning a validator key
``gov/scheduled``                      validator updates scheduled, not yet in force
=====================================  ==========================================
"""

from __future__ import annotations

PARAMS = b"params"


def _join(*parts: str) -> bytes:
    return "/".join(parts).encode()


def params_key() -> bytes:
    return PARAMS


def nonce_key(sender: bytes) -> bytes:
    return _join("nonce", sender.hex())


def org_key(org_id: str) -> bytes:
    return _join("org", org_id)


def member_key(public_key: bytes) -> bytes:
    return _join("member", public_key.hex())


def shipment_key(shipment_id: str) -> bytes:
    return _join("shipment", shipment_id)


def shipment_history_key(shipment_id: str, seq: int) -> bytes:
    return _join("shipment", shipment_id, "h", str(seq))


def permit_key(permit_id: str) -> bytes:
    return _join("permit", permit_id)


def permit_history_key(permit_id: str, seq: int) -> bytes:
    return _join("permit", permit_id, "h", str(seq))


def energy_account_key(org_id: str) -> bytes:
    return _join("energy", "account", org_id)


def energy_position_key(org_id: str, interval_start_ms: int) -> bytes:
    return _join("energy", "account", org_id, "i", str(interval_start_ms))


def meter_key(meter_public_key: bytes) -> bytes:
    return _join("energy", "meter", meter_public_key.hex())


def meter_reading_key(meter_public_key: bytes, interval_start_ms: int) -> bytes:
    return _join("energy", "meter", meter_public_key.hex(), "r", str(interval_start_ms))


def order_key(order_id: str) -> bytes:
    return _join("energy", "order", order_id)


def market_key(interval_start_ms: int) -> bytes:
    return _join("energy", "market", str(interval_start_ms))


def trade_key(interval_start_ms: int, n: int) -> bytes:
    return _join("energy", "trade", str(interval_start_ms), str(n))


def gov_key(*parts: str) -> bytes:
    """A governance key: ``gov/<parts>`` (see :mod:`contracts.governance_records`)."""
    return _join("gov", *parts)


def key_kind(key: bytes) -> str:
    """The record type stored under ``key`` (``"unknown"`` if none): used by the read rules."""
    try:
        parts = key.decode("ascii").split("/")
    except UnicodeDecodeError:
        return "unknown"
    head, n = parts[0], len(parts)
    if key == PARAMS:
        return "params"
    simple = {"nonce": "nonce", "org": "organisation", "member": "member"}
    if head in simple and n == 2:
        return simple[head]
    if head in ("shipment", "permit"):
        if n == 2:
            return head
        if n == 4 and parts[2] == "h":
            return f"{head}_history"
        return "unknown"
    if head == "energy" and n >= 3:
        return _energy_kind(parts)
    if head == "gov" and n in (2, 3):
        return "governance"
    return "unknown"


def _energy_kind(parts: list[str]) -> str:
    table = {
        ("account", 3): "energy_account",
        ("account", 5): "energy_account",  # a position: same owner, same readers
        ("meter", 3): "meter",
        ("meter", 5): "meter_reading",
        ("order", 3): "energy_order",
        ("market", 3): "market",
        ("trade", 4): "trade",
    }
    if parts[1] == "account" and len(parts) == 5 and parts[3] != "i":
        return "unknown"
    return table.get((parts[1], len(parts)), "unknown")
