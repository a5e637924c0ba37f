"""Who sends the benchmark's transactions, and the untimed setup that registers them.

On top of the demo's founding agencies (which every devnet genesis holds), the
setup registers bench traders, carriers and prosumers (``register_org``) and more
agency members (customs officers, port operators, permit clerks, inspectors, energy
regulators; the privileged roles by role-grant proposals the founding agencies
approve, as any network must), then gives the timed phase something to work on: shipments handed to
carriers, permits applied for (some issued), meters with a first reading, prepaid
balances and order books of past intervals waiting to be settled.

Every sending key is one :class:`Actor` with its own nonce counter, pinned to one
node (a client talks to its own agency's node). Keys come from labels, so a run is
reproducible from its seed.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from contracts.codes import iso6346_remainder, with_check_digit
from contracts.energy import sign_reading
from contracts.governance_params import GovParams
from contracts.governance_payloads import MAX_GRANT_MEMBERS
from contracts.governance_records import proposal_id_of
from devnet.demo_data import GOODS_BY_ORIGIN, ORGANISATIONS
from devnet.demo_plan import member_label
from devnet.payloads import goods_line, order_payload
from ledger.crypto import PrivateKey
from ledger.encoding import Value
from ledger.tx import Transaction

MINUTE_MS = 60_000
DAY_MS = 24 * 60 * MINUTE_MS
INTERVAL_MS = 15 * MINUTE_MS  # devnet genesis: energy_interval_ms
# the devnet genesis' founding agencies (the demo's), whose admins approve role grants
FOUNDING_AGENCIES = sum(1 for o in ORGANISATIONS.values() if o[1] == "agency")
CONSENT_ROLES = GovParams().consent_roles  # the devnet genesis keeps the default
Payload = dict[str, Value] | Callable[[], dict[str, Value]]
ORG_MEMBERS = 4  # sending members per bench organisation (plus an idle admin)
SETTLE_INTERVALS = 24  # past intervals whose order books the timed phase settles
METERS_PER_PROSUMER = 4  # meters per prosumer member: readings rotate over them
PLACES = ("KRPUS", "CNSHA", "CNNGB", "NLRTM", "DEHAM", "SGSIN", "USLAX", "JPTYO")
# goods lines drawn from: these HS codes of the demo's catalogue (devnet/demo_data.py)
GOODS_HS = ("850760", "847130", "610910", "040690", "870899", "854232")
GOODS = tuple(
    next(line for lines in GOODS_BY_ORIGIN.values() for line in lines if line[0] == hs)
    for hs in GOODS_HS
)
# Founding agency whose admin registers each kind of agency member, and the role.
AGENCY_ROLES = {
    "customs": ("busan-customs", "sejong-customs"),
    "port": ("busan-port", "sejong-port"),
    "permit_office": ("busan-permits", "sejong-permits"),
    "inspector": ("busan-permits", "sejong-permits"),
    "energy_regulator": ("busan-energy", "sejong-energy"),
}


@dataclass
class Actor:
    """One sending key with its own nonce sequence."""

    label: str
    org: str
    role: str
    node: int = 0
    nonce: int = 0
    key: PrivateKey = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.key = PrivateKey.from_label(self.label)

    def sign(self, chain_id: str, kind: str, payload: dict[str, Value]) -> Transaction:
        tx = Transaction.create(self.key, chain_id, kind, self.nonce, payload)
        self.nonce += 1
        return tx


@dataclass
class Shipment:
    id: str
    holder: str  # org
    customs: str = "pending"
    docs: int = 0
    history: int = 1


@dataclass
class Permit:
    id: str
    status: str = "applied"
    inspections: int = 0
    valid_until: int = 0


@dataclass
class Population:
    """Actors by role, what the setup created for them, and the setup phases."""

    chain_id: str
    now_ms: int
    rng: random.Random
    actors: dict[str, list[Actor]] = field(default_factory=dict)
    admins: list[Actor] = field(default_factory=list)  # idle keys (forgery targets)
    founders: dict[str, Actor] = field(default_factory=dict)  # founding agency admins
    orgs: dict[str, list[str]] = field(default_factory=dict)  # kind -> bench org ids
    phases: list[list[Transaction]] = field(default_factory=list)
    steps: list[tuple[int, int, Actor, str, Payload]] = field(default_factory=list)
    signed: dict[int, Transaction] = field(default_factory=dict)  # step number -> its tx
    carrier_ships: dict[str, list[Shipment]] = field(default_factory=dict)  # actor label ->
    customs_ships: dict[str, list[Shipment]] = field(default_factory=dict)
    all_ships: list[Shipment] = field(default_factory=list)
    clerk_permits: dict[str, list[Permit]] = field(default_factory=dict)
    issued_permits: list[Permit] = field(default_factory=list)
    meters: dict[str, list[PrivateKey]] = field(default_factory=dict)  # prosumer -> its meters
    settle_intervals: list[int] = field(default_factory=list)
    counter: int = 0

    def next_id(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}-{self.counter:07d}"

    def add(self, phase: int, actor: Actor, kind: str, payload: Payload) -> int:
        """Queue a setup step; :meth:`sign_setup` signs them phase by phase (nonce order).
        ``payload`` may be a function, called at signing (when it needs an earlier step's
        transaction: :attr:`signed`, by the step number returned here)."""
        self.steps.append((phase, len(self.steps), actor, kind, payload))
        return len(self.steps) - 1

    def sign_setup(self) -> None:
        for phase, n, actor, kind, payload in sorted(self.steps, key=lambda s: s[:2]):
            while len(self.phases) <= phase:
                self.phases.append([])
            body = payload() if callable(payload) else payload
            self.signed[n] = actor.sign(self.chain_id, kind, body)
            self.phases[phase].append(self.signed[n])
        self.steps.clear()

    def all_actors(self) -> list[Actor]:
        return [a for group in self.actors.values() for a in group]

    def container(self) -> str:
        while True:
            first_ten = f"BNCU{self.rng.randrange(1_000_000):06d}"
            if iso6346_remainder(first_ten) != 10:
                return with_check_digit(first_ten)


def build_population(
    chain_id: str, now_ms: int, nodes: int, *, scale: int = 1, seed: int = 7
) -> Population:
    """Bench organisations and actors, and the setup phases (nothing is sent here)."""
    pop = Population(chain_id, now_ms, random.Random(seed))
    counts = {"trader": 16 * scale, "carrier": 8 * scale, "prosumer": 16 * scale}
    for name in (
        "busan-customs",
        "sejong-customs",
        "busan-port",
        "sejong-port",
        "busan-permits",
        "sejong-permits",
        "busan-energy",
        "sejong-energy",
    ):
        pop.founders[name] = Actor(member_label(name, "admin"), name, "admin")
    _register_orgs(pop, counts, seed)
    agency = {
        "customs": 16,
        "port": 8,
        "permit_office": 16,
        "inspector": 8,
        "energy_regulator": 256,
    }
    _register_agency_members(pop, {r: n * scale for r, n in agency.items()}, seed)
    everyone = pop.all_actors()
    for i, actor in enumerate(everyone):
        actor.node = i % nodes
    for i, actor in enumerate(pop.admins):
        actor.node = i % nodes
    _setup_shipments(pop)
    _setup_permits(pop)
    _setup_energy(pop)
    pop.sign_setup()
    return pop


def _register_orgs(pop: Population, counts: dict[str, int], seed: int) -> None:
    role_of = {"trader": "trader", "carrier": "carrier", "prosumer": "prosumer"}
    founders = list(pop.founders.values())
    n = 0
    for kind, count in counts.items():
        pop.orgs[kind] = []
        for i in range(count):
            org_id = f"bench-{kind}-{seed}-{i:03d}"
            pop.orgs[kind].append(org_id)
            members = [
                Actor(f"bench/{org_id}/m{k}", org_id, role_of[kind]) for k in range(ORG_MEMBERS)
            ]
            admin = Actor(f"bench/{org_id}/admin", org_id, "admin")
            pop.actors.setdefault(kind, []).extend(members)
            pop.admins.append(admin)
            payload: dict[str, Value] = {
                "id": org_id,
                "name": f"Bench {kind} {i}",
                "kind": kind,
                "city": "Busan" if i % 2 else "Sejong",
                "members": [
                    {"public_key": admin.key.public_key, "name": "admin", "roles": ["admin"]}
                ]
                + [
                    {"public_key": m.key.public_key, "name": f"m{k}", "roles": [role_of[kind]]}
                    for k, m in enumerate(members)
                ],
            }
            pop.add(1, founders[n % len(founders)], "identity.register_org", payload)
            n += 1


def _register_agency_members(pop: Population, counts: dict[str, int], seed: int) -> None:
    """Agency members: roles that need the founders' consent by a role-grant proposal
    (phase 0) approved by enough other founders (phase 1), the rest directly (phase 1)."""
    grants: dict[str, list[Actor]] = {}
    for role, count in counts.items():
        group = pop.actors.setdefault(role, [])
        for i in range(count):
            org = AGENCY_ROLES[role][i % 2]
            actor = Actor(f"bench/{seed}/{org}/{role}-{i}", org, role)
            group.append(actor)
            if role in CONSENT_ROLES:
                grants.setdefault(org, []).append(actor)
            else:
                pop.add(1, pop.founders[org], "identity.register_member", _new_member(actor))
    for org, actors in grants.items():
        for start in range(0, len(actors), MAX_GRANT_MEMBERS):
            _grant(pop, org, actors[start : start + MAX_GRANT_MEMBERS])


def _new_member(actor: Actor) -> dict[str, Value]:
    name = actor.label.rsplit("/", 1)[-1].replace("-", " ")
    return {"public_key": actor.key.public_key, "name": f"bench {name}", "roles": [actor.role]}


def _grant(pop: Population, org: str, actors: list[Actor]) -> None:
    """One role-grant proposal for ``actors`` and the approvals that execute it."""
    change: dict[str, Value] = {"org": org, "members": [_new_member(a) for a in actors]}
    step = pop.add(0, pop.founders[org], "gov.propose", {"kind": "role-grant", "change": change})
    approvers = [a for other, a in pop.founders.items() if other != org]
    needed = GovParams().needed(FOUNDING_AGENCIES) - 1  # the proposer's agency counts
    assert len(approvers) >= needed, "too few founding admins to approve a grant"
    for approver in approvers[:needed]:
        pop.add(1, approver, "gov.approve", lambda: {"id": proposal_id_of(pop.signed[step].hash)})


def declare_payload(pop: Population, ship_id: str, org: str, time_ms: int) -> dict[str, Value]:
    """A new consignment declared by ``org`` (consignor and declarant)."""
    rng = pop.rng
    consignee = rng.choice([o for o in pop.orgs["trader"] if o != org])
    origin, destination = rng.sample(PLACES, 2)
    lines: list[Value] = []
    for hs, description, unit, unit_value in rng.sample(GOODS, rng.randint(1, 3)):
        quantity = rng.randint(10, 5000)
        lines.append(goods_line(hs, description, unit, unit_value, quantity, "USD"))
    return {
        "id": ship_id,
        "consignor": org,
        "consignee": consignee,
        "declarant": org,
        "origin": origin,
        "destination": destination,
        "goods": lines,
        "containers": [pop.container() for _ in range(rng.randint(1, 2))],
        "time_ms": time_ms,
    }


def _setup_shipments(pop: Population) -> None:
    """Each trader declares shipments; half go to carriers (offer, accept), all to customs."""
    t0 = pop.now_ms - 2 * DAY_MS
    carriers = pop.actors["carrier"]
    officers = pop.actors["customs"]
    for i, trader in enumerate(pop.actors["trader"] * 3):
        ship = Shipment(pop.next_id("BSH"), trader.org)
        pop.add(2, trader, "shipment.declare", declare_payload(pop, ship.id, trader.org, t0))
        pop.all_ships.append(ship)
        pop.customs_ships.setdefault(officers[i % len(officers)].label, []).append(ship)
        if i % 2:
            continue
        carrier = carriers[(i // 2) % len(carriers)]
        offer = {"shipment_id": ship.id, "to": carrier.org, "time_ms": t0 + MINUTE_MS}
        pop.add(3, trader, "shipment.offer_custody", offer)
        accept = {"shipment_id": ship.id, "time_ms": t0 + 2 * MINUTE_MS}
        pop.add(4, carrier, "shipment.accept_custody", accept)
        ship.holder = carrier.org
        ship.history += 2
        pop.carrier_ships.setdefault(carrier.label, []).append(ship)


def apply_payload(permit_id: str, i: int) -> dict[str, Value]:
    kind = ("building", "business", "event")[i % 3]
    return {
        "id": permit_id,
        "type": kind,
        "address": f"{1 + i % 400} Jungang-daero, Busan",
        "description": f"Bench {kind} permit application {i}",
    }


def _setup_permits(pop: Population) -> None:
    """Permits for each clerk's timed chain, and a pool issued now for inspections."""
    applicants = pop.actors["trader"] + pop.actors["carrier"] + pop.actors["prosumer"]
    clerks = pop.actors["permit_office"]
    window = {"valid_from": pop.now_ms - 10 * DAY_MS, "valid_until": pop.now_ms + 365 * DAY_MS}
    for i in range(len(clerks) * 24 + 8 * len(pop.actors["inspector"])):
        permit = Permit(pop.next_id("BPM"))
        applicant = applicants[i % len(applicants)]
        pop.add(2, applicant, "permit.apply", apply_payload(permit.id, i))
        clerk = clerks[i % len(clerks)]
        if i < len(clerks) * 24:
            pop.clerk_permits.setdefault(clerk.label, []).append(permit)
            continue
        for kind in ("permit.review", "permit.approve", "permit.issue"):
            body: dict[str, Value] = {"permit_id": permit.id}
            if kind == "permit.issue":
                body |= window
            pop.add(3, clerk, kind, body)
        permit.status, permit.valid_until = "issued", int(window["valid_until"])
        pop.issued_permits.append(permit)


def reading_payload(
    pop: Population, meter: PrivateKey, start_ms: int, produced: int
) -> dict[str, Value]:
    """A signed reading that never consumes more than it produces: a reading only ever adds
    surplus to its organisation's interval position, so no sender's reading can undercut
    another member's offer, in any interleaving."""
    consumed = pop.rng.randint(min(50, produced), min(900, produced))
    return {
        "meter_key": meter.public_key,
        "interval_start_ms": start_ms,
        "produced_wh": produced,
        "consumed_wh": consumed,
        "signature": sign_reading(meter, pop.chain_id, start_ms, produced, consumed),
    }


def _aligned(time_ms: int) -> int:
    return time_ms - time_ms % INTERVAL_MS


def commissioned(pop: Population) -> int:
    """When the bench meters went into service: within the contracts' 7-day reading window."""
    return _aligned(pop.now_ms - 6 * DAY_MS - 20 * 60 * MINUTE_MS)


def settle_interval(pop: Population, j: int) -> int:
    """The j-th past interval whose order book the setup fills and the timed phase settles."""
    return commissioned(pop) + (j + 1) * INTERVAL_MS


def reading_slot(pop: Population, k: int) -> tuple[int, int]:
    """(meter index, interval start) of a prosumer member's k-th reading in the timed phase:
    rotating over its meters, one interval after another from six days back."""
    base = _aligned(pop.now_ms - 6 * DAY_MS)
    return k % METERS_PER_PROSUMER, base + (k // METERS_PER_PROSUMER) * INTERVAL_MS


def _setup_energy(pop: Population) -> None:
    """Meters, prepaid balances, and order books to settle (each offer backed by a reading
    of the offering member in the same interval)."""
    regulators = pop.actors["energy_regulator"]
    prosumers = pop.actors["prosumer"]
    for i, owner in enumerate(prosumers):
        meters = [
            PrivateKey.from_label(f"{owner.label}/meter" + (f"/{m}" if m else ""))
            for m in range(METERS_PER_PROSUMER)
        ]
        pop.meters[owner.label] = meters
        for m, meter in enumerate(meters):
            body = {
                "meter_key": meter.public_key,
                "owner": owner.org,
                "name": f"meter {i}/{m}",
                "active_from_ms": commissioned(pop),
            }
            pop.add(2, regulators[(i + m) % len(regulators)], "energy.register_meter", body)
    for i, org in enumerate(pop.orgs["prosumer"]):
        credit = {"account": org, "amount": 10**12, "reference": f"bench prepayment {i}"}
        pop.add(2, regulators[i % len(regulators)], "energy.credit_balance", credit)
    for j in range(SETTLE_INTERVALS):
        start = settle_interval(pop, j)
        pop.settle_intervals.append(start)
        for k in range(8):
            owner = prosumers[(j * 8 + k) % len(prosumers)]
            side = "offer" if k % 2 == 0 else "bid"
            if side == "offer":
                reading = reading_payload(pop, pop.meters[owner.label][0], start, 5000)
                pop.add(3, owner, "energy.submit_reading", reading)
            body = order_payload(start, side, pop.rng.randint(100, 2000), pop.rng.randint(90, 200))
            pop.add(4, owner, "energy.place_order", body)
