"""Energy payloads: the parsed, checked form of each ``energy.*`` transaction.

Amounts are bounded here (Wh per reading or order, price per kWh, money per
credit) and an order must be worth at least one minor unit. A reading's meter
signature is checked by the handler, against the chain id. Parsing is stateless,
so the mempool runs it once at admission; the handlers that apply a parsed
payload to state are in :mod:`contracts.energy`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from contracts.errors import bad_payload
from contracts.payload import Fields
from ledger.encoding import Value

MAX_WH = 10**12
MAX_PRICE_PER_KWH = 10**9
MAX_CREDIT = 10**15
MIN_ORDER_VALUE = 1000  # quantity_wh * price_per_kwh: an order is worth at least 1 minor unit
ORDER_ID_PATTERN = re.compile(r"^[0-9a-f]{64}$")
SIDES = frozenset({"offer", "bid"})


# --- payloads --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RegisterMeter:
    meter_key: bytes
    owner: str
    name: str
    active_from_ms: int | None


def parse_register_meter(payload: Value) -> RegisterMeter:
    f = Fields(payload, "energy.register_meter")
    out = RegisterMeter(
        f.raw("meter_key", size=32),
        f.org_id("owner"),
        f.text("name", max_len=100),
        f.opt_integer("active_from_ms"),
    )
    f.done()
    return out


@dataclass(frozen=True, slots=True)
class RevokeMeter:
    meter_key: bytes
    reason: str


def parse_revoke_meter(payload: Value) -> RevokeMeter:
    f = Fields(payload, "energy.revoke_meter")
    out = RevokeMeter(f.raw("meter_key", size=32), f.text("reason"))
    f.done()
    return out


@dataclass(frozen=True, slots=True)
class Reading:
    meter_key: bytes
    interval_start_ms: int
    produced_wh: int
    consumed_wh: int
    signature: bytes


def parse_reading(payload: Value) -> Reading:
    f = Fields(payload, "energy.submit_reading")
    out = Reading(
        f.raw("meter_key", size=32),
        f.integer("interval_start_ms"),
        f.integer("produced_wh", hi=MAX_WH),
        f.integer("consumed_wh", hi=MAX_WH),
        f.raw("signature", size=64),
    )
    f.done()
    return out


@dataclass(frozen=True, slots=True)
class CreditBalance:
    account: str
    amount: int
    reference: str


def parse_credit_balance(payload: Value) -> CreditBalance:
    f = Fields(payload, "energy.credit_balance")
    out = CreditBalance(
        f.org_id("account"), f.integer("amount", lo=1, hi=MAX_CREDIT), f.text("reference")
    )
    f.done()
    return out


@dataclass(frozen=True, slots=True)
class PlaceOrder:
    interval_start_ms: int
    side: str
    quantity_wh: int
    price_per_kwh: int


def parse_place_order(payload: Value) -> PlaceOrder:
    f = Fields(payload, "energy.place_order")
    out = PlaceOrder(
        f.integer("interval_start_ms"),
        f.choice("side", SIDES),
        f.integer("quantity_wh", lo=1, hi=MAX_WH),
        f.integer("price_per_kwh", lo=1, hi=MAX_PRICE_PER_KWH),
    )
    f.done()
    if out.quantity_wh * out.price_per_kwh < MIN_ORDER_VALUE:
        raise bad_payload(
            "energy.place_order: quantity_wh * price_per_kwh must be at least "
            f"{MIN_ORDER_VALUE} (an order is worth at least one minor unit)"
        )
    return out


def parse_cancel_order(payload: Value) -> str:
    f = Fields(payload, "energy.cancel_order")
    order_id = f.text("order_id", max_len=64, pattern=ORDER_ID_PATTERN)
    f.done()
    return order_id


def parse_settle(payload: Value) -> int:
    f = Fields(payload, "energy.settle")
    start = f.integer("interval_start_ms")
    f.done()
    return start
