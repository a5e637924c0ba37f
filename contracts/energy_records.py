"""Energy records as stored (keys in :mod:`contracts.state_keys`): meters and their
readings, accounts and their per-interval positions, orders, an interval's market
book, and trades.

Handlers read and write them through the ``load_*`` / ``save_*`` functions here;
an account or position never written reads as all zero.
"""

from __future__ import annotations

from dataclasses import dataclass

from contracts import state_keys as sk
from contracts.context import TxContext
from contracts.record import Natural, Record


@dataclass(frozen=True, slots=True)
class Meter(Record):
    """A meter's own key, its owner, its life (active from, revoked) and reading count."""

    record_type = "meter"
    meter_key: bytes
    owner: str
    name: str
    status: str
    registered_height: Natural
    active_from_ms: Natural
    revoked_reason: str
    readings: Natural

    @property
    def key(self) -> bytes:
        return sk.meter_key(self.meter_key)


@dataclass(frozen=True, slots=True)
class MeterReading(Record):
    """One signed reading of one meter for one interval."""

    record_type = "meter_reading"
    meter_key: bytes
    interval_start_ms: Natural
    produced_wh: Natural
    consumed_wh: Natural
    signature: bytes
    height: Natural
    tx_hash: bytes


@dataclass(frozen=True, slots=True)
class Account(Record):
    """An organisation's money (available and reserved, minor units) and energy totals."""

    record_type = "energy_account"
    org: str
    balance: Natural
    reserved_balance: Natural
    produced_wh: Natural
    consumed_wh: Natural
    sold_wh: Natural
    bought_wh: Natural

    @classmethod
    def empty(cls, org_id: str) -> Account:
        return cls(org_id, 0, 0, 0, 0, 0, 0)

    @property
    def key(self) -> bytes:
        return sk.energy_account_key(self.org)


@dataclass(frozen=True, slots=True)
class Position(Record):
    """An account in one interval: produced, consumed, offered, sold, bought, orders placed."""

    record_type = "energy_position"
    org: str
    interval_start_ms: Natural
    produced_wh: Natural
    consumed_wh: Natural
    offered_wh: Natural
    sold_wh: Natural
    bought_wh: Natural
    orders: Natural

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


@dataclass(frozen=True, slots=True)
class Order(Record):
    """An offer or bid; ``reserved`` is what placing it locked (Wh or money)."""

    record_type = "energy_order"
    id: str
    interval_start_ms: Natural
    side: str
    account: str
    placed_by: bytes
    quantity_wh: Natural
    price_per_kwh: Natural
    reserved: Natural
    seq: Natural
    status: str
    filled_wh: Natural
    amount: Natural

    @property
    def key(self) -> bytes:
        return sk.order_key(self.id)


@dataclass(frozen=True, slots=True)
class Clearing(Record):
    """The outcome of settling an interval."""

    record_type = "clearing"
    price_per_kwh: Natural
    volume_wh: Natural
    trade_count: Natural
    settled_height: Natural
    settled_time_ms: Natural


@dataclass(frozen=True, slots=True)
class MarketBook(Record):
    """An interval's order ids in placement order, and its clearing once settled."""

    record_type = "market"
    interval_start_ms: Natural
    status: str
    orders: tuple[str, ...]
    clearing: Clearing | None

    @classmethod
    def empty(cls, interval_start_ms: int) -> MarketBook:
        return cls(interval_start_ms, "open", (), None)

    @property
    def key(self) -> bytes:
        return sk.market_key(self.interval_start_ms)


@dataclass(frozen=True, slots=True)
class Trade(Record):
    """Trade ``n`` of an interval: who sold to whom, how much, at what price and amount."""

    record_type = "trade"
    interval_start_ms: Natural
    n: Natural
    seller: str
    buyer: str
    offer_id: str
    bid_id: str
    quantity_wh: Natural
    price_per_kwh: Natural
    amount: Natural

    @property
    def key(self) -> bytes:
        return sk.trade_key(self.interval_start_ms, self.n)


def save(ctx: TxContext, record: Meter | Account | Position | Order | MarketBook | Trade) -> None:
    """Store any energy record under its own key."""
    ctx.store(record.key, record.to_obj())


def load_meter(ctx: TxContext, meter_key: bytes) -> Meter:
    return Meter.from_obj(ctx.require(sk.meter_key(meter_key), "meter", meter_key.hex()))


def load_account(ctx: TxContext, org_id: str) -> Account:
    obj = ctx.load(sk.energy_account_key(org_id))
    return Account.empty(org_id) if obj is None else Account.from_obj(obj)


def load_position(ctx: TxContext, org_id: str, interval_start_ms: int) -> Position:
    obj = ctx.load(sk.energy_position_key(org_id, interval_start_ms))
    return Position.empty(org_id, interval_start_ms) if obj is None else Position.from_obj(obj)


def load_order(ctx: TxContext, order_id: str) -> Order:
    return Order.from_obj(ctx.require(sk.order_key(order_id), "order", order_id))


def load_market(ctx: TxContext, interval_start_ms: int) -> MarketBook:
    obj = ctx.load(sk.market_key(interval_start_ms))
    return MarketBook.empty(interval_start_ms) if obj is None else MarketBook.from_obj(obj)
