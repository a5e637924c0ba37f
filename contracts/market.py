"""The uniform-price double auction that clears one energy settlement interval.

Pure and deterministic: it sees only the open orders of the interval.

Clearing rule
    Offers are sorted by price ascending, bids by price descending; equal prices
    keep placement order (earlier first: time priority). Walking both lists, the
    best remaining offer is matched with the best remaining bid while the offer's
    price is at most the bid's, for the smaller of their remaining quantities.
    This trades the largest volume at which supply meets demand. Every match
    then executes at one price: the midpoint of the last (marginal) matched
    offer and bid, rounded down — at or above every matched offer and at or
    below every matched bid, so nobody trades at a price worse than their own.

Money
    An amount is ``quantity_wh * price_per_kwh // 1000`` minor units, rounded
    down per trade; the buyer pays exactly what the seller receives.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class BookOrder:
    id: str
    seq: int
    price_per_kwh: int
    quantity_wh: int


@dataclass(frozen=True, slots=True)
class Match:
    offer_id: str
    bid_id: str
    quantity_wh: int


@dataclass(frozen=True, slots=True)
class Clearing:
    price_per_kwh: int  # 0 when nothing matched
    volume_wh: int
    matches: tuple[Match, ...]


def trade_amount(quantity_wh: int, price_per_kwh: int) -> int:
    """Minor units paid for ``quantity_wh`` at ``price_per_kwh`` (rounded down)."""
    return quantity_wh * price_per_kwh // 1000


def bid_reservation(quantity_wh: int, price_per_kwh: int) -> int:
    """Money a bid locks: the most it can ever pay (rounded up)."""
    return -(-quantity_wh * price_per_kwh // 1000)


def clear(offers: list[BookOrder], bids: list[BookOrder]) -> Clearing:
    """Match ``offers`` against ``bids`` (see the module docstring for the rule)."""
    asks = sorted(offers, key=lambda o: (o.price_per_kwh, o.seq))
    wants = sorted(bids, key=lambda b: (-b.price_per_kwh, b.seq))
    ask_left = [o.quantity_wh for o in asks]
    want_left = [b.quantity_wh for b in wants]
    matches: list[Match] = []
    i = j = 0
    last_ask = last_bid = 0
    while i < len(asks) and j < len(wants) and asks[i].price_per_kwh <= wants[j].price_per_kwh:
        quantity = min(ask_left[i], want_left[j])
        matches.append(Match(asks[i].id, wants[j].id, quantity))
        last_ask, last_bid = asks[i].price_per_kwh, wants[j].price_per_kwh
        ask_left[i] -= quantity
        want_left[j] -= quantity
        if ask_left[i] == 0:
            i += 1
        if want_left[j] == 0:
            j += 1
    if not matches:
        return Clearing(0, 0, ())
    volume = sum(m.quantity_wh for m in matches)
    return Clearing((last_ask + last_bid) // 2, volume, tuple(matches))
