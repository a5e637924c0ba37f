"""Peer-to-peer energy trading in a microgrid.

* The energy regulator registers meters (the meter's own Ed25519 key, owned by a
  prosumer organisation) and credits prepaid money balances.
* A meter signs each reading (interval, Wh produced, Wh consumed) with its own
  key; the owner submits it. Production mints energy credits (Wh) for the owner;
  consumption is recorded. One reading per meter and interval, only for an
  interval that has ended.
* Prosumers place offers (sell Wh) and bids (buy Wh) for a settlement interval
  with a price per kWh in minor units. Placing reserves what the order could
  need (the Wh of an offer, the money of a bid at its own price); cancelling
  releases it. The order book of an interval stays open until it is settled.
* ``energy.settle`` (regulator or any prosumer), possible once the interval has
  ended by block time, clears the book with the auction in
  :mod:`contracts.market`, moves credits and money, and releases whatever was
  reserved and not used. Settling is once per interval.

An account's ``credits_wh + reserved_wh`` only changes by minting and trading,
``balance + reserved_balance`` only by crediting and trading, and every check
runs before any write, so nothing is spent twice and nothing goes negative.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from contracts import index_keys as ik
from contracts import market
from contracts import state_keys as sk
from contracts.context import Handler, TxContext, handler
from contracts.errors import ContractError, bad_payload, forbidden, wrong_state
from contracts.identity import require_org
from contracts.payload import Fields
from ledger.crypto import PrivateKey, Purpose, is_valid_signature
from ledger.encoding import Value, encode

MAX_WH = 10**12
MAX_PRICE_PER_KWH = 10**9
MAX_CREDIT = 10**15
MAX_ORDERS_PER_INTERVAL = 500
MAX_AMOUNT = 2**62  # cap of any account field, far below the 64-bit encoding limit
ORDER_ID_PATTERN = re.compile(r"^[0-9a-f]{64}$")
SIDES = frozenset({"offer", "bid"})


# --- meter readings --------------------------------------------------------------------------


def reading_message(
    meter_key: bytes, interval_start_ms: int, produced_wh: int, consumed_wh: int
) -> bytes:
    """The canonical bytes a meter signs (under Purpose.METER_READING and the chain id)."""
    return encode(
        {
            "consumed_wh": consumed_wh,
            "interval_start_ms": interval_start_ms,
            "meter": meter_key,
            "produced_wh": produced_wh,
        }
    )


def sign_reading(
    meter: PrivateKey, chain_id: str, interval_start_ms: int, produced_wh: int, consumed_wh: int
) -> bytes:
    """What a meter does: sign its reading for one interval on one chain."""
    message = reading_message(meter.public_key, interval_start_ms, produced_wh, consumed_wh)
    return meter.sign(Purpose.METER_READING, chain_id, message)


# --- records ---------------------------------------------------------------------------------


def empty_account(org_id: str) -> dict[str, Value]:
    return {
        "org": org_id,
        "credits_wh": 0,
        "reserved_wh": 0,
        "balance": 0,
        "reserved_balance": 0,
        "produced_wh": 0,
        "consumed_wh": 0,
    }


def load_account(ctx: TxContext, org_id: str) -> dict[str, Value]:
    return ctx.load(sk.energy_account_key(org_id)) or empty_account(org_id)


def save_account(ctx: TxContext, account: dict[str, Value]) -> None:
    ctx.store(sk.energy_account_key(account["org"]), account)


def empty_market(interval_start_ms: int) -> dict[str, Value]:
    return {
        "interval_start_ms": interval_start_ms,
        "status": "open",
        "orders": [],
        "clearing": None,
    }


def load_market(ctx: TxContext, interval_start_ms: int) -> dict[str, Value]:
    return ctx.load(sk.market_key(interval_start_ms)) or empty_market(interval_start_ms)


def _add(account: dict[str, Value], field: str, amount: int) -> None:
    """Increase an account field, refusing to pass :data:`MAX_AMOUNT`."""
    if account[field] + amount > MAX_AMOUNT:
        raise ContractError("limit_exceeded", f"{field} would exceed {MAX_AMOUNT}")
    account[field] += amount


def check_interval(ctx: TxContext, interval_start_ms: int, *, ended: bool) -> None:
    length = ctx.params.energy_interval_ms
    if interval_start_ms % length:
        raise bad_payload(f"interval_start_ms must be a multiple of {length}")
    if ended and interval_start_ms + length > ctx.time_ms:
        raise ContractError("interval_open", "this settlement interval has not ended yet")


# --- payloads --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RegisterMeter:
    meter_key: bytes
    owner: str
    name: str


def parse_register_meter(payload: Value) -> RegisterMeter:
    f = Fields(payload, "energy.register_meter")
    out = RegisterMeter(f.raw("meter_key", size=32), f.org_id("owner"), f.text("name", max_len=100))
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
        f.integer("price_per_kwh", hi=MAX_PRICE_PER_KWH),
    )
    f.done()
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


# --- handlers: meters and money --------------------------------------------------------------


@handler(
    "energy.register_meter",
    {"energy_regulator"},
    parse_register_meter,
    "The regulator registers a meter key to a prosumer organisation.",
)
def process_register_meter(ctx: TxContext, p: RegisterMeter) -> None:
    owner = require_org(ctx, p.owner)
    if owner["kind"] != "prosumer":
        raise wrong_state(f"meters belong to prosumer organisations, {p.owner} is {owner['kind']}")
    key = sk.meter_key(p.meter_key)
    if ctx.get(key) is not None or ctx.get(sk.member_key(p.meter_key)) is not None:
        raise ContractError("duplicate", "this key is already registered")
    ctx.store(
        key,
        {
            "meter_key": p.meter_key,
            "owner": p.owner,
            "name": p.name,
            "status": "active",
            "registered_height": ctx.height,
            "revoked_reason": "",
            "readings": 0,
        },
    )
    ctx.emit("energy.meter_registered", {"meter": p.meter_key, "owner": p.owner})


@handler(
    "energy.revoke_meter",
    {"energy_regulator"},
    parse_revoke_meter,
    "The regulator revokes a meter; its readings are refused afterwards.",
)
def process_revoke_meter(ctx: TxContext, p: RevokeMeter) -> None:
    key = sk.meter_key(p.meter_key)
    meter = ctx.require(key, "meter", p.meter_key.hex())
    if meter["status"] != "active":
        raise wrong_state("this meter is already revoked")
    meter.update(status="revoked", revoked_reason=p.reason)
    ctx.store(key, meter)
    ctx.emit("energy.meter_revoked", {"meter": p.meter_key, "owner": meter["owner"]})


@handler(
    "energy.submit_reading",
    {"prosumer"},
    parse_reading,
    "The meter owner submits a reading signed by the meter; production mints credits.",
)
def process_submit_reading(ctx: TxContext, p: Reading) -> None:
    meter_key = sk.meter_key(p.meter_key)
    meter = ctx.require(meter_key, "meter", p.meter_key.hex())
    if meter["status"] != "active":
        raise ContractError("meter_revoked", "this meter has been revoked")
    if meter["owner"] != ctx.sender.org:
        raise forbidden("only the meter's owner may submit its readings")
    check_interval(ctx, p.interval_start_ms, ended=True)
    reading_key = sk.meter_reading_key(p.meter_key, p.interval_start_ms)
    if ctx.get(reading_key) is not None:
        raise ContractError("duplicate", "this meter already reported this interval")
    message = reading_message(p.meter_key, p.interval_start_ms, p.produced_wh, p.consumed_wh)
    if not is_valid_signature(
        p.meter_key, Purpose.METER_READING, ctx.tx.chain_id, message, p.signature
    ):
        raise ContractError("bad_meter_signature", "the reading is not signed by this meter")
    account = load_account(ctx, meter["owner"])
    _add(account, "credits_wh", p.produced_wh)
    _add(account, "produced_wh", p.produced_wh)
    _add(account, "consumed_wh", p.consumed_wh)
    meter["readings"] += 1
    ctx.store(
        reading_key,
        {
            "meter_key": p.meter_key,
            "interval_start_ms": p.interval_start_ms,
            "produced_wh": p.produced_wh,
            "consumed_wh": p.consumed_wh,
            "signature": p.signature,
            "height": ctx.height,
            "tx_hash": ctx.tx_hash,
        },
    )
    ctx.store(meter_key, meter)
    save_account(ctx, account)
    ctx.emit(
        "energy.reading",
        {
            "meter": p.meter_key,
            "owner": meter["owner"],
            "interval_start_ms": p.interval_start_ms,
            "produced_wh": p.produced_wh,
            "consumed_wh": p.consumed_wh,
        },
    )


@handler(
    "energy.credit_balance",
    {"energy_regulator"},
    parse_credit_balance,
    "The regulator credits a prosumer's prepaid money balance (minor units).",
)
def process_credit_balance(ctx: TxContext, p: CreditBalance) -> None:
    org = require_org(ctx, p.account)
    if org["kind"] != "prosumer":
        raise wrong_state(f"energy accounts belong to prosumers, {p.account} is {org['kind']}")
    account = load_account(ctx, p.account)
    _add(account, "balance", p.amount)
    save_account(ctx, account)
    ctx.emit(
        "energy.balance_credited",
        {"account": p.account, "amount": p.amount, "reference": p.reference},
    )


# --- handlers: the order book ----------------------------------------------------------------


def _reserve(account: dict[str, Value], side: str, amount: int) -> None:
    field, reserved = (
        ("credits_wh", "reserved_wh") if side == "offer" else ("balance", "reserved_balance")
    )
    if account[field] < amount:
        unit = "Wh of energy credits" if side == "offer" else "minor units of money"
        raise ContractError(
            "insufficient_balance", f"needs {amount} {unit}, the account has {account[field]}"
        )
    account[field] -= amount
    account[reserved] += amount


def _release(account: dict[str, Value], side: str, amount: int) -> None:
    field, reserved = (
        ("credits_wh", "reserved_wh") if side == "offer" else ("balance", "reserved_balance")
    )
    assert 0 <= amount <= account[reserved], "release exceeds the reservation"
    account[reserved] -= amount
    account[field] += amount


@handler(
    "energy.place_order",
    {"prosumer"},
    parse_place_order,
    "A prosumer offers or bids for an interval; the Wh or money is reserved.",
)
def process_place_order(ctx: TxContext, p: PlaceOrder) -> None:
    check_interval(ctx, p.interval_start_ms, ended=False)
    book = load_market(ctx, p.interval_start_ms)
    if book["status"] != "open":
        raise wrong_state("this interval has already been settled")
    if len(book["orders"]) >= MAX_ORDERS_PER_INTERVAL:
        raise ContractError(
            "limit_exceeded", f"at most {MAX_ORDERS_PER_INTERVAL} orders per interval"
        )
    account = load_account(ctx, ctx.sender.org)
    if p.side == "offer":
        reserved = p.quantity_wh
    else:
        reserved = market.bid_reservation(p.quantity_wh, p.price_per_kwh)
    _reserve(account, p.side, reserved)
    order_id = ctx.tx_hash.hex()
    ctx.store(
        sk.order_key(order_id),
        {
            "id": order_id,
            "interval_start_ms": p.interval_start_ms,
            "side": p.side,
            "account": ctx.sender.org,
            "placed_by": ctx.sender.public_key,
            "quantity_wh": p.quantity_wh,
            "price_per_kwh": p.price_per_kwh,
            "reserved": reserved,
            "seq": len(book["orders"]),
            "status": "open",
            "filled_wh": 0,
            "amount": 0,
        },
    )
    book["orders"].append(order_id)
    ctx.store(sk.market_key(p.interval_start_ms), book)
    save_account(ctx, account)
    ctx.emit(
        "energy.order_placed",
        {
            "order": order_id,
            "account": ctx.sender.org,
            "interval_start_ms": p.interval_start_ms,
            "side": p.side,
            "quantity_wh": p.quantity_wh,
            "price_per_kwh": p.price_per_kwh,
        },
    )


@handler(
    "energy.cancel_order",
    {"prosumer"},
    parse_cancel_order,
    "A member of the ordering prosumer cancels an open order; its reservation is released.",
)
def process_cancel_order(ctx: TxContext, order_id: str) -> None:
    key = sk.order_key(order_id)
    order = ctx.require(key, "order", order_id)
    if order["account"] != ctx.sender.org:
        raise forbidden("only the ordering organisation may cancel an order")
    if order["status"] != "open":
        raise wrong_state(f"the order is {order['status']}")
    account = load_account(ctx, order["account"])
    _release(account, order["side"], order["reserved"])
    order["status"] = "cancelled"
    ctx.store(key, order)
    save_account(ctx, account)
    ctx.emit("energy.order_cancelled", {"order": order_id, "account": order["account"]})


@handler(
    "energy.settle",
    {"energy_regulator", "prosumer"},
    parse_settle,
    "Once an interval has ended, anyone in the market settles it (once): auction + transfers.",
)
def process_settle(ctx: TxContext, interval_start_ms: int) -> None:
    check_interval(ctx, interval_start_ms, ended=True)
    book = load_market(ctx, interval_start_ms)
    if book["status"] != "open":
        raise wrong_state("this interval has already been settled")
    orders = {oid: ctx.require(sk.order_key(oid), "order", oid) for oid in book["orders"]}
    open_orders = [o for o in orders.values() if o["status"] == "open"]
    result = market.clear(
        [_book_order(o) for o in open_orders if o["side"] == "offer"],
        [_book_order(o) for o in open_orders if o["side"] == "bid"],
    )
    accounts: dict[str, dict[str, Value]] = {}

    def account(org_id: str) -> dict[str, Value]:
        if org_id not in accounts:
            accounts[org_id] = load_account(ctx, org_id)
        return accounts[org_id]

    for n, match in enumerate(result.matches):
        _execute_match(ctx, interval_start_ms, n, match, result.price_per_kwh, orders, account)
    for order in open_orders:
        _close_order(order, account(order["account"]))
        ctx.store(sk.order_key(order["id"]), order)
    for acct in accounts.values():
        save_account(ctx, acct)
    book["status"] = "settled"
    book["clearing"] = {
        "price_per_kwh": result.price_per_kwh,
        "volume_wh": result.volume_wh,
        "trade_count": len(result.matches),
        "settled_height": ctx.height,
        "settled_time_ms": ctx.time_ms,
    }
    ctx.store(sk.market_key(interval_start_ms), book)
    ctx.emit(
        "energy.settled",
        {
            "interval_start_ms": interval_start_ms,
            "price_per_kwh": result.price_per_kwh,
            "volume_wh": result.volume_wh,
            "trades": len(result.matches),
        },
    )


def _book_order(order: dict[str, Value]) -> market.BookOrder:
    return market.BookOrder(order["id"], order["seq"], order["price_per_kwh"], order["quantity_wh"])


def _execute_match(
    ctx: TxContext,
    interval_start_ms: int,
    n: int,
    match: market.Match,
    price: int,
    orders: dict[str, dict[str, Value]],
    account: Callable[[str], dict[str, Value]],
) -> None:
    offer, bid = orders[match.offer_id], orders[match.bid_id]
    amount = market.trade_amount(match.quantity_wh, price)
    seller, buyer = account(offer["account"]), account(bid["account"])
    seller["reserved_wh"] -= match.quantity_wh
    buyer["credits_wh"] += match.quantity_wh
    buyer["reserved_balance"] -= amount
    seller["balance"] += amount
    for order, delta in ((offer, amount), (bid, amount)):
        order["filled_wh"] += match.quantity_wh
        order["amount"] += delta
    trade_key = sk.trade_key(interval_start_ms, n)
    ctx.store(
        trade_key,
        {
            "interval_start_ms": interval_start_ms,
            "n": n,
            "seller": offer["account"],
            "buyer": bid["account"],
            "offer_id": offer["id"],
            "bid_id": bid["id"],
            "quantity_wh": match.quantity_wh,
            "price_per_kwh": price,
            "amount": amount,
        },
    )
    for org_id in {offer["account"], bid["account"]}:
        ctx.index_put(ik.trade_account_key(org_id, interval_start_ms, n), trade_key)


def _close_order(order: dict[str, Value], account: dict[str, Value]) -> None:
    """Release what the order reserved and did not use, and mark it settled."""
    if order["side"] == "offer":
        unused = order["quantity_wh"] - order["filled_wh"]
    else:
        unused = order["reserved"] - order["amount"]
    _release(account, order["side"], unused)
    order["status"] = "settled"


HANDLERS: list[Handler] = [
    process_register_meter,
    process_revoke_meter,
    process_submit_reading,
    process_credit_balance,
    process_place_order,
    process_cancel_order,
    process_settle,
]
