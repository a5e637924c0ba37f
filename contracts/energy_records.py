"""Energy records as stored (keys in :mod:`contracts.state_keys`): meters and their
readings, accounts and their per-interval positions, orders, an interval's market
book, and trades.

Handlers read them through the ``load_*`` functions here (an account, position or
market never written reads as empty) and store them with
:meth:`~contracts.context.TxContext.save`.
"""

from __future__ import annotations

from dataclasses import field

from contracts import state_keys as sk
from contracts.context import TxContext
from contracts.fields import ORG_ID, stored
from ledger.schema import (
    HASH,
    PUBLIC_KEY,
    SIGNATURE,
    Described,
    List,
    Nested,
    Optional,
    Str,
    wire,
)

MAX_ORDERS_PER_INTERVAL = 500
ORDER_ID = Str(max_len=64, min_len=64)


@stored("meter")
class Meter(Described):
    """A meter's own key, its owner, its life (active from, revoked) and reading count."""

    meter_key: bytes = field(metadata=wire(PUBLIC_KEY))
    owner: str = field(metadata=wire(ORG_ID))
    name: str
    status: str
    registered_height: int
    active_from_ms: int
    revoked_reason: str
    readings: int

    @property
    def key(self) -> bytes:
        return sk.meter_key(self.meter_key)


@stored("meter_reading")
class MeterReading(Described):
    """One signed reading of one meter for one interval."""

    meter_key: bytes = field(metadata=wire(PUBLIC_KEY))
    interval_start_ms: int
    produced_wh: int
    consumed_wh: int
    signature: bytes = field(metadata=wire(SIGNATURE))
    height: int
    tx_hash: bytes = field(metadata=wire(HASH))

    @property
    def key(self) -> bytes:
        return sk.meter_reading_key(self.meter_key, self.interval_start_ms)


@stored("energy_account")
class Account(Described):
    """An organisation's money (available and reserved, minor units) and energy totals."""

    org: str = field(metadata=wire(ORG_ID))
    balance: int
    reserved_balance: int
    produced_wh: int
    consumed_wh: int
    sold_wh: int
    bought_wh: int

    @classmethod
    def empty(cls, org_id: str) -> Account:
        return cls(org_id, 0, 0, 0, 0, 0, 0)

    @property
    def key(self) -> bytes:
        return sk.energy_account_key(self.org)


@stored("energy_position")
class Position(Described):
    """An account in one interval: produced, consumed, offered, sold, bought, orders placed."""

    org: str = field(metadata=wire(ORG_ID))
    interval_start_ms: int
    produced_wh: int
    consumed_wh: int
    offered_wh: int
    sold_wh: int
    bought_wh: int
    orders: int

    @classmethod
    def empty(cls, org_id: str, interval_start_ms: int) -> Position:
        return cls(org_id, interval_start_ms, 0, 0, 0, 0, 0, 0)

    @property
    def key(self) -> bytes:
        return sk.energy_position_key(self.org, self.interval_start_ms)

    def surplus_wh(self) -> int:
        """What the account may sell in the interval: own production left after own use."""
        return max(0, self.produced_wh - self.consumed_wh)

    def available_wh(self) -> int:
        """Surplus not yet offered or sold."""
        return self.surplus_wh() - (self.offered_wh + self.sold_wh)


@stored("energy_order")
class Order(Described):
    """An offer or bid; ``reserved`` is what placing it locked (Wh or money)."""

    id: str = field(metadata=wire(ORDER_ID))
    interval_start_ms: int
    side: str
    account: str = field(metadata=wire(ORG_ID))
    placed_by: bytes = field(metadata=wire(PUBLIC_KEY))
    quantity_wh: int
    price_per_kwh: int
    reserved: int
    seq: int
    status: str
    filled_wh: int
    amount: int

    @property
    def key(self) -> bytes:
        return sk.order_key(self.id)


@stored("clearing")
class Clearing(Described):
    """The outcome of settling an interval."""

    price_per_kwh: int
    volume_wh: int
    trade_count: int
    settled_height: int
    settled_time_ms: int


@stored("market")
class MarketBook(Described):
    """An interval's order ids in placement order, and its clearing once settled."""

    interval_start_ms: int
    status: str
    orders: tuple[str, ...] = field(metadata=wire(List(ORDER_ID, max_len=MAX_ORDERS_PER_INTERVAL)))
    clearing: Clearing | None = field(metadata=wire(Optional(Nested(Clearing))))

    @classmethod
    def empty(cls, interval_start_ms: int) -> MarketBook:
        return cls(interval_start_ms, "open", (), None)

    @property
    def key(self) -> bytes:
        return sk.market_key(self.interval_start_ms)


@stored("trade")
class Trade(Described):
    """Trade ``n`` of an interval: who sold to whom, how much, at what price and amount."""

    interval_start_ms: int
    n: int
    seller: str = field(metadata=wire(ORG_ID))
    buyer: str = field(metadata=wire(ORG_ID))
    offer_id: str = field(metadata=wire(ORDER_ID))
    bid_id: str = field(metadata=wire(ORDER_ID))
    quantity_wh: int
    price_per_kwh: int
    amount: int

    @property
    def key(self) -> bytes:
        return sk.trade_key(self.interval_start_ms, self.n)


def load_meter(ctx: TxContext, meter_key: bytes) -> Meter:
    return ctx.require_record(sk.meter_key(meter_key), Meter, "meter", meter_key.hex())


def load_account(ctx: TxContext, org_id: str) -> Account:
    account = ctx.record(sk.energy_account_key(org_id), Account)
    return Account.empty(org_id) if account is None else account


def load_position(ctx: TxContext, org_id: str, interval_start_ms: int) -> Position:
    position = ctx.record(sk.energy_position_key(org_id, interval_start_ms), Position)
    return Position.empty(org_id, interval_start_ms) if position is None else position


def load_order(ctx: TxContext, order_id: str) -> Order:
    return ctx.require_record(sk.order_key(order_id), Order, "order", order_id)


def load_market(ctx: TxContext, interval_start_ms: int) -> MarketBook:
    book = ctx.record(sk.market_key(interval_start_ms), MarketBook)
    return MarketBook.empty(interval_start_ms) if book is None else book
