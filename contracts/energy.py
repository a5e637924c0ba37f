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
Payloads are described in :mod:`contracts.energy_payloads`, records in
:mod:`contracts.energy_records`.
"""

from __future__ import annotations

from typing import Any, TypeVar, cast

from contracts import index_keys as ik
from contracts import market
from contracts import search_buckets as sb
from contracts import state_keys as sk
from contracts.context import Handler, TxContext, handler
from contracts.energy_payloads import (
    CancelOrder,
    CreditBalance,
    PlaceOrder,
    Reading,
    RegisterMeter,
    RevokeMeter,
    Settle,
)
from contracts.energy_records import (
    MAX_ORDERS_PER_INTERVAL,
    Account,
    Clearing,
    Meter,
    MeterReading,
    Order,
    Position,
    Trade,
    load_account,
    load_market,
    load_meter,
    load_order,
    load_position,
)
from contracts.errors import ContractError, bad_payload, forbidden, wrong_state
from contracts.identity_records import load_org
from contracts.params import MAX_SKEW_MS
from ledger.crypto import PrivateKey, Purpose, is_valid_signature
from ledger.encoding import encode

MAX_ORDERS_PER_ACCOUNT = 20  # orders one account may place in one interval (cancelled count)
MAX_AMOUNT = 2**62  # cap of any account field, far below the 64-bit encoding limit
R = TypeVar("R", bound=Account | Position)  # bound, not values: mypyc checks once


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


# --- accounts --------------------------------------------------------------------------------


def _add(record: R, **amounts: int) -> R:
    """``record`` with each named field increased by its amount (one copy), refusing a
    field that would pass :data:`MAX_AMOUNT`."""
    changes: dict[str, Any] = {}
    for field, amount in amounts.items():
        value: int = getattr(record, field) + amount
        if value > MAX_AMOUNT:
            raise ContractError("limit_exceeded", f"{field} would exceed {MAX_AMOUNT}")
        changes[field] = value
    return cast(R, record.replace(**changes))  # replace() gives the bound, not R


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


def require_prosumer(ctx: TxContext, org_id: str, rule: str) -> None:
    """Organisation ``org_id`` exists and is a prosumer (else ``wrong_state`` citing ``rule``)."""
    kind = load_org(ctx, org_id).kind
    if kind != "prosumer":
        raise wrong_state(f"{rule}, {org_id} is {kind}")


# --- handlers: meters and money --------------------------------------------------------------


@handler(RegisterMeter, {"energy_regulator"})
def process_register_meter(ctx: TxContext, p: RegisterMeter) -> None:
    require_prosumer(ctx, p.owner, "meters belong to prosumer organisations")
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
    ctx.save(Meter(p.meter_key, p.owner, p.name, "active", ctx.height, active_from, "", 0))
    ctx.emit("energy.meter_registered", {"meter": p.meter_key, "owner": p.owner})


@handler(RevokeMeter, {"energy_regulator"})
def process_revoke_meter(ctx: TxContext, p: RevokeMeter) -> None:
    meter = load_meter(ctx, p.meter_key)
    if meter.status != "active":
        raise wrong_state("this meter is already revoked")
    ctx.save(meter.replace(status="revoked", revoked_reason=p.reason))
    ctx.emit("energy.meter_revoked", {"meter": p.meter_key, "owner": meter.owner})


@handler(Reading, {"prosumer"})
def process_submit_reading(ctx: TxContext, p: Reading) -> None:
    meter = load_meter(ctx, p.meter_key)
    if meter.status != "active":
        raise ContractError("meter_revoked", "this meter has been revoked")
    if meter.owner != ctx.sender.org:
        raise forbidden("only the meter's owner may submit its readings")
    check_reading_time(ctx, meter, p.interval_start_ms)
    cap = ctx.params.max_meter_wh
    if p.produced_wh > cap or p.consumed_wh > cap:
        raise ContractError(
            "limit_exceeded", f"a meter reports at most {cap} Wh produced or consumed per interval"
        )
    reading = MeterReading(
        p.meter_key,
        p.interval_start_ms,
        p.produced_wh,
        p.consumed_wh,
        p.signature,
        ctx.height,
        ctx.tx_hash,
    )
    if ctx.get(reading.key) is not None:
        raise ContractError("duplicate", "this meter already reported this interval")
    message = reading_message(p.meter_key, p.interval_start_ms, p.produced_wh, p.consumed_wh)
    if not is_valid_signature(
        p.meter_key, Purpose.METER_READING, ctx.tx.chain_id, message, p.signature
    ):
        raise ContractError("bad_meter_signature", "the reading is not signed by this meter")
    account = load_account(ctx, meter.owner)
    position = load_position(ctx, meter.owner, p.interval_start_ms)
    account = _add(account, produced_wh=p.produced_wh, consumed_wh=p.consumed_wh)
    position = _add(position, produced_wh=p.produced_wh, consumed_wh=p.consumed_wh)
    committed = position.offered_wh + position.sold_wh
    if committed > position.surplus_wh():
        raise ContractError(
            "insufficient_balance",
            f"the account has offered or sold {committed} Wh of this interval; with this "
            f"reading its surplus would be {position.surplus_wh()} Wh",
        )
    for record in (reading, meter.replace(readings=meter.readings + 1), account, position):
        ctx.save(record)
    ctx.emit(
        "energy.reading",
        {
            "meter": p.meter_key,
            "owner": meter.owner,
            "interval_start_ms": p.interval_start_ms,
            "produced_wh": p.produced_wh,
            "consumed_wh": p.consumed_wh,
        },
    )


def check_reading_time(ctx: TxContext, meter: Meter, interval_start_ms: int) -> None:
    """The interval has ended, began within the meter's life and not too long ago."""
    check_interval(ctx, interval_start_ms, ended=True)
    if interval_start_ms < meter.active_from_ms:
        raise ContractError(
            "bad_time", f"the meter is active from {meter.active_from_ms}, not before"
        )
    if interval_start_ms < ctx.time_ms - ctx.params.max_reading_age_ms:
        raise ContractError(
            "bad_time",
            f"readings are accepted up to {ctx.params.max_reading_age_ms} ms after an "
            "interval's start",
        )


@handler(CreditBalance, {"energy_regulator"})
def process_credit_balance(ctx: TxContext, p: CreditBalance) -> None:
    require_prosumer(ctx, p.account, "energy accounts belong to prosumers")
    ctx.save(_add(load_account(ctx, p.account), balance=p.amount))
    ctx.emit(
        "energy.balance_credited",
        {"account": p.account, "amount": p.amount, "reference": p.reference},
    )


# --- handlers: the order book ----------------------------------------------------------------


def _reserve(
    account: Account, position: Position, side: str, amount: int
) -> tuple[Account, Position]:
    if side == "offer":
        if position.available_wh() < amount:
            raise ContractError(
                "insufficient_balance",
                f"needs {amount} Wh of this interval's surplus, the account has "
                f"{position.available_wh()} (produced {position.produced_wh}, consumed "
                f"{position.consumed_wh}, offered {position.offered_wh}, sold "
                f"{position.sold_wh})",
            )
        return account, position.replace(offered_wh=position.offered_wh + amount)
    if account.balance < amount:
        raise ContractError(
            "insufficient_balance",
            f"needs {amount} minor units of money, the account has {account.balance}",
        )
    moved = account.replace(
        balance=account.balance - amount,
        reserved_balance=account.reserved_balance + amount,
    )
    return moved, position


def _move_money(account: Account, amount: int) -> Account:
    """``amount`` moved from the available balance into the reservation (negative: back)."""
    return account.replace(
        balance=account.balance - amount,
        reserved_balance=account.reserved_balance + amount,
    )


def _release(
    account: Account, position: Position, side: str, amount: int
) -> tuple[Account, Position]:
    if side == "offer":
        assert 0 <= amount <= position.offered_wh, "release exceeds the offered Wh"
        return account, position.replace(offered_wh=position.offered_wh - amount)
    assert 0 <= amount <= account.reserved_balance, "release exceeds the reservation"
    moved = account.replace(
        reserved_balance=account.reserved_balance - amount,
        balance=account.balance + amount,
    )
    return moved, position


@handler(PlaceOrder, {"prosumer"})
def process_place_order(ctx: TxContext, p: PlaceOrder) -> None:
    check_interval(ctx, p.interval_start_ms, ended=False)
    book = load_market(ctx, p.interval_start_ms)
    if book.status != "open":
        raise wrong_state("this interval has already been settled")
    if len(book.orders) >= MAX_ORDERS_PER_INTERVAL:
        raise ContractError(
            "limit_exceeded", f"at most {MAX_ORDERS_PER_INTERVAL} orders per interval"
        )
    account = load_account(ctx, ctx.sender.org)
    position = load_position(ctx, ctx.sender.org, p.interval_start_ms)
    if position.orders >= MAX_ORDERS_PER_ACCOUNT:
        raise ContractError(
            "limit_exceeded",
            f"an account places at most {MAX_ORDERS_PER_ACCOUNT} orders per interval",
        )
    if p.side == "offer":
        reserved = p.quantity_wh
    else:
        reserved = market.bid_reservation(p.quantity_wh, p.price_per_kwh)
    account, position = _reserve(account, position, p.side, reserved)
    order = Order(
        id=ctx.tx_hash.hex(),
        interval_start_ms=p.interval_start_ms,
        side=p.side,
        account=ctx.sender.org,
        placed_by=ctx.sender.public_key,
        quantity_wh=p.quantity_wh,
        price_per_kwh=p.price_per_kwh,
        reserved=reserved,
        seq=len(book.orders),
        status="open",
        filled_wh=0,
        amount=0,
    )
    book = book.replace(orders=(*book.orders, order.id))
    for record in (order, book, account, position.replace(orders=position.orders + 1)):
        ctx.save(record)
    ctx.emit(
        "energy.order_placed",
        {
            "order": order.id,
            "account": ctx.sender.org,
            "interval_start_ms": p.interval_start_ms,
            "side": p.side,
            "quantity_wh": p.quantity_wh,
            "price_per_kwh": p.price_per_kwh,
        },
    )


@handler(CancelOrder, {"prosumer"})
def process_cancel_order(ctx: TxContext, p: CancelOrder) -> None:
    order = load_order(ctx, p.order_id)
    if order.account != ctx.sender.org:
        raise forbidden("only the ordering organisation may cancel an order")
    if order.status != "open":
        raise wrong_state(f"the order is {order.status}")
    account = load_account(ctx, order.account)
    position = load_position(ctx, order.account, order.interval_start_ms)
    account, position = _release(account, position, order.side, order.reserved)
    for record in (order.replace(status="cancelled"), account, position):
        ctx.save(record)
    ctx.emit("energy.order_cancelled", {"order": p.order_id, "account": order.account})


@handler(Settle, {"energy_regulator", "prosumer"})
def process_settle(ctx: TxContext, p: Settle) -> None:
    start = p.interval_start_ms
    check_interval(ctx, start, ended=True, delay_ms=ctx.params.settlement_delay_ms)
    book = load_market(ctx, start)
    if book.status != "open":
        raise wrong_state("this interval has already been settled")
    orders = {oid: load_order(ctx, oid) for oid in book.orders}
    open_ids = [oid for oid, o in orders.items() if o.status == "open"]
    result = market.clear(
        [_book_order(orders[oid]) for oid in open_ids if orders[oid].side == "offer"],
        [_book_order(orders[oid]) for oid in open_ids if orders[oid].side == "bid"],
    )
    books = _Books(ctx, start)
    for n, match in enumerate(result.matches):
        _execute_match(ctx, start, n, match, result.price_per_kwh, orders, books)
    for oid in open_ids:
        ctx.save(_close_order(orders[oid], books))
    books.save()
    clearing = Clearing(
        result.price_per_kwh, result.volume_wh, len(result.matches), ctx.height, ctx.time_ms
    )
    ctx.save(book.replace(status="settled", clearing=clearing))
    ctx.emit(
        "energy.settled",
        {
            "interval_start_ms": start,
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
        self.accounts: dict[str, Account] = {}
        self.positions: dict[str, Position] = {}

    def account(self, org_id: str) -> Account:
        if org_id not in self.accounts:
            self.accounts[org_id] = load_account(self.ctx, org_id)
        return self.accounts[org_id]

    def position(self, org_id: str) -> Position:
        if org_id not in self.positions:
            self.positions[org_id] = load_position(self.ctx, org_id, self.start)
        return self.positions[org_id]

    def add(self, org_id: str, field: str, amount: int, *, position: bool = False) -> None:
        """Add ``amount`` to ``field`` of the account (or its position), capped."""
        if position:
            self.positions[org_id] = _add(self.position(org_id), **{field: amount})
        else:
            self.accounts[org_id] = _add(self.account(org_id), **{field: amount})

    def save(self) -> None:
        for org_id in sorted(self.accounts):
            self.ctx.save(self.accounts[org_id])
        for org_id in sorted(self.positions):
            self.ctx.save(self.positions[org_id])


def _book_order(order: Order) -> market.BookOrder:
    return market.BookOrder(order.id, order.seq, order.price_per_kwh, order.quantity_wh)


def _execute_match(
    ctx: TxContext,
    interval_start_ms: int,
    n: int,
    match: market.Match,
    price: int,
    orders: dict[str, Order],
    books: _Books,
) -> None:
    offer, bid = orders[match.offer_id], orders[match.bid_id]
    quantity, amount = match.quantity_wh, match.amount
    seller, buyer = offer.account, bid.account
    paying = books.account(buyer)
    assert amount <= paying.reserved_balance, "a trade exceeds the bid's reservation"
    books.accounts[buyer] = paying.replace(reserved_balance=paying.reserved_balance - amount)
    books.add(seller, "balance", amount)
    books.add(seller, "sold_wh", quantity)
    books.add(buyer, "bought_wh", quantity)
    books.add(seller, "sold_wh", quantity, position=True)
    books.add(buyer, "bought_wh", quantity, position=True)
    for order in (offer, bid):
        filled = orders[order.id]
        orders[order.id] = filled.replace(
            filled_wh=filled.filled_wh + quantity, amount=filled.amount + amount
        )
    trade = Trade(interval_start_ms, n, seller, buyer, offer.id, bid.id, quantity, price, amount)
    ctx.save(trade)
    for org_id in sorted({seller, buyer}):
        bucket = sb.TRADE_ACCOUNT.bucket(org_id)
        sb.file(ctx, bucket, ik.trade_account_key(org_id, interval_start_ms, n), trade.key)


def _close_order(order: Order, books: _Books) -> Order:
    """Release what the order reserved (an offer's Wh: all of it, the sold part is now
    ``sold_wh``; a bid's money: what it did not pay); returns it settled."""
    org_id = order.account
    amount = order.quantity_wh if order.side == "offer" else order.reserved - order.amount
    account, position = _release(books.account(org_id), books.position(org_id), order.side, amount)
    books.accounts[org_id], books.positions[org_id] = account, position
    return order.replace(status="settled")


HANDLERS: list[Handler] = [
    process_register_meter,
    process_revoke_meter,
    process_submit_reading,
    process_credit_balance,
    process_place_order,
    process_cancel_order,
    process_settle,
]
