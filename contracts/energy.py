"""Peer-to-peer energy trading in a microgrid.

* The energy regulator registers meters (the meter's own Ed25519 key, owned by a
  prosumer organisation, active from its registration or a stated commissioning
  time) and credits prepaid money balances.
* A meter signs each reading (interval, Wh produced, Wh consumed) with its own
  key; the owner submits it. One reading per meter and interval, only for an
  interval that has ended, started within the meter's life and within
  ``max_reading_age_ms`` of the block time, each amount at most the per-meter cap.
* Energy is bound to its interval. Each account has a *position* per interval:
  what its meters produced and consumed then, what it offered, sold and bought in
  that interval's market. Consumption uses the account's own production first
  (then bought energy, then the grid), so only the surplus
  ``max(0, produced - consumed)`` of an interval can be offered, and only in that
  interval's market; bought energy covers consumption and is never resold.
* Prosumers place offers (sell Wh) and bids (buy Wh) for a settlement interval
  with a price per kWh in minor units. Placing reserves what the order could
  need (surplus Wh of that interval for an offer, the money of a bid at its own
  price); cancelling releases it. Every order is worth at least one minor unit,
  and an account places at most :data:`MAX_ORDERS_PER_ACCOUNT` per interval.
* ``energy.settle`` (regulator or any prosumer), possible once the interval has
  ended plus ``settlement_delay_ms``, clears the book with the auction in
  :mod:`contracts.market`, moves money and Wh, and releases whatever was
  reserved and not used. Settling is once per interval.

``balance + reserved_balance`` only changes by crediting and trading; in every
position ``offered_wh + sold_wh <= max(0, produced_wh - consumed_wh)`` whenever
anything is offered or sold (a reading that would break it is refused); every
check runs before any write and every add is checked against :data:`MAX_AMOUNT`,
so nothing is sold twice, nothing is minted from nothing and nothing goes negative.
"""

from __future__ import annotations

from contracts import index_keys as ik
from contracts import market
from contracts import state_keys as sk
from contracts.context import Handler, TxContext, handler
from contracts.energy_payloads import (
    CreditBalance,
    PlaceOrder,
    Reading,
    RegisterMeter,
    RevokeMeter,
    parse_cancel_order,
    parse_credit_balance,
    parse_place_order,
    parse_reading,
    parse_register_meter,
    parse_revoke_meter,
    parse_settle,
)
from contracts.errors import ContractError, bad_payload, forbidden, wrong_state
from contracts.identity import require_org
from contracts.params import MAX_SKEW_MS
from ledger.crypto import PrivateKey, Purpose, is_valid_signature
from ledger.encoding import Value, encode

MAX_ORDERS_PER_INTERVAL = 500
MAX_ORDERS_PER_ACCOUNT = 20  # orders one account may place in one interval (cancelled count)
MAX_AMOUNT = 2**62  # cap of any account field, far below the 64-bit encoding limit


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
        "balance": 0,
        "reserved_balance": 0,
        "produced_wh": 0,
        "consumed_wh": 0,
        "sold_wh": 0,
        "bought_wh": 0,
    }


def load_account(ctx: TxContext, org_id: str) -> dict[str, Value]:
    return ctx.load(sk.energy_account_key(org_id)) or empty_account(org_id)


def save_account(ctx: TxContext, account: dict[str, Value]) -> None:
    ctx.store(sk.energy_account_key(account["org"]), account)


def empty_position(org_id: str, interval_start_ms: int) -> dict[str, Value]:
    return {
        "org": org_id,
        "interval_start_ms": interval_start_ms,
        "produced_wh": 0,
        "consumed_wh": 0,
        "offered_wh": 0,
        "sold_wh": 0,
        "bought_wh": 0,
        "orders": 0,
    }


def load_position(ctx: TxContext, org_id: str, interval_start_ms: int) -> dict[str, Value]:
    key = sk.energy_position_key(org_id, interval_start_ms)
    return ctx.load(key) or empty_position(org_id, interval_start_ms)


def save_position(ctx: TxContext, position: dict[str, Value]) -> None:
    key = sk.energy_position_key(position["org"], position["interval_start_ms"])
    ctx.store(key, position)


def surplus_wh(position: dict[str, Value]) -> int:
    """What the account may sell in the interval: own production left after own use."""
    produced: int = position["produced_wh"]
    consumed: int = position["consumed_wh"]
    return max(0, produced - consumed)


def available_wh(position: dict[str, Value]) -> int:
    """Surplus not yet offered or sold."""
    committed: int = position["offered_wh"] + position["sold_wh"]
    return surplus_wh(position) - committed


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


def check_interval(
    ctx: TxContext, interval_start_ms: int, *, ended: bool, delay_ms: int = 0
) -> None:
    """Aligned; with ``ended``, ended at least ``delay_ms`` before the block time."""
    length = ctx.params.energy_interval_ms
    if interval_start_ms % length:
        raise bad_payload(f"interval_start_ms must be a multiple of {length}")
    if ended and interval_start_ms + length + delay_ms > ctx.time_ms:
        what = "has not ended" if delay_ms == 0 else f"has not ended {delay_ms} ms ago"
        raise ContractError("interval_open", f"this settlement interval {what} yet")


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
    active_from = ctx.time_ms if p.active_from_ms is None else p.active_from_ms
    if active_from > ctx.time_ms + MAX_SKEW_MS:
        raise ContractError("bad_time", "a meter cannot be commissioned in the future")
    if active_from < ctx.time_ms - ctx.params.max_reading_age_ms:
        raise ContractError(
            "bad_time",
            f"a meter's commissioning time may lie at most {ctx.params.max_reading_age_ms} ms "
            "before the block",
        )
    ctx.store(
        key,
        {
            "meter_key": p.meter_key,
            "owner": p.owner,
            "name": p.name,
            "status": "active",
            "registered_height": ctx.height,
            "active_from_ms": active_from,
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
    check_reading_time(ctx, meter, p.interval_start_ms)
    cap = ctx.params.max_meter_wh
    if p.produced_wh > cap or p.consumed_wh > cap:
        raise ContractError(
            "limit_exceeded", f"a meter reports at most {cap} Wh produced or consumed per interval"
        )
    reading_key = sk.meter_reading_key(p.meter_key, p.interval_start_ms)
    if ctx.get(reading_key) is not None:
        raise ContractError("duplicate", "this meter already reported this interval")
    message = reading_message(p.meter_key, p.interval_start_ms, p.produced_wh, p.consumed_wh)
    if not is_valid_signature(
        p.meter_key, Purpose.METER_READING, ctx.tx.chain_id, message, p.signature
    ):
        raise ContractError("bad_meter_signature", "the reading is not signed by this meter")
    account = load_account(ctx, meter["owner"])
    position = load_position(ctx, meter["owner"], p.interval_start_ms)
    _add(account, "produced_wh", p.produced_wh)
    _add(account, "consumed_wh", p.consumed_wh)
    _add(position, "produced_wh", p.produced_wh)
    _add(position, "consumed_wh", p.consumed_wh)
    committed = position["offered_wh"] + position["sold_wh"]
    if committed > surplus_wh(position):
        raise ContractError(
            "insufficient_balance",
            f"the account has offered or sold {committed} Wh of this interval; with this "
            f"reading its surplus would be {surplus_wh(position)} Wh",
        )
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
    save_position(ctx, position)
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


def check_reading_time(ctx: TxContext, meter: dict[str, Value], interval_start_ms: int) -> None:
    """The interval has ended, began within the meter's life and not too long ago."""
    check_interval(ctx, interval_start_ms, ended=True)
    if interval_start_ms < meter["active_from_ms"]:
        raise ContractError(
            "bad_time", f"the meter is active from {meter['active_from_ms']}, not before"
        )
    if interval_start_ms < ctx.time_ms - ctx.params.max_reading_age_ms:
        raise ContractError(
            "bad_time",
            f"readings are accepted up to {ctx.params.max_reading_age_ms} ms after an "
            "interval's start",
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


def _reserve(account: dict[str, Value], position: dict[str, Value], side: str, amount: int) -> None:
    if side == "offer":
        if available_wh(position) < amount:
            raise ContractError(
                "insufficient_balance",
                f"needs {amount} Wh of this interval's surplus, the account has "
                f"{available_wh(position)} (produced {position['produced_wh']}, consumed "
                f"{position['consumed_wh']}, offered {position['offered_wh']}, sold "
                f"{position['sold_wh']})",
            )
        position["offered_wh"] += amount
        return
    if account["balance"] < amount:
        raise ContractError(
            "insufficient_balance",
            f"needs {amount} minor units of money, the account has {account['balance']}",
        )
    account["balance"] -= amount
    account["reserved_balance"] += amount


def _release(account: dict[str, Value], position: dict[str, Value], side: str, amount: int) -> None:
    if side == "offer":
        assert 0 <= amount <= position["offered_wh"], "release exceeds the offered Wh"
        position["offered_wh"] -= amount
        return
    assert 0 <= amount <= account["reserved_balance"], "release exceeds the reservation"
    account["reserved_balance"] -= amount
    account["balance"] += amount


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
    position = load_position(ctx, ctx.sender.org, p.interval_start_ms)
    if position["orders"] >= MAX_ORDERS_PER_ACCOUNT:
        raise ContractError(
            "limit_exceeded",
            f"an account places at most {MAX_ORDERS_PER_ACCOUNT} orders per interval",
        )
    if p.side == "offer":
        reserved = p.quantity_wh
    else:
        reserved = market.bid_reservation(p.quantity_wh, p.price_per_kwh)
    _reserve(account, position, p.side, reserved)
    position["orders"] += 1
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
    save_position(ctx, position)
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
    position = load_position(ctx, order["account"], order["interval_start_ms"])
    _release(account, position, order["side"], order["reserved"])
    order["status"] = "cancelled"
    ctx.store(key, order)
    save_account(ctx, account)
    save_position(ctx, position)
    ctx.emit("energy.order_cancelled", {"order": order_id, "account": order["account"]})


@handler(
    "energy.settle",
    {"energy_regulator", "prosumer"},
    parse_settle,
    "Once an interval has ended, anyone in the market settles it (once): auction + transfers.",
)
def process_settle(ctx: TxContext, interval_start_ms: int) -> None:
    check_interval(ctx, interval_start_ms, ended=True, delay_ms=ctx.params.settlement_delay_ms)
    book = load_market(ctx, interval_start_ms)
    if book["status"] != "open":
        raise wrong_state("this interval has already been settled")
    orders = {oid: ctx.require(sk.order_key(oid), "order", oid) for oid in book["orders"]}
    open_orders = [o for o in orders.values() if o["status"] == "open"]
    result = market.clear(
        [_book_order(o) for o in open_orders if o["side"] == "offer"],
        [_book_order(o) for o in open_orders if o["side"] == "bid"],
    )
    books = _Books(ctx, interval_start_ms)
    for n, match in enumerate(result.matches):
        _execute_match(ctx, interval_start_ms, n, match, result.price_per_kwh, orders, books)
    for order in open_orders:
        _close_order(order, books)
        ctx.store(sk.order_key(order["id"]), order)
    books.save()
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


class _Books:
    """The accounts and interval positions a settlement touches, loaded once, saved once."""

    def __init__(self, ctx: TxContext, interval_start_ms: int) -> None:
        self.ctx = ctx
        self.start = interval_start_ms
        self.accounts: dict[str, dict[str, Value]] = {}
        self.positions: dict[str, dict[str, Value]] = {}

    def account(self, org_id: str) -> dict[str, Value]:
        if org_id not in self.accounts:
            self.accounts[org_id] = load_account(self.ctx, org_id)
        return self.accounts[org_id]

    def position(self, org_id: str) -> dict[str, Value]:
        if org_id not in self.positions:
            self.positions[org_id] = load_position(self.ctx, org_id, self.start)
        return self.positions[org_id]

    def save(self) -> None:
        for org_id in sorted(self.accounts):
            save_account(self.ctx, self.accounts[org_id])
        for org_id in sorted(self.positions):
            save_position(self.ctx, self.positions[org_id])


def _book_order(order: dict[str, Value]) -> market.BookOrder:
    return market.BookOrder(order["id"], order["seq"], order["price_per_kwh"], order["quantity_wh"])


def _execute_match(
    ctx: TxContext,
    interval_start_ms: int,
    n: int,
    match: market.Match,
    price: int,
    orders: dict[str, dict[str, Value]],
    books: _Books,
) -> None:
    offer, bid = orders[match.offer_id], orders[match.bid_id]
    quantity, amount = match.quantity_wh, match.amount
    seller_org, buyer_org = offer["account"], bid["account"]
    seller, buyer = books.account(seller_org), books.account(buyer_org)
    assert amount <= buyer["reserved_balance"], "a trade exceeds the bid's reservation"
    buyer["reserved_balance"] -= amount
    _add(seller, "balance", amount)
    _add(seller, "sold_wh", quantity)
    _add(buyer, "bought_wh", quantity)
    _add(books.position(seller_org), "sold_wh", quantity)
    _add(books.position(buyer_org), "bought_wh", quantity)
    for order in (offer, bid):
        order["filled_wh"] += quantity
        order["amount"] += amount
    trade_key = sk.trade_key(interval_start_ms, n)
    ctx.store(
        trade_key,
        {
            "interval_start_ms": interval_start_ms,
            "n": n,
            "seller": seller_org,
            "buyer": buyer_org,
            "offer_id": offer["id"],
            "bid_id": bid["id"],
            "quantity_wh": quantity,
            "price_per_kwh": price,
            "amount": amount,
        },
    )
    for org_id in sorted({seller_org, buyer_org}):
        ctx.index_put(ik.trade_account_key(org_id, interval_start_ms, n), trade_key)


def _close_order(order: dict[str, Value], books: _Books) -> None:
    """Release what the order reserved (an offer's Wh: all of it, the sold part is now
    ``sold_wh``; a bid's money: what it did not pay), and mark it settled."""
    account, position = books.account(order["account"]), books.position(order["account"])
    if order["side"] == "offer":
        _release(account, position, "offer", order["quantity_wh"])
    else:
        _release(account, position, "bid", order["reserved"] - order["amount"])
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
