"""Property tests of energy over random and hostile sequences (invariants in docs/contracts.md):
money conserved, Wh conserved by settlement, no negative or over-cap amount, nothing sold
beyond what was produced and not consumed, positions equal to their readings,
reservations equal to open orders, every trade within both limits; every block checked
for determinism and failure isolation (:mod:`.properties_kit`); and identity's one key
space (no key is ever both a member and a meter)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hypothesis import event, given
from hypothesis import strategies as st

from contracts import state_keys as sk
from contracts.energy import MAX_AMOUNT, MAX_ORDERS_PER_ACCOUNT, sign_reading
from ledger.crypto import PrivateKey
from ledger.encoding import Value, decode

from .harness import CHAIN_ID, INTERVAL, Chain, key, member_key, new_org
from .properties_kit import DAY, examples, run_block

# --- energy ------------------------------------------------------------------------------------

REGULATOR = member_key("energy", "regulator")
ORGS = ("solar-1", "solar-2", "solar-3")
OWNERS = {org: member_key(org, "owner") for org in ORGS}
METERS: dict[str, list[PrivateKey]] = {
    "solar-1": [key("prop/meter/solar-1/a"), key("prop/meter/solar-1/b")],
    "solar-2": [key("prop/meter/solar-2/a")],
    "solar-3": [key("prop/meter/solar-3/a")],
}
METER_OWNER = {m.public_key: org for org, ms in METERS.items() for m in ms}
CAP_WH = 250_000  # default max_meter_power_w (1 MW) over 15 minutes
START_MONEY = 100_000

hostile_wh = st.sampled_from([0, 1, 7, CAP_WH, CAP_WH + 1, 10**12])
hostile_qty = st.sampled_from([1, 6, 10, 333, 10**12])
hostile_price = st.sampled_from([0, 1, 99, 151, 10**9])
org_st = st.sampled_from(ORGS)
slot = st.integers(-2, 4)  # -2: 1970; -1: before the meters; 0..4: around now
near = st.integers(0, 3)  # slots 0..2 have ended when the sequence starts
market_slot = st.integers(0, 1)  # where the prelude's readings give most sellers a surplus

offer_st = st.tuples(
    st.just("offer"), org_st, market_slot, st.integers(10, 3000), st.integers(80, 200)
)
bid_st = st.tuples(st.just("bid"), org_st, market_slot, st.integers(10, 8000), st.integers(80, 220))
energy_op = st.one_of(
    # plausible activity (weighted), so that markets fill and settle ...
    offer_st,
    bid_st,
    offer_st,
    bid_st,
    st.tuples(
        st.just("read"),
        org_st,
        st.integers(0, 1),
        near,
        st.integers(0, 20_000),
        st.integers(0, 8000),
        st.just(False),
    ),
    # ... and hostile: backdated, implausible, forged, tiny, free, others' orders
    st.tuples(
        st.just("read"), org_st, st.integers(0, 1), slot, hostile_wh, hostile_wh, st.booleans()
    ),
    st.tuples(st.just("offer"), org_st, slot, hostile_qty, hostile_price),
    st.tuples(st.just("bid"), org_st, slot, hostile_qty, hostile_price),
    st.tuples(st.just("cancel"), org_st, st.integers(0, 40), st.booleans()),
    st.tuples(st.just("settle"), st.sampled_from([*ORGS, "regulator"]), st.sampled_from([-2, 4])),
    st.tuples(st.just("credit"), org_st, st.sampled_from([1, 5000, 10**15])),
)
# every account reads both market slots first (meter 0), with drawn amounts
prelude = st.tuples(
    *[
        st.tuples(
            st.just("read"),
            st.just(org),
            st.just(0),
            st.just(n),
            st.integers(3000, 20_000),
            st.integers(0, 3000),
            st.just(False),
        )
        for org in ORGS
        for n in (0, 1)
    ]
).map(list)


def energy_world() -> tuple[Chain, int, int]:
    """Meters commissioned a day ago, money credited; returns the chain, slot 0's start and
    the commissioning time."""
    chain = Chain()
    commissioned = chain.time_ms - DAY
    txs = []
    for org, meters in METERS.items():
        for i, meter in enumerate(meters):
            body: dict[str, Value] = {
                "meter_key": meter.public_key,
                "owner": org,
                "name": f"{org} meter {i}",
                "active_from_ms": commissioned,
            }
            txs.append((REGULATOR, "energy.register_meter", body))
        credit = {"account": org, "amount": START_MONEY, "reference": "start"}
        txs.append((REGULATOR, "energy.credit_balance", credit))
    assert all(r.ok for r in chain.block(chain.batch(txs)).receipts)
    base = (chain.time_ms // INTERVAL - 3) * INTERVAL
    return chain, base, commissioned


def slot_start(base: int, n: int) -> int:
    if n == -2:
        return 0
    if n == -1:
        return base - 200 * INTERVAL  # two days before: before the meters' commissioning
    return base + n * INTERVAL


def records(chain: Chain, prefix: bytes, parts: int) -> list[dict[str, Any]]:
    out = []
    for k, v in chain.state.data.items():
        if k.startswith(prefix) and len(k.split(b"/")) == parts:
            record = decode(v)
            assert isinstance(record, dict)
            out.append(record)
    return out


@dataclass
class EnergyLedger:
    """What the test knows from receipts alone: money credited, readings accepted."""

    credited: int = START_MONEY * len(ORGS)
    readings: dict[tuple[str, int], list[tuple[int, int]]] = field(default_factory=dict)
    orders: list[tuple[str, str]] = field(default_factory=list)  # (order id, owner org)


def check_energy(chain: Chain, book: EnergyLedger) -> None:
    accounts = records(chain, b"energy/account/", 3)
    positions = records(chain, b"energy/account/", 5)
    orders = records(chain, b"energy/order/", 3)
    trades = records(chain, b"energy/trade/", 4)
    # money: conserved; nothing negative or above the cap
    assert sum(a["balance"] + a["reserved_balance"] for a in accounts) == book.credited
    for record in accounts + positions:
        for name, value in record.items():
            if isinstance(value, int) and name != "interval_start_ms":
                assert 0 <= value <= MAX_AMOUNT, (name, value)
    # Wh: what was sold was bought, trade by trade
    traded = sum(t["quantity_wh"] for t in trades)
    assert sum(p["sold_wh"] for p in positions) == traded == sum(p["bought_wh"] for p in positions)
    assert sum(a["sold_wh"] for a in accounts) == traded == sum(a["bought_wh"] for a in accounts)
    open_offers: dict[tuple[str, int], int] = {}
    open_bids: dict[str, int] = {}
    placed: dict[tuple[str, int], int] = {}
    for o in orders:
        slot_key = (o["account"], o["interval_start_ms"])
        placed[slot_key] = placed.get(slot_key, 0) + 1
        if o["status"] == "open":
            if o["side"] == "offer":
                open_offers[slot_key] = open_offers.get(slot_key, 0) + o["quantity_wh"]
            else:
                open_bids[o["account"]] = open_bids.get(o["account"], 0) + o["reserved"]
    for p in positions:
        slot_key = (p["org"], p["interval_start_ms"])
        # no energy from nothing: the position is exactly its accepted readings
        behind = book.readings.get(slot_key, [])
        assert p["produced_wh"] == sum(r[0] for r in behind)
        assert p["consumed_wh"] == sum(r[1] for r in behind)
        # no energy sold twice: never more offered or sold than produced and not consumed
        committed = p["offered_wh"] + p["sold_wh"]
        assert committed <= max(0, p["produced_wh"] - p["consumed_wh"]), p
        assert p["offered_wh"] == open_offers.get(slot_key, 0)
        assert p["orders"] == placed.get(slot_key, 0) <= MAX_ORDERS_PER_ACCOUNT
    for a in accounts:
        assert a["reserved_balance"] == open_bids.get(a["org"], 0)
    # every trade within both limits, and worth at least a minor unit
    by_id = {o["id"]: o for o in orders}
    for t in trades:
        offer, bid = by_id[t["offer_id"]], by_id[t["bid_id"]]
        q, amount = t["quantity_wh"], t["amount"]
        assert amount >= 1 and amount * 1000 >= q * offer["price_per_kwh"]
        assert amount * 1000 <= q * bid["price_per_kwh"]
        assert offer["price_per_kwh"] <= t["price_per_kwh"] <= bid["price_per_kwh"]
    for market in records(chain, b"energy/market/", 3):
        assert len(market["orders"]) <= 500


def energy_tx(
    op: tuple[Any, ...], base: int, book: EnergyLedger
) -> tuple[PrivateKey, str, dict[str, Value]] | None:
    kind = op[0]
    if kind == "read":
        _, org, m, n, produced, consumed, forged = op
        meter = METERS[org][m % len(METERS[org])]
        start = slot_start(base, n)
        signer = METERS["solar-2"][0] if forged and org != "solar-2" else meter
        body: dict[str, Value] = {
            "meter_key": meter.public_key,
            "interval_start_ms": start,
            "produced_wh": produced,
            "consumed_wh": consumed,
            "signature": sign_reading(signer, CHAIN_ID, start, produced, consumed),
        }
        return OWNERS[org], "energy.submit_reading", body
    if kind in ("offer", "bid"):
        _, org, n, quantity, limit = op
        body = {
            "interval_start_ms": slot_start(base, n),
            "side": kind,
            "quantity_wh": min(quantity, 10**12),
            "price_per_kwh": limit,
        }
        return OWNERS[org], "energy.place_order", body
    if kind == "cancel":
        _, org, n, by_owner = op
        if not book.orders:
            return None
        order_id, owner = book.orders[n % len(book.orders)]
        return OWNERS[owner if by_owner else org], "energy.cancel_order", {"order_id": order_id}
    if kind == "settle":
        _, who, n = op
        signer = REGULATOR if who == "regulator" else OWNERS[who]
        return signer, "energy.settle", {"interval_start_ms": slot_start(base, n)}
    _, org, amount = op
    return REGULATOR, "energy.credit_balance", {"account": org, "amount": amount, "reference": "p"}


@examples(60)
@given(
    prelude,
    st.lists(
        st.tuples(st.lists(energy_op, min_size=2, max_size=10), st.integers(0, 40)),
        min_size=1,
        max_size=6,
    ),
    st.randoms(use_true_random=False),
)
def test_energy_invariants_over_hostile_sequences(
    first: list[tuple[Any, ...]], blocks: list[tuple[list[tuple[Any, ...]], int]], rnd: Any
) -> None:
    chain, base, commissioned = energy_world()
    book = EnergyLedger()
    time_ms = chain.time_ms
    # readings first, trading and hostile blocks, then everything that ended is settled
    closing = [("settle", "regulator", n) for n in range(5)]
    for ops, minutes in [(first, 0), *blocks, (closing, 90)]:
        items = [t for t in (energy_tx(op, base, book) for op in ops) if t is not None]
        rnd.shuffle(items)  # any order of arrival; nonces numbered per sender
        txs = chain.batch(items)
        time_ms += minutes * 60_000 + 1000
        receipts = run_block(chain, txs, time_ms)
        for tx, r in zip(txs, receipts, strict=True):
            assert r.code not in ("forbidden_role", "unknown_sender", "bad_nonce"), r.message
            if not r.ok:
                continue
            if tx.kind == "energy.place_order":
                book.orders.append((r.events[0].attrs["order"], r.events[0].attrs["account"]))
            elif tx.kind == "energy.credit_balance":
                book.credited += int(tx.payload["amount"])  # type: ignore[index,call-overload]
            elif tx.kind == "energy.submit_reading":
                p = tx.payload
                assert isinstance(p, dict)
                start, produced, consumed = (
                    p["interval_start_ms"],
                    p["produced_wh"],
                    p["consumed_wh"],
                )
                assert isinstance(start, int) and isinstance(produced, int)
                assert isinstance(consumed, int) and isinstance(p["meter_key"], bytes)
                # accepted only inside the meter's life and window, within the cap
                assert start >= commissioned and start >= time_ms - 7 * DAY
                assert start + INTERVAL <= time_ms
                assert produced <= CAP_WH and consumed <= CAP_WH
                slot_key = (METER_OWNER[p["meter_key"]], start)
                book.readings.setdefault(slot_key, []).append((produced, consumed))
        check_energy(chain, book)
    trades = len(records(chain, b"energy/trade/", 4))
    event(f"energy: trades {'0' if not trades else '1-4' if trades < 5 else '5+'}")
    event(f"energy: accepted readings {min(len(book.readings), 3)}+")


# --- identity: one key space -------------------------------------------------------------------

POOL = [key(f"prop/pool/{i}") for i in range(4)]
id_op = st.one_of(
    st.tuples(st.just("member"), st.integers(0, 3)),
    st.tuples(st.just("org"), st.integers(0, 3), st.integers(0, 99)),
    st.tuples(st.just("meter"), st.integers(0, 3)),
)


@examples(40)
@given(st.lists(id_op, max_size=10))
def test_no_key_is_both_a_member_and_a_meter(ops: list[tuple[Any, ...]]) -> None:
    chain = Chain()
    for op in ops:
        pk = POOL[op[1]].public_key
        if op[0] == "member":
            body: dict[str, Value] = {"public_key": pk, "name": "m", "roles": ["trader"]}
            chain.send(member_key("importer", "admin"), "identity.register_member", body)
        elif op[0] == "org":
            body = new_org(f"org-{op[2]}", "O", "trader", POOL[op[1]], "a", ["admin"])
            chain.send(member_key("customs", "admin"), "identity.register_org", body)
        else:
            body = {"meter_key": pk, "owner": "solar-1", "name": "m"}
            chain.send(REGULATOR, "energy.register_meter", body)
        for k in POOL:
            is_member = chain.state.get(sk.member_key(k.public_key)) is not None
            is_meter = chain.state.get(sk.meter_key(k.public_key)) is not None
            assert not (is_member and is_meter)
