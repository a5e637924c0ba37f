"""The uniform-price double auction that clears one energy settlement interval.

Pure and deterministic: it sees only the open orders of the interval.

Clearing rule
    Offers are sorted by price ascending, bids by price descending; equal prices
    keep placement order (earlier first: time priority). Walking both lists, the
    best remaining offer is matched with the best remaining bid while the offer's
    price is at most the bid's, for the smaller of their remaining quantities.
    Every match then executes at one price: the midpoint of the last (marginal)
    matched offer and bid, rounded down — at or above every matched offer and at
    or below every matched bid.

Money (rounding rule)
    A match of ``q`` Wh between an offer of limit ``a`` and a bid of limit ``b``
    pays ``q * price / 1000`` minor units rounded **up**, but never more than the
    buyer's own limit ``q * b / 1000`` rounded down. That amount is always at least
    ``q * a / 1000``: nobody trades at a price worse than their own, and no energy
    moves for nothing (limits are at least 1). A pair for which no whole amount
    lies between ``q * a / 1000`` and ``q * b / 1000`` cannot be paid fairly: it is
    not matched, and the smaller of the two remainders (both when equal) is left
    unfilled. The buyer pays exactly what the seller receives, and a bid never pays
    more than the ``ceil(quantity * b / 1000)`` it reserved.
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
    amount: int = 0  # minor units the buyer pays the seller (set by clear)


@dataclass(frozen=True, slots=True)
class Clearing:
    price_per_kwh: int  # 0 when nothing matched
    volume_wh: int
    matches: tuple[Match, ...]


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def trade_amount(quantity_wh: int, price_per_kwh: int, bid_limit: int | None = None) -> int:
    """Minor units paid for ``quantity_wh`` at ``price_per_kwh``: rounded up, capped at
    the bid's own limit (rounded down) when ``bid_limit`` is given."""
    amount = ceil_div(quantity_wh * price_per_kwh, 1000)
    if bid_limit is not None:
        amount = min(amount, quantity_wh * bid_limit // 1000)
    return amount


def payable(quantity_wh: int, ask_limit: int, bid_limit: int) -> bool:
    """Whether a whole amount lies between the seller's and the buyer's limit."""
    return ceil_div(quantity_wh * ask_limit, 1000) <= quantity_wh * bid_limit // 1000


def bid_reservation(quantity_wh: int, price_per_kwh: int) -> int:
    """Money a bid locks: the most it can ever pay (rounded up)."""
    return ceil_div(quantity_wh * price_per_kwh, 1000)


def clear(offers: list[BookOrder], bids: list[BookOrder]) -> Clearing:
    """Match ``offers`` against ``bids`` (see the module docstring for the rule)."""
    asks = sorted(offers, key=lambda o: (o.price_per_kwh, o.seq))
    wants = sorted(bids, key=lambda b: (-b.price_per_kwh, b.seq))
    ask_left = [o.quantity_wh for o in asks]
    want_left = [b.quantity_wh for b in wants]
    pairs: list[tuple[int, int, int]] = []  # (ask index, bid index, quantity)
    i = j = 0
    while i < len(asks) and j < len(wants) and asks[i].price_per_kwh <= wants[j].price_per_kwh:
        quantity = min(ask_left[i], want_left[j])
        if payable(quantity, asks[i].price_per_kwh, wants[j].price_per_kwh):
            pairs.append((i, j, quantity))
            ask_left[i] -= quantity
            want_left[j] -= quantity
        else:  # too small to pay fairly: the smaller remainder(s) stay unfilled
            if ask_left[i] == quantity:
                ask_left[i] = 0
            if want_left[j] == quantity:
                want_left[j] = 0
        if ask_left[i] == 0:
            i += 1
        if want_left[j] == 0:
            j += 1
    if not pairs:
        return Clearing(0, 0, ())
    last_i, last_j, _ = pairs[-1]
    price = (asks[last_i].price_per_kwh + wants[last_j].price_per_kwh) // 2
    matches = tuple(
        Match(
            asks[a].id,
            wants[b].id,
            q,
            trade_amount(q, price, wants[b].price_per_kwh),
        )
        for a, b, q in pairs
    )
    return Clearing(price, sum(m.quantity_wh for m in matches), matches)
