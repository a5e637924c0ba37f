"""Property tests: the invariants a city relies on, over random and hostile sequences.

Each test drives the contract engine in-process (``execute_block`` through the
:class:`~tests.unit.contracts.harness.Chain`) with sequences hypothesis draws, and
checks after every block:

* energy — money conserved (only crediting adds), Wh conserved by settlement (sold =
  bought = traded), no negative or over-cap amount, no interval position that sold or
  offered more than it produced and did not consume, positions equal to the readings
  behind them, reservations equal to the open orders, every trade paid within both
  limits and at least one minor unit, the per-account and per-book order caps;
* every block — determinism (executed twice on the same state: byte-identical
  receipts and changes, the same state root) and failure isolation (run one
  transaction at a time, each refused transaction changes nothing but its nonce and
  the block is the composition of its transactions);
* permits — the state machine against an independent model written from the tables
  of ``docs/contracts.md``;
* shipments — custody, party confirmation, customs transitions and the licence gates
  at clear, release and deliver against an independent model of the same document;
* identity — one key space: no key is ever both a member and a meter.

Example counts are modest in ``make test``; ``make properties EXAMPLES=N`` runs each
with N examples (``CITYLEDGER_PROPERTY_EXAMPLES``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from contracts import queries
from contracts import state_keys as sk
from contracts.energy import MAX_AMOUNT, MAX_ORDERS_PER_ACCOUNT, sign_reading
from contracts.engine import execute_block
from ledger.block import Receipt
from ledger.crypto import PrivateKey
from ledger.encoding import Value, decode
from ledger.state import StateTree
from ledger.storage import MemoryStore, WriteBatch
from ledger.tx import Transaction

from .harness import CHAIN_ID, INTERVAL, Chain, DictState, key, make_genesis, member_key

DAY = 86_400_000
F = TypeVar("F", bound=Callable[..., Any])


def examples(default: int) -> Callable[[F], F]:
    """``settings`` with ``default`` examples, or ``CITYLEDGER_PROPERTY_EXAMPLES`` if set."""
    count = int(os.environ.get("CITYLEDGER_PROPERTY_EXAMPLES") or default)
    return settings(
        max_examples=count,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


# --- every block: determinism and failure isolation -------------------------------------------


def state_root(data: dict[bytes, bytes]) -> bytes:
    return StateTree(MemoryStore()).apply(dict(data), WriteBatch())


def run_block(chain: Chain, txs: list[Transaction], time_ms: int) -> list[Receipt]:
    """Execute ``txs`` as the chain's next block, after checking on copies of the state that
    a second execution is identical (same receipts, changes and state root) and that one
    transaction at a time gives the same state, each refusal changing only its nonce."""
    height = chain.height + 1
    before = dict(chain.state.data)
    first = execute_block(DictState(before), chain.index, chain.genesis, height, time_ms, txs)
    again = execute_block(DictState(before), chain.index, chain.genesis, height, time_ms, txs)
    assert [r.encode() for r in first.receipts] == [r.encode() for r in again.receipts]
    assert first.state_changes == again.state_changes
    assert first.index_changes == again.index_changes
    one, two = DictState(before), DictState(before)
    one.apply(first.state_changes)
    two.apply(again.state_changes)
    assert state_root(one.data) == state_root(two.data)
    # one at a time
    alone = DictState(before)
    for tx, receipt in zip(txs, first.receipts, strict=True):
        out = execute_block(alone, chain.index, chain.genesis, height, time_ms, [tx])
        assert out.receipts[0].code == receipt.code
        if not receipt.ok:
            assert set(out.state_changes) <= {sk.nonce_key(tx.sender)}, (tx.kind, receipt.code)
            assert out.index_changes == {} and out.receipts[0].events == ()
        alone.apply(out.state_changes)
    assert alone.data == one.data
    outcome = chain.block(txs, time_ms)
    assert outcome.state_changes == first.state_changes
    return outcome.receipts


def send(
    chain: Chain, signer: PrivateKey, kind: str, payload: dict[str, Value], time_ms: int
) -> Receipt:
    """One transaction as the next block, through the determinism and isolation checks."""
    return run_block(chain, [chain.tx(signer, kind, payload)], time_ms)[0]


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


# --- permits: an independent model of docs/contracts.md ---------------------------------------

# kind -> (sender, statuses it may start from as they read at the block time, new status or
# None for unchanged), transcribed from the "Transitions" table of docs/contracts.md.
PERMIT_TABLE: dict[str, tuple[str, set[str], str | None]] = {
    "permit.review": ("clerk", {"applied"}, "in_review"),
    "permit.approve": ("clerk", {"in_review"}, "approved"),
    "permit.deny": ("clerk", {"applied", "in_review"}, "denied"),
    "permit.issue": ("clerk", {"approved"}, "issued"),
    "permit.inspect": ("inspector", {"issued", "suspended"}, None),
    "permit.renew": ("clerk", {"issued", "suspended", "expired"}, None),
    "permit.suspend": ("clerk", {"issued"}, "suspended"),
    "permit.reinstate": ("clerk", {"suspended"}, "issued"),
    "permit.revoke": ("clerk", {"approved", "issued", "suspended"}, "revoked"),
}
PERMIT_SENDERS = {
    "clerk": member_key("permits", "clerk"),
    "inspector": member_key("permits", "insp"),
    "trader": member_key("exporter", "clerk"),
}


@dataclass
class PermitModel:
    status: str = "applied"
    valid_from: int = 0
    valid_until: int = 0

    def reads(self, t: int) -> str:
        """The docs: issued and suspended read as expired once t reaches valid_until."""
        if self.status in ("issued", "suspended") and t >= self.valid_until:
            return "expired"
        return self.status

    def valid_at(self, t: int) -> bool:
        return self.reads(t) == "issued" and self.valid_from <= t < self.valid_until


# the documented way forward from each status (as it reads), to reach every status often
FORWARD: dict[str, list[str]] = {
    "applied": ["permit.review"],
    "in_review": ["permit.approve"],
    "approved": ["permit.issue", "permit.revoke"],
    "issued": ["permit.suspend", "permit.renew", "permit.inspect", "permit.revoke"],
    "suspended": ["permit.reinstate", "permit.renew", "permit.inspect", "permit.revoke"],
    "expired": ["permit.renew", "permit.suspend", "permit.reinstate"],
}


@examples(80)
@given(st.data())
def test_permit_state_machine_matches_the_documented_table(data: st.DataObject) -> None:
    chain = Chain()
    chain.ok(
        PERMIT_SENDERS["trader"],
        "permit.apply",
        {"id": "BP-1", "type": "building", "address": "1 Main St", "description": "d"},
    )
    model = PermitModel()
    for _ in range(data.draw(st.integers(0, 14))):
        now = chain.time_ms + data.draw(st.integers(0, 6)) * DAY + 1000
        forward = FORWARD.get(model.reads(now), [])
        if forward and data.draw(st.booleans()):
            kind = data.draw(st.sampled_from(forward))
        else:
            kind = data.draw(st.sampled_from(sorted(PERMIT_TABLE)))
        who = data.draw(st.sampled_from(["right", "right", "right", "trader"]))
        end_days = data.draw(st.integers(-3, 8))
        role, sources, target = PERMIT_TABLE[kind]
        sender = PERMIT_SENDERS[role if who == "right" else "trader"]
        body: dict[str, Value] = {"permit_id": "BP-1"}
        end = now + end_days * DAY
        if kind == "permit.issue":
            body |= {"valid_from": now - DAY, "valid_until": max(end, now - DAY + 1)}
        elif kind == "permit.renew":
            body["valid_until"] = end
        elif kind == "permit.inspect":
            body["result"] = "pass"
        elif kind not in ("permit.review", "permit.approve"):
            body["reason"] = "because"
        receipt = send(chain, sender, kind, body, now)
        current = model.reads(now)
        if who != "right":
            assert receipt.code == "forbidden_role"
        elif current not in sources:
            assert receipt.code == "wrong_state", (kind, current, receipt.code)
        elif kind == "permit.renew" and end <= max(model.valid_until, now):
            assert receipt.code == "bad_payload"  # must extend beyond both
        else:
            assert receipt.ok, (kind, current, receipt.message)
            if kind == "permit.issue":
                model.valid_from, model.valid_until = now - DAY, max(end, now - DAY + 1)
            if kind == "permit.renew":
                model.valid_until = end
            model.status = target or model.status
        permit = queries.get_permit(chain.state, "BP-1", at_ms=now)
        assert permit is not None
        assert (permit["status"], permit["effective_status"]) == (model.status, model.reads(now))
        assert queries.permit_valid_at(chain.state, "BP-1", now)[0] == model.valid_at(now)
        event(f"permit: reached {model.reads(now)}")


# --- shipments: custody, parties, customs and licence gates ------------------------------------

SHIP_KEYS = {
    "broker": member_key("broker", "clerk"),
    "exporter": member_key("exporter", "clerk"),
    "importer": member_key("importer", "clerk"),
    "carrier-a": member_key("carrier-a", "ops"),
    "carrier-b": member_key("carrier-b", "ops"),
    "port": member_key("port", "officer"),
}
CUSTOMS_KEY = member_key("customs", "officer")
CLERK_KEY = member_key("permits", "clerk")
# from the customs transitions table of docs/contracts.md
CUSTOMS_TABLE: dict[str, tuple[set[str], str]] = {
    "hold": ({"pending", "inspection", "cleared", "released"}, "held"),
    "inspect": ({"pending", "held"}, "inspection"),
    "clear": ({"pending", "held", "inspection"}, "cleared"),
    "release": ({"cleared"}, "released"),
    "seize": ({"pending", "held", "inspection", "cleared", "released"}, "seized"),
}
GOODS = {
    "batteries": ("850760", False),
    "revolvers": ("930200", True),  # under the restricted heading 9302
    "rifles": ("930300", True),  # wider than the restricted subdivision 93030010
}
SHIP_APP: dict[str, Value] = {
    "restricted_hs_codes": ["360100", "9302", "93030010"],
    "energy_interval_ms": INTERVAL,
}


@dataclass
class ShipmentModel:
    declarant: str
    restricted: bool
    unconfirmed: set[str]
    holder: str = "exporter"
    offer_to: str | None = None
    stage: str = "declared"
    customs: str = "pending"
    licence: str | None = None


@dataclass
class LicenceModel:
    """IL-1 of the importer: issued for [valid_from, valid_until); may be suspended/revoked."""

    valid_from: int
    valid_until: int
    status: str = "issued"

    def valid_at(self, t: int) -> bool:
        return self.status == "issued" and self.valid_from <= t < self.valid_until


ship_op = st.one_of(
    st.tuples(st.just("confirm"), st.sampled_from(["exporter", "importer", "carrier-a"])),
    st.tuples(
        st.just("offer"),
        st.sampled_from(["exporter", "carrier-a", "carrier-b", "importer"]),
        st.sampled_from(["carrier-a", "carrier-b", "importer", "exporter"]),
    ),
    st.tuples(st.just("accept"), st.sampled_from(["carrier-a", "carrier-b", "importer"])),
    st.tuples(st.just("milestone"), st.sampled_from(["exporter", "carrier-a", "port"])),
    st.tuples(
        st.just("customs"),
        st.sampled_from(sorted(CUSTOMS_TABLE)),
        st.sampled_from([None, "IL-1", "NOPE"]),
        st.integers(-20, 0),  # event time, days before the block
    ),
    st.tuples(st.just("deliver"), st.sampled_from(["carrier-a", "carrier-b", "importer"])),
    st.tuples(st.just("licence"), st.sampled_from(["suspend", "reinstate", "revoke"])),
    st.tuples(st.just("wait"), st.integers(1, 6)),
)


def expect_shipment(
    m: ShipmentModel, lic: LicenceModel, op: tuple[Any, ...], now: int
) -> tuple[set[str], Callable[[], None]]:
    """The refusal codes the documented rules give for ``op`` (empty: it succeeds), and what
    it changes when it succeeds."""
    kind = op[0]
    codes: set[str] = set()
    closed = m.customs == "seized" or m.stage == "delivered"

    def nothing() -> None:
        return None

    def gate(t: int, licence: str | None) -> None:
        """The licence gate: restricted goods need IL-1 (the confirmed consignee's, covering
        chapter 93) valid at ``t``; a cited licence is always checked and must cover goods."""
        if licence is None:
            if m.restricted:
                codes.add("licence_required")
            return
        if licence != "IL-1" or "consignee" in m.unconfirmed or not lic.valid_at(t):
            codes.add("licence_required")
        elif not m.restricted:
            codes.add("licence_required")  # IL-1 covers chapter 93 only: none of the goods

    if kind == "confirm":
        org = op[1]
        roles = {r for r, o in (("consignor", "exporter"), ("consignee", "importer")) if o == org}
        if not roles:
            return {"forbidden"}, nothing
        if closed:
            codes.add("wrong_state")
        if not roles & m.unconfirmed:
            codes.add("wrong_state")
        return codes, lambda: m.unconfirmed.difference_update(roles)
    if kind == "offer":
        _, by, to = op
        if by != m.holder:
            codes.add("forbidden")
        if closed or m.customs == "held" or "consignor" in m.unconfirmed:
            codes.add("wrong_state")
        if to == m.holder:
            codes.add("bad_payload")

        def offered() -> None:
            m.offer_to = to

        return codes, offered
    if kind == "accept":
        by = op[1]
        if m.offer_to is None:
            codes.add("wrong_state")
        elif by != m.offer_to:
            codes.add("forbidden")
        if closed or m.customs == "held":
            codes.add("wrong_state")

        def accepted() -> None:
            m.holder, m.offer_to = by, None
            if m.stage == "declared":
                m.stage = "in_transit"

        return codes, accepted
    if kind == "milestone":
        by = op[1]
        if by != m.holder and by != "port":
            codes.add("forbidden")
        if closed or (by != "port" and "consignor" in m.unconfirmed):
            codes.add("wrong_state")

        def moved() -> None:
            if m.stage == "declared":
                m.stage = "in_transit"

        return codes, moved
    if kind == "customs":
        _, decision, licence, days = op
        t = now + days * DAY
        sources, target = CUSTOMS_TABLE[decision]
        if decision != "seize" and closed:
            codes.add("wrong_state")
        if m.customs not in sources:
            codes.add("wrong_state")
        if licence is not None and decision != "clear":
            return {"bad_payload"}, nothing
        if decision == "clear":
            gate(t, licence)
        elif decision == "release" and m.restricted:
            gate(t, m.licence)

        def decided() -> None:
            m.customs = target
            if decision == "clear":
                m.licence = licence

        return codes, decided
    if kind == "deliver":
        by = op[1]
        if by not in (m.holder, "importer"):
            codes.add("forbidden")
        if closed or m.customs != "released" or m.unconfirmed:
            codes.add("wrong_state")
        if m.restricted:
            gate(now, m.licence)

        def delivered() -> None:
            m.holder, m.offer_to, m.stage = "importer", None, "delivered"

        return codes, delivered
    raise AssertionError(kind)


def likely_ops(m: ShipmentModel) -> list[tuple[Any, ...]]:
    """The documented next steps of an honest journey from the model's state."""
    out: list[tuple[Any, ...]] = []
    parties = {"consignor": "exporter", "consignee": "importer"}
    out += [("confirm", parties[role]) for role in sorted(m.unconfirmed)]
    if m.offer_to is not None:
        out.append(("accept", m.offer_to))
    if m.holder == "exporter":
        out.append(("offer", "exporter", "carrier-a"))
    if m.holder.startswith("carrier"):
        out.append(("milestone", m.holder))
    licence = "IL-1" if m.restricted else None
    following = {
        "pending": ("clear", licence),
        "held": ("inspect", None),
        "inspection": ("clear", licence),
        "cleared": ("release", None),
    }
    if m.customs in following:
        decision, cited = following[m.customs]
        out.append(("customs", decision, cited, 0))
    if m.customs == "released" and m.stage != "delivered":
        out.append(("deliver", m.holder if m.holder != "exporter" else "importer"))
    return out


@examples(80)
@given(st.sampled_from(["broker", "exporter"]), st.sampled_from(sorted(GOODS)), st.data())
def test_custody_parties_customs_and_licence_gates_match_the_model(
    declarant: str, goods: str, data: st.DataObject
) -> None:
    chain = Chain(genesis=make_genesis(SHIP_APP))
    lic = LicenceModel(chain.time_ms - 3 * DAY, chain.time_ms + 8 * DAY)
    chain.ok(
        SHIP_KEYS["importer"],
        "permit.apply",
        {
            "id": "IL-1",
            "type": "import_licence",
            "address": "1 Pier",
            "description": "arms",
            "hs_codes": ["93"],
        },
    )
    chain.ok(CLERK_KEY, "permit.review", {"permit_id": "IL-1"})
    chain.ok(CLERK_KEY, "permit.approve", {"permit_id": "IL-1"})
    chain.ok(
        CLERK_KEY,
        "permit.issue",
        {"permit_id": "IL-1", "valid_from": lic.valid_from, "valid_until": lic.valid_until},
    )
    hs, restricted = GOODS[goods]
    line: dict[str, Value] = {
        "hs_code": hs,
        "description": goods,
        "quantity": 1,
        "unit": "C62",
        "value": 1,
        "currency": "USD",
    }
    chain.ok(
        SHIP_KEYS[declarant],
        "shipment.declare",
        {
            "id": "S",
            "consignor": "exporter",
            "consignee": "importer",
            "declarant": declarant,
            "origin": "CNSHA",
            "destination": "KRPUS",
            "goods": [line],
            "containers": [],
        },
    )
    unconfirmed = {"consignee", "consignor"} - ({"consignor"} if declarant == "exporter" else set())
    m = ShipmentModel(declarant, restricted, unconfirmed)
    for _ in range(data.draw(st.integers(0, 18))):
        likely = likely_ops(m)
        guided = likely and data.draw(st.integers(0, 2)) > 0
        op = data.draw(st.sampled_from(likely) if guided else ship_op)
        now = chain.time_ms + 1000
        if op[0] == "wait":
            chain.time_ms += op[1] * DAY
            continue
        if op[0] == "licence":
            action = op[1]
            body: dict[str, Value] = {"permit_id": "IL-1", "reason": "r"}
            r = send(chain, CLERK_KEY, f"permit.{action}", body, now)
            reads = "expired" if lic.status != "revoked" and now >= lic.valid_until else lic.status
            allowed = {"suspend": {"issued"}, "reinstate": {"suspended"}}.get(
                action, {"issued", "suspended"}
            )
            assert r.ok == (reads in allowed), (action, reads, r.code)
            if r.ok:
                lic.status = {"suspend": "suspended", "reinstate": "issued"}.get(action, "revoked")
            continue
        expected, effect = expect_shipment(m, lic, op, now)
        signer, kind, body = shipment_tx(op, now)
        r = send(chain, signer, kind, body, now)
        if expected:
            assert r.code in expected, (op, r.code, r.message, expected)
        else:
            assert r.ok, (op, r.code, r.message)
            effect()
            event(f"shipment: {op[0]} {op[1] if op[0] == 'customs' else ''} succeeded")
        s = queries.get_shipment(chain.state, "S")
        assert s is not None
        observed = (s["holder"], s["stage"], s["customs_status"], set(s["unconfirmed"]))
        assert observed == (m.holder, m.stage, m.customs, m.unconfirmed), op
        offer = s["custody_offer"]
        assert (offer["to"] if offer else None) == m.offer_to
        assert s["licence_id"] == m.licence
        # custody only ever moved by acceptance or delivery, to organisations that agreed
        assert set(s["holders"]) <= {"exporter", "carrier-a", "carrier-b", "importer"}


def shipment_tx(op: tuple[Any, ...], now: int) -> tuple[PrivateKey, str, dict[str, Value]]:
    kind = op[0]
    ref: dict[str, Value] = {"shipment_id": "S"}
    if kind == "confirm":
        return SHIP_KEYS[op[1]], "shipment.confirm_party", ref
    if kind == "offer":
        return SHIP_KEYS[op[1]], "shipment.offer_custody", ref | {"to": op[2]}
    if kind == "accept":
        return SHIP_KEYS[op[1]], "shipment.accept_custody", ref
    if kind == "milestone":
        body = ref | {"event": "gate_in", "place": "CNSHA", "time_ms": now}
        return SHIP_KEYS[op[1]], "shipment.milestone", body
    if kind == "customs":
        _, decision, licence, days = op
        body = ref | {"decision": decision, "reason": "r", "time_ms": now + days * DAY}
        if licence is not None:
            body["licence_id"] = licence
        return CUSTOMS_KEY, "shipment.customs_decision", body
    return SHIP_KEYS[op[1]], "shipment.deliver", ref | {"place": "KRPUS"}


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
            body = {
                "id": f"org-{op[2]}",
                "name": "O",
                "kind": "trader",
                "city": "Busan",
                "members": [{"public_key": pk, "name": "a", "roles": ["admin"]}],
            }
            chain.send(member_key("customs", "admin"), "identity.register_org", body)
        else:
            body = {"meter_key": pk, "owner": "solar-1", "name": "m"}
            chain.send(REGULATOR, "energy.register_meter", body)
        for k in POOL:
            is_member = chain.state.get(sk.member_key(k.public_key)) is not None
            is_meter = chain.state.get(sk.meter_key(k.public_key)) is not None
            assert not (is_member and is_meter)
