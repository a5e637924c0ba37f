"""The realistic contract mix: what each kind of actor sends during the timed phase.

Every transaction is valid when executed in any interleaving of senders that keeps
each sender's nonce order: a chain of dependent steps always comes from one sender
(a trader declares, documents, moves and offers its own new shipment; a clerk walks
its own permits through review, approval, issue, suspension and reinstatement; a
customs officer cycles its own shipments through hold, inspection, clearance and
release), and steps of other senders only rely on what the untimed setup committed.
Per-record caps (history, documents, inspections, orders per interval and per account)
are tracked here so that no transaction fails for them. Energy is bound to its interval: a
member offers only surplus its own readings put into that interval (readings never consume
more than they produce, so no other member's reading can undercut it), and bids go to
future intervals.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from benchmarks.population import (
    DAY_MS,
    INTERVAL_MS,
    MINUTE_MS,
    PLACES,
    Actor,
    Permit,
    Population,
    Shipment,
    apply_payload,
    declare_payload,
    reading_payload,
    reading_slot,
)
from devnet.payloads import order_payload
from ledger.encoding import Value
from ledger.tx import Transaction

MAX_HISTORY = 950  # the contract's cap is 1000 entries per shipment
MAX_DOCS = 30  # of 32
MAX_INSPECTIONS = 95  # of 100
ORDERS_PER_SLOT = 4  # a member's offers per reading interval and bids per bid interval: 4
# members x 4 = 16 of the 20 orders an organisation may place in one interval
DOC_TYPES = ("commercial_invoice", "packing_list", "certificate_of_origin", "bill_of_lading")
MILESTONES = ("gate_in", "loaded", "departed", "arrived", "discharged", "gate_out")
NEXT_CUSTOMS = {
    "pending": "hold",
    "held": "inspect",
    "inspection": "clear",
    "cleared": "release",
    "released": "hold",
}
CUSTOMS_STATUS = {
    "hold": "held",
    "inspect": "inspection",
    "clear": "cleared",
    "release": "released",
}
PERMIT_STEP = {
    "applied": "review",
    "in_review": "approve",
    "approved": "issue",
    "issued": "suspend",
    "suspended": "reinstate",
}
PERMIT_STATUS = {
    "review": "in_review",
    "approve": "approved",
    "issue": "issued",
    "suspend": "suspended",
    "reinstate": "issued",
    "renew": "issued",
}

# (name, share of the valid transactions)
MIX: tuple[tuple[str, float], ...] = (
    ("energy.submit_reading", 0.22),
    ("energy.place_order", 0.10),
    ("energy.cancel_order", 0.01),
    ("energy.settle", 0.002),
    ("energy.credit_balance", 0.028),
    ("shipment.declare", 0.05),
    ("shipment.attach_document", 0.10),
    ("shipment.milestone", 0.25),
    ("shipment.offer_custody", 0.02),
    ("shipment.customs_decision", 0.06),
    ("permit.apply", 0.04),
    ("permit.transition", 0.08),
    ("permit.inspect", 0.04),
)


@dataclass
class _Rotor:
    """Round-robin over a list."""

    items: list[Actor]
    i: int = 0

    def next(self) -> Actor:
        item = self.items[self.i % len(self.items)]
        self.i += 1
        return item


@dataclass
class MixState:
    """What the generator knows about the records its actors work on."""

    pop: Population
    rotors: dict[str, _Rotor] = field(default_factory=dict)
    current: dict[str, Shipment] = field(default_factory=dict)  # trader label -> own shipment
    cursor: dict[str, int] = field(default_factory=dict)  # actor label -> pool position
    readings: dict[str, int] = field(default_factory=dict)  # prosumer label -> readings sent
    # prosumer label -> [interval start, Wh of its own surplus there not yet offered, offers]
    offerable: dict[str, list[list[int]]] = field(default_factory=dict)
    bids: dict[str, int] = field(default_factory=dict)  # prosumer label -> bids placed
    open_orders: dict[str, list[str]] = field(default_factory=dict)
    orders: int = 0
    docs: int = 0

    def actor(self, role: str) -> Actor:
        if role not in self.rotors:
            self.rotors[role] = _Rotor(self.pop.actors[role])
        return self.rotors[role].next()

    def pick(self, actor: Actor, pool: list[Shipment] | list[Permit]) -> int:
        """The next position in an actor's own pool (round-robin)."""
        k = self.cursor.get(actor.label, 0)
        self.cursor[actor.label] = k + 1
        return k % len(pool)

    def when(self) -> int:
        return self.pop.now_ms - self.pop.rng.randrange(DAY_MS)


Action = Callable[[MixState], Transaction | None]


def _sign(s: MixState, actor: Actor, kind: str, payload: dict[str, Value]) -> Transaction:
    return actor.sign(s.pop.chain_id, kind, payload)


def _own_shipment(s: MixState, trader: Actor) -> Shipment:
    ship = s.current.get(trader.label)
    if ship is None or ship.docs >= MAX_DOCS or ship.history >= MAX_HISTORY:
        raise LookupError
    return ship


def declare(s: MixState, trader: Actor | None = None) -> Transaction:
    trader = trader or s.actor("trader")
    ship = Shipment(s.pop.next_id("TSH"), trader.org)
    s.current[trader.label] = ship
    return _sign(
        s, trader, "shipment.declare", declare_payload(s.pop, ship.id, trader.org, s.when())
    )


def document(s: MixState) -> Transaction:
    s.docs += 1
    digest = s.pop.rng.randbytes(32)
    if s.docs % 2:
        trader = s.actor("trader")
        try:
            ship = _own_shipment(s, trader)
        except LookupError:
            return declare(s, trader)
        doc_type, actor = DOC_TYPES[ship.docs % 3], trader
    else:
        actor = s.actor("carrier")
        pool = s.pop.carrier_ships[actor.label]
        ship = pool[s.pick(actor, pool)]
        if ship.docs >= MAX_DOCS or ship.history >= MAX_HISTORY:
            return milestone(s)
        doc_type = "bill_of_lading"
    ship.docs += 1
    ship.history += 1
    body: dict[str, Value] = {
        "shipment_id": ship.id,
        "type": doc_type,
        "sha256": digest,
        "uri": f"https://docs.example/{ship.id}/{s.docs}.pdf",
    }
    return _sign(s, actor, "shipment.attach_document", body)


def milestone(s: MixState) -> Transaction:
    rng = s.pop.rng
    which = rng.randrange(3)
    if which == 0:
        actor = s.actor("trader")
        try:
            ship = _own_shipment(s, actor)
        except LookupError:
            return declare(s, actor)
    else:
        actor = s.actor("carrier" if which == 1 else "port")
        pool = s.pop.carrier_ships[actor.label] if which == 1 else s.pop.all_ships
        ship = pool[s.pick(actor, pool)]
        if ship.history >= MAX_HISTORY:
            return declare(s)
    ship.history += 1
    body: dict[str, Value] = {
        "shipment_id": ship.id,
        "event": rng.choice(MILESTONES),
        "place": rng.choice(PLACES),
        "time_ms": s.when(),
    }
    return _sign(s, actor, "shipment.milestone", body)


def offer(s: MixState) -> Transaction:
    trader = s.actor("trader")
    try:
        ship = _own_shipment(s, trader)
    except LookupError:
        return declare(s, trader)
    ship.history += 1
    to = s.pop.rng.choice(s.pop.orgs["carrier"])
    return _sign(
        s, trader, "shipment.offer_custody", {"shipment_id": ship.id, "to": to, "time_ms": s.when()}
    )


def customs(s: MixState) -> Transaction:
    officer = s.actor("customs")
    pool = s.pop.customs_ships[officer.label]
    ship = pool[s.pick(officer, pool)]
    if ship.history >= MAX_HISTORY:
        return declare(s)
    decision = NEXT_CUSTOMS[ship.customs]
    ship.customs = CUSTOMS_STATUS[decision]
    ship.history += 1
    body: dict[str, Value] = {
        "shipment_id": ship.id,
        "decision": decision,
        "reason": f"bench {decision}",
        "time_ms": s.when(),
    }
    return _sign(s, officer, "shipment.customs_decision", body)


def apply(s: MixState) -> Transaction:
    role = ("trader", "carrier", "prosumer")[s.pop.counter % 3]
    permit_id = s.pop.next_id("TPM")
    return _sign(s, s.actor(role), "permit.apply", apply_payload(permit_id, s.pop.counter))


def permit_step(s: MixState) -> Transaction:
    clerk = s.actor("permit_office")
    pool = s.pop.clerk_permits[clerk.label]
    permit = pool[s.pick(clerk, pool)]
    step = PERMIT_STEP[permit.status]
    body: dict[str, Value] = {"permit_id": permit.id}
    now = s.pop.now_ms
    if step == "issue":
        permit.valid_until = now + 365 * DAY_MS
        body |= {"valid_from": now - DAY_MS, "valid_until": permit.valid_until}
    elif step == "suspend" and s.cursor[clerk.label] % 5 == 0:
        step = "renew"
        permit.valid_until += 30 * DAY_MS
        body["valid_until"] = permit.valid_until
    elif step in ("suspend", "reinstate"):
        body["reason"] = f"bench {step}"
    permit.status = PERMIT_STATUS[step]
    return _sign(s, clerk, f"permit.{step}", body)


def inspect(s: MixState) -> Transaction:
    inspector = s.actor("inspector")
    pool = s.pop.issued_permits
    permit = pool[s.pick(inspector, pool)]
    if permit.inspections >= MAX_INSPECTIONS:
        return apply(s)
    permit.inspections += 1
    body: dict[str, Value] = {"permit_id": permit.id, "result": "pass", "notes": "bench"}
    return _sign(s, inspector, "permit.inspect", body)


def reading(s: MixState) -> Transaction:
    owner = s.actor("prosumer")
    k = s.readings.get(owner.label, 0)
    s.readings[owner.label] = k + 1
    meter, start = reading_slot(s.pop, k)
    produced = s.pop.rng.randint(500, 5000)
    body = reading_payload(s.pop, s.pop.meters[owner.label][meter], start, produced)
    consumed = body["consumed_wh"]
    assert isinstance(consumed, int)
    surplus = produced - consumed
    slots = s.offerable.setdefault(owner.label, [])
    if slots and slots[-1][0] == start:
        slots[-1][1] += surplus
    else:
        slots.append([start, surplus, 0])
    return _sign(s, owner, "energy.submit_reading", body)


def bid_interval(s: MixState, n: int) -> int:
    """The interval of a member's n-th bid: a day ahead, four bids per interval."""
    now = s.pop.now_ms
    return now - now % INTERVAL_MS + DAY_MS + (n // ORDERS_PER_SLOT) * INTERVAL_MS


def place_order(s: MixState) -> Transaction:
    owner = s.actor("prosumer")
    rng = s.pop.rng
    s.orders += 1
    slots = s.offerable.get(owner.label, [])
    while len(slots) > 1 and (slots[0][1] < 50 or slots[0][2] >= ORDERS_PER_SLOT):
        slots.pop(0)  # spent (the newest stays: more readings may add to its interval)
    slot = next((x for x in slots if x[1] >= 50 and x[2] < ORDERS_PER_SLOT), None)
    if s.orders % 2 and slot is not None:
        quantity = rng.randint(50, min(200, slot[1]))
        slot[1] -= quantity
        slot[2] += 1
        body = order_payload(slot[0], "offer", quantity, rng.randint(90, 160))
    else:
        n = s.bids.get(owner.label, 0)
        s.bids[owner.label] = n + 1
        start = bid_interval(s, n)
        body = order_payload(start, "bid", rng.randint(100, 1000), rng.randint(120, 200))
    tx = _sign(s, owner, "energy.place_order", body)
    if body["side"] == "bid":
        s.open_orders.setdefault(owner.label, []).append(tx.hash.hex())
    return tx


def cancel_order(s: MixState) -> Transaction:
    owner = s.actor("prosumer")
    mine = s.open_orders.get(owner.label)
    if not mine:
        s.rotors["prosumer"].i -= 1  # let the same prosumer place one instead
        return place_order(s)
    return _sign(s, owner, "energy.cancel_order", {"order_id": mine.pop(0)})


def settle(s: MixState) -> Transaction:
    if not s.pop.settle_intervals:
        return credit(s)
    start = s.pop.settle_intervals.pop(0)
    return _sign(s, s.actor("energy_regulator"), "energy.settle", {"interval_start_ms": start})


def credit(s: MixState) -> Transaction:
    regulator = s.actor("energy_regulator")
    accounts = s.pop.orgs["prosumer"]
    body: dict[str, Value] = {
        "account": accounts[s.pop.counter % len(accounts)],
        "amount": 1 + s.pop.rng.randrange(10**6),
        "reference": f"top-up {s.pop.next_id('R')}",
    }
    return _sign(s, regulator, "energy.credit_balance", body)


ACTIONS: dict[str, Callable[[MixState], Transaction]] = {
    "energy.submit_reading": reading,
    "energy.place_order": place_order,
    "energy.cancel_order": cancel_order,
    "energy.settle": settle,
    "energy.credit_balance": credit,
    "shipment.declare": declare,
    "shipment.attach_document": document,
    "shipment.milestone": milestone,
    "shipment.offer_custody": offer,
    "shipment.customs_decision": customs,
    "permit.apply": apply,
    "permit.transition": permit_step,
    "permit.inspect": inspect,
}

__all__ = ["ACTIONS", "MINUTE_MS", "MIX", "MixState"]
