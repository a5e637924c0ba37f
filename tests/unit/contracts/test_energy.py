"""Energy: meters, signed readings, interval positions, balances, order book, settlement.

The invariants over random sequences are in ``test_properties_energy.py``.
"""

from __future__ import annotations

from contracts import market, queries
from contracts.energy import reading_message, sign_reading
from ledger.crypto import Purpose
from ledger.encoding import Value

from .harness import CHAIN_ID, INTERVAL, Chain, as_obj, event_types, key, member_key

REGULATOR = member_key("energy", "regulator")
S1, S2, S3 = (member_key(f"solar-{i}", "owner") for i in (1, 2, 3))
ACCOUNTS = {"solar-1": S1, "solar-2": S2, "solar-3": S3}
METERS = {org: key(f"meter/{org}") for org in ACCOUNTS}
CARRIER = member_key("carrier-a", "ops")
DAY = 86_400_000


def interval(chain: Chain, back: int = 4) -> int:
    """Start of an interval that ended ``back``-1 intervals before the chain's time."""
    return (chain.time_ms // INTERVAL - back) * INTERVAL


def with_meters(chain: Chain | None = None) -> Chain:
    """Each prosumer's meter, commissioned a day before the chain's time."""
    chain = chain or Chain()
    for org, meter in METERS.items():
        chain.ok(
            REGULATOR,
            "energy.register_meter",
            {
                "meter_key": meter.public_key,
                "owner": org,
                "name": f"{org} roof PV",
                "active_from_ms": chain.time_ms - DAY,
            },
        )
    return chain


def reading(org: str, start: int, produced: int, consumed: int = 0) -> dict[str, Value]:
    meter = METERS[org]
    return {
        "meter_key": meter.public_key,
        "interval_start_ms": start,
        "produced_wh": produced,
        "consumed_wh": consumed,
        "signature": sign_reading(meter, CHAIN_ID, start, produced, consumed),
    }


def funded(
    chain: Chain | None = None, wh: int = 10_000, money: int = 100_000, back: int = 4
) -> Chain:
    """Every prosumer read ``wh`` produced and 500 consumed in ``interval(chain, back)``
    (so its surplus there is ``wh - 500``) and holds ``money``."""
    chain = with_meters(chain)
    start = interval(chain, back)
    for org, signer in ACCOUNTS.items():
        chain.ok(signer, "energy.submit_reading", reading(org, start, wh, 500))
        chain.ok(
            REGULATOR,
            "energy.credit_balance",
            {"account": org, "amount": money, "reference": f"prepay {org}"},
        )
    return chain


def order(start: int, side: str, qty: int, price: int) -> dict[str, Value]:
    return {"interval_start_ms": start, "side": side, "quantity_wh": qty, "price_per_kwh": price}


# --- meters and readings -----------------------------------------------------------------------


def test_register_and_revoke_meter() -> None:
    chain = Chain()
    meter = METERS["solar-1"]
    r = chain.ok(
        REGULATOR,
        "energy.register_meter",
        {"meter_key": meter.public_key, "owner": "solar-1", "name": "roof"},
    )
    assert event_types(r) == ["energy.meter_registered"]
    m = as_obj(queries.get_meter(chain.state, meter.public_key))
    assert m is not None and m["owner"] == "solar-1" and m["status"] == "active"
    payload = {"meter_key": meter.public_key, "owner": "solar-1", "name": "roof"}
    chain.fails("duplicate", REGULATOR, "energy.register_meter", payload)
    chain.fails(
        "duplicate", REGULATOR, "energy.register_meter", {**payload, "meter_key": S2.public_key}
    )  # a member key
    chain.fails(
        "wrong_state",
        REGULATOR,
        "energy.register_meter",
        {**payload, "meter_key": key("m2").public_key, "owner": "exporter"},
    )
    chain.fails(
        "not_found",
        REGULATOR,
        "energy.register_meter",
        {**payload, "meter_key": key("m2").public_key, "owner": "nobody"},
    )
    chain.fails(
        "forbidden_role",
        S1,
        "energy.register_meter",
        {**payload, "meter_key": key("m2").public_key},
    )
    chain.fails("bad_payload", REGULATOR, "energy.register_meter", {**payload, "meter_key": b"x"})
    r = chain.ok(
        REGULATOR, "energy.revoke_meter", {"meter_key": meter.public_key, "reason": "tampered"}
    )
    assert event_types(r) == ["energy.meter_revoked"]
    chain.fails(
        "wrong_state",
        REGULATOR,
        "energy.revoke_meter",
        {"meter_key": meter.public_key, "reason": "again"},
    )
    chain.fails(
        "not_found",
        REGULATOR,
        "energy.revoke_meter",
        {"meter_key": key("zz").public_key, "reason": "x"},
    )
    chain.fails(
        "meter_revoked", S1, "energy.submit_reading", reading("solar-1", interval(chain), 100)
    )


def test_reading_records_the_interval_position() -> None:
    chain = with_meters()
    start = interval(chain)
    r = chain.ok(S1, "energy.submit_reading", reading("solar-1", start, 2500, 700))
    assert r.events[0].attrs == {
        "meter": METERS["solar-1"].public_key,
        "owner": "solar-1",
        "interval_start_ms": start,
        "produced_wh": 2500,
        "consumed_wh": 700,
    }
    acct = as_obj(queries.get_energy_account(chain.state, "solar-1"))
    assert (acct["produced_wh"], acct["consumed_wh"]) == (2500, 700)
    pos = as_obj(queries.get_energy_position(chain.state, "solar-1", start))
    assert (pos["produced_wh"], pos["consumed_wh"], pos["offered_wh"]) == (2500, 700, 0)
    stored = as_obj(queries.get_meter_reading(chain.state, METERS["solar-1"].public_key, start))
    assert stored is not None and stored["produced_wh"] == 2500


def test_reading_rejections() -> None:
    chain = with_meters()
    start = interval(chain)
    good = reading("solar-1", start, 100)
    chain.fails("forbidden", S2, "energy.submit_reading", good)  # not the owner
    chain.fails("forbidden_role", REGULATOR, "energy.submit_reading", good)
    chain.fails("bad_meter_signature", S1, "energy.submit_reading", {**good, "produced_wh": 101})
    other_chain = METERS["solar-1"].sign(
        Purpose.METER_READING,
        "other-chain",
        reading_message(METERS["solar-1"].public_key, start, 100, 0),
    )
    chain.fails(
        "bad_meter_signature", S1, "energy.submit_reading", {**good, "signature": other_chain}
    )
    wrong_purpose = METERS["solar-1"].sign(
        Purpose.TRANSACTION, CHAIN_ID, reading_message(METERS["solar-1"].public_key, start, 100, 0)
    )
    chain.fails(
        "bad_meter_signature", S1, "energy.submit_reading", {**good, "signature": wrong_purpose}
    )
    signed_by_owner = {
        **good,
        "signature": S1.sign(
            Purpose.METER_READING,
            CHAIN_ID,
            reading_message(METERS["solar-1"].public_key, start, 100, 0),
        ),
    }
    chain.fails("bad_meter_signature", S1, "energy.submit_reading", signed_by_owner)
    chain.fails(
        "not_found",
        S1,
        "energy.submit_reading",
        {**good, "meter_key": key("unknown-meter").public_key},
    )
    chain.fails(
        "bad_payload", S1, "energy.submit_reading", {**good, "interval_start_ms": start + 1}
    )
    chain.fails("bad_payload", S1, "energy.submit_reading", {**good, "produced_wh": -1})
    current = chain.time_ms - chain.time_ms % INTERVAL + INTERVAL  # not ended at the next block
    chain.fails("interval_open", S1, "energy.submit_reading", reading("solar-1", current, 5))
    chain.ok(S1, "energy.submit_reading", good)
    chain.fails("duplicate", S1, "energy.submit_reading", good)


def test_credit_balance() -> None:
    chain = Chain()
    r = chain.ok(
        REGULATOR,
        "energy.credit_balance",
        {"account": "solar-2", "amount": 50_000, "reference": "top-up 2024-01"},
    )
    assert event_types(r) == ["energy.balance_credited"]
    assert as_obj(queries.get_energy_account(chain.state, "solar-2"))["balance"] == 50_000
    payload = {"account": "solar-2", "amount": 1, "reference": "x"}
    chain.fails("forbidden_role", S1, "energy.credit_balance", payload)
    chain.fails("bad_payload", REGULATOR, "energy.credit_balance", {**payload, "amount": 0})
    chain.fails("wrong_state", REGULATOR, "energy.credit_balance", {**payload, "account": "port"})
    chain.fails("not_found", REGULATOR, "energy.credit_balance", {**payload, "account": "nobody"})


# --- orders and settlement ---------------------------------------------------------------------


def test_place_and_cancel_reserve_and_release() -> None:
    chain = funded()
    start = interval(chain)
    r = chain.ok(S1, "energy.place_order", order(start, "offer", 4000, 150))
    order_id = r.events[0].attrs["order"]
    assert order_id == chain.outcomes[-1].receipts[0].tx_hash.hex()
    pos = as_obj(queries.get_energy_position(chain.state, "solar-1", start))
    assert (pos["offered_wh"], pos["orders"]) == (4000, 1)
    chain.ok(S2, "energy.place_order", order(start, "bid", 3001, 200))
    acct = as_obj(queries.get_energy_account(chain.state, "solar-2"))
    assert (acct["balance"], acct["reserved_balance"]) == (100_000 - 601, 601)  # ceil(600.2)
    chain.fails("forbidden", S2, "energy.cancel_order", {"order_id": order_id})
    r = chain.ok(S1, "energy.cancel_order", {"order_id": order_id})
    assert event_types(r) == ["energy.order_cancelled"]
    pos = as_obj(queries.get_energy_position(chain.state, "solar-1", start))
    assert (pos["offered_wh"], pos["orders"]) == (0, 1)  # a cancelled order still counts
    chain.fails("wrong_state", S1, "energy.cancel_order", {"order_id": order_id})
    chain.fails("not_found", S1, "energy.cancel_order", {"order_id": "0" * 64})
    chain.fails("bad_payload", S1, "energy.cancel_order", {"order_id": "xyz"})
    book = as_obj(queries.get_market(chain.state, start))
    assert [o["status"] for o in book["offers"]] == ["cancelled"] and len(book["bids"]) == 1


def test_place_order_rejections() -> None:
    chain = funded()
    start = interval(chain)
    # surplus 10 000 - 500: no more may be offered, and nothing in another interval
    chain.fails("insufficient_balance", S1, "energy.place_order", order(start, "offer", 9501, 1))
    chain.fails(
        "insufficient_balance", S1, "energy.place_order", order(start - INTERVAL, "offer", 10, 100)
    )
    chain.fails(
        "insufficient_balance", S1, "energy.place_order", order(start, "bid", 1_000_000, 101)
    )  # 101 000 > 100 000
    chain.fails("forbidden_role", REGULATOR, "energy.place_order", order(start, "bid", 10, 100))
    chain.fails("bad_payload", S1, "energy.place_order", order(start, "swap", 10, 100))
    chain.fails("bad_payload", S1, "energy.place_order", order(start, "bid", 0, 100))
    chain.fails("bad_payload", S1, "energy.place_order", order(start, "bid", 10, 0))
    chain.fails("bad_payload", S1, "energy.place_order", order(start, "bid", 9, 111))  # < 1 unit
    chain.fails("bad_payload", S1, "energy.place_order", order(start + 7, "bid", 10, 100))
    chain.ok(REGULATOR, "energy.settle", {"interval_start_ms": start})
    chain.fails("wrong_state", S1, "energy.place_order", order(start, "bid", 10, 100))


def test_settlement_uniform_price_and_transfers() -> None:
    chain = funded()
    start = interval(chain)
    chain.block(
        chain.batch(
            [
                (S1, "energy.place_order", order(start, "offer", 3000, 100)),
                (S2, "energy.place_order", order(start, "offer", 3000, 140)),
                (S3, "energy.place_order", order(start, "bid", 4000, 180)),
                (S3, "energy.place_order", order(start, "bid", 2000, 120)),
                (S1, "energy.place_order", order(start, "bid", 1000, 90)),
            ]
        )
    )
    assert all(r.ok for r in chain.outcomes[-1].receipts)
    r = chain.ok(S2, "energy.settle", {"interval_start_ms": start})
    # matches: S1 offer@100 x S3 bid@180 3000; S2 offer@140 x S3 bid@180 1000; then 140 > 120 stops
    assert r.events[0].attrs == {
        "interval_start_ms": start,
        "price_per_kwh": 160,
        "volume_wh": 4000,
        "trades": 2,
    }
    book = as_obj(queries.get_market(chain.state, start))
    assert book["status"] == "settled" and book["clearing"]["price_per_kwh"] == 160
    assert [(t["seller"], t["buyer"], t["quantity_wh"], t["amount"]) for t in book["trades"]] == [
        ("solar-1", "solar-3", 3000, 480),
        ("solar-2", "solar-3", 1000, 160),
    ]
    a1, a2, a3 = (
        as_obj(queries.get_energy_account(chain.state, o))
        for o in ("solar-1", "solar-2", "solar-3")
    )
    assert (a1["sold_wh"], a1["balance"], a1["reserved_balance"]) == (3000, 100_480, 0)
    assert (a2["sold_wh"], a2["balance"]) == (1000, 100_160)
    assert (a3["bought_wh"], a3["balance"], a3["reserved_balance"]) == (4000, 100_000 - 640, 0)
    p1, p2, p3 = (
        as_obj(queries.get_energy_position(chain.state, o, start))
        for o in ("solar-1", "solar-2", "solar-3")
    )
    assert (p1["offered_wh"], p1["sold_wh"], p2["sold_wh"], p3["bought_wh"]) == (
        0,
        3000,
        1000,
        4000,
    )
    assert [o["filled_wh"] for o in book["offers"]] == [3000, 1000]
    assert all(o["status"] == "settled" for o in book["offers"] + book["bids"])
    trades = as_obj(queries.trades_by_account(chain.state, chain.index, "solar-3", start))
    assert [t["n"] for t in trades] == [0, 1]
    assert [t.n for t in queries.trades_by_account(chain.state, chain.index, "solar-1")] == [0]
    assert queries.trades_by_account(chain.state, chain.index, "solar-1", start + INTERVAL) == []
    chain.fails("wrong_state", S1, "energy.settle", {"interval_start_ms": start})
    chain.fails("wrong_state", S3, "energy.cancel_order", {"order_id": book["bids"][0]["id"]})


def test_settle_rejections_and_empty_interval() -> None:
    chain = funded()
    now_interval = chain.time_ms - chain.time_ms % INTERVAL
    chain.fails("interval_open", REGULATOR, "energy.settle", {"interval_start_ms": now_interval})
    # ended, but not yet settlement_delay_ms (15 minutes) ago
    just_ended = now_interval - INTERVAL
    chain.fails("interval_open", REGULATOR, "energy.settle", {"interval_start_ms": just_ended})
    chain.fails("forbidden_role", CARRIER, "energy.settle", {"interval_start_ms": 0})
    chain.fails("bad_payload", REGULATOR, "energy.settle", {"interval_start_ms": 5})
    r = chain.ok(REGULATOR, "energy.settle", {"interval_start_ms": interval(chain, 3)})
    assert r.events[0].attrs["trades"] == 0
    assert as_obj(queries.get_market(chain.state, interval(chain, 3)))["status"] == "settled"


def test_clearing_rule_ties_by_placement_order() -> None:
    o = [market.BookOrder("a", 0, 100, 10), market.BookOrder("b", 1, 100, 10)]
    b = [market.BookOrder("x", 2, 200, 15)]
    result = market.clear(o, b)
    assert [(m.offer_id, m.bid_id, m.quantity_wh) for m in result.matches] == [
        ("a", "x", 10),
        ("b", "x", 5),
    ]
    assert result.price_per_kwh == 150
    assert market.clear(o, [market.BookOrder("y", 3, 99, 5)]).matches == ()
    assert market.bid_reservation(1, 1) == 1 and market.trade_amount(1, 999) == 1  # rounded up
    assert market.trade_amount(1, 999, bid_limit=999) == 0 and not market.payable(1, 999, 999)
