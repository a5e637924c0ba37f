"""The demo scenario: Busan and Sejong agencies, traders, carriers and a microgrid.

Deterministic: the same seed and start time give byte-identical transactions
(keys come from labels, randomness only from ``random.Random(seed)``).

* :func:`demo_organisations` — who is in genesis (with label-derived keys);
  :func:`genesis_organisations` and :func:`app_params` give the genesis generator
  exactly what it needs.
* :func:`demo_phases` — ordered phases of signed transactions. Every
  transaction of a phase is valid once all earlier phases are committed and the
  same sender's earlier transactions of that phase (nonce order) are; different
  senders within a phase never depend on each other, so a phase can be
  submitted as one batch and its transactions may land in any blocks.
* :func:`demo_summary` — a few ids worth querying.

All business events (EPCIS event times, permit windows, energy intervals) lie
before ``start_time_ms``; the phases are meant to be executed in blocks whose
time is at least ``start_time_ms`` (pass "now").
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from contracts.codes import iso6346_remainder, with_check_digit
from contracts.energy import sign_reading
from devnet import demo_data as data
from ledger.crypto import PrivateKey
from ledger.encoding import Value
from ledger.genesis import Genesis, Member, Organisation
from ledger.tx import Transaction
from ledger.validators import Validator, ValidatorSet

DEFAULT_SEED = 20240501
DEFAULT_START_MS = 1_717_200_000_000  # 2024-06-01T00:00:00Z
MINUTE = 60_000
HOUR = 60 * MINUTE
DAY = 24 * HOUR
INTERVAL_MS = 15 * MINUTE
IMPORT_COUNT = 40
EXPORT_COUNT = 16
EXTRA_PERMITS = 17

# Fixed ids, whatever the seed (see demo_summary).
LONG_HISTORY = "SHP-0001"
HELD = "SHP-0002"
SEIZED = "SHP-0003"
RESTRICTED = "SHP-0004"
REUSE_SOURCE = "SHP-0012"
REUSE_EXPORT = "SHP-0057"
LONG_HISTORY_CONTAINERS = ["KOLU3054385", "KOLU4821579"]

# Phases (see module docstring). Shipment journeys start at P_DECLARE; the
# second-wave export re-uses a container delivered in an earlier phase.
P_IDENTITY, P_DECLARE, P_DOCS, P_SAIL, P_ARRIVE = 0, 1, 2, 3, 4
SECOND_WAVE = 8


# --- organisations ---------------------------------------------------------------------------


def member_label(org_id: str, name: str) -> str:
    """The label a demo member's key is derived from (PrivateKey.from_label)."""
    return f"demo/{org_id}/{name}"


@dataclass(frozen=True, slots=True)
class DemoMember:
    name: str
    label: str
    roles: tuple[str, ...]

    @property
    def key(self) -> PrivateKey:
        return PrivateKey.from_label(self.label)

    @property
    def public_key(self) -> bytes:
        return self.key.public_key


@dataclass(frozen=True, slots=True)
class DemoOrg:
    id: str
    name: str
    kind: str
    city: str
    members: tuple[DemoMember, ...]

    def member(self, name: str) -> DemoMember:
        for m in self.members:
            if m.name == name:
                return m
        raise KeyError(f"{self.id} has no member {name!r}")

    def to_organisation(self) -> Organisation:
        return Organisation(
            self.id,
            self.name,
            self.kind,
            self.city,
            tuple(Member(m.public_key, m.roles, m.name) for m in self.members),
        )


def _demo_org(org_id: str, name: str, kind: str, city: str, members: data.Members) -> DemoOrg:
    return DemoOrg(
        org_id,
        name,
        kind,
        city,
        tuple(DemoMember(n, member_label(org_id, n), roles) for n, roles in members.items()),
    )


def demo_organisations(seed: int = DEFAULT_SEED) -> list[DemoOrg]:
    """The founding organisations (agencies of both cities, carriers, traders, prosumers).

    The set is the same for every seed, so keys stay stable; the seed varies the data.
    """
    del seed
    return [_demo_org(oid, *spec) for oid, spec in data.ORGANISATIONS.items()]


def genesis_organisations(seed: int = DEFAULT_SEED) -> list[Organisation]:
    return [o.to_organisation() for o in demo_organisations(seed)]


def app_params() -> dict[str, Value]:
    """``genesis.app`` for the demo: restricted HS codes and the energy interval."""
    return {"energy_interval_ms": INTERVAL_MS, "restricted_hs_codes": data.RESTRICTED_HS_CODES}


def demo_genesis(
    chain_id: str = "cityledger-demo",
    genesis_time_ms: int = DEFAULT_START_MS - 90 * DAY,
    validators: ValidatorSet | None = None,
    seed: int = DEFAULT_SEED,
) -> Genesis:
    """A genesis holding the demo organisations (one demo validator unless given)."""
    if validators is None:
        validators = ValidatorSet(
            (Validator("demo-0", PrivateKey.from_label("demo/validator-0").public_key, 1),)
        )
    return Genesis(
        chain_id,
        genesis_time_ms,
        validators,
        tuple(genesis_organisations(seed)),
        app=app_params(),
    )


# --- the plan: steps by phase, nonces numbered at the end --------------------------------------

Payload = dict[str, Value] | Callable[[dict[int, Transaction]], dict[str, Value]]


@dataclass
class _Plan:
    chain_id: str
    steps: list[tuple[int, int, str, str, Payload]] = field(default_factory=list)

    def add(self, phase: int, org: str, member: str, kind: str, payload: Payload) -> int:
        """Queue a step; returns a handle whose built transaction later steps may refer to."""
        handle = len(self.steps)
        self.steps.append((phase, handle, member_label(org, member), kind, payload))
        return handle

    def build(self) -> list[list[Transaction]]:
        nonces: dict[str, int] = {}
        keys: dict[str, PrivateKey] = {}
        built: dict[int, Transaction] = {}
        phases: list[list[Transaction]] = []
        for phase, handle, label, kind, payload in sorted(self.steps, key=lambda s: s[:2]):
            while len(phases) <= phase:
                phases.append([])
            key = keys.setdefault(label, PrivateKey.from_label(label))
            body = payload(built) if callable(payload) else payload
            tx = Transaction.create(key, self.chain_id, kind, nonces.get(label, 0), body)
            nonces[label] = tx.nonce + 1
            built[handle] = tx
            phases[phase].append(tx)
        return phases


# --- identity ---------------------------------------------------------------------------------


def _plan_identity(plan: _Plan) -> None:
    org_id, name, kind, city, members = data.NEW_ORG
    plan.add(
        P_IDENTITY,
        "busan-customs",
        "admin",
        "identity.register_org",
        {
            "id": org_id,
            "name": name,
            "kind": kind,
            "city": city,
            "members": [
                {
                    "public_key": PrivateKey.from_label(member_label(org_id, m)).public_key,
                    "name": m,
                    "roles": list(roles),
                }
                for m, roles in members.items()
            ],
        },
    )
    for org, member, roles in [
        ("hanbit-electronics", "clerk-2", ["trader"]),
        ("korea-ocean-lines", "temp", ["carrier"]),
    ]:
        plan.add(
            P_IDENTITY,
            org,
            "admin",
            "identity.register_member",
            {
                "public_key": PrivateKey.from_label(member_label(org, member)).public_key,
                "name": member,
                "roles": roles,
            },
        )
    temp = PrivateKey.from_label(member_label("korea-ocean-lines", "temp")).public_key
    plan.add(
        P_IDENTITY + 1,
        "korea-ocean-lines",
        "admin",
        "identity.revoke_member",
        {"public_key": temp, "reason": "seasonal contract ended"},
    )


# --- permits ----------------------------------------------------------------------------------

_PERMIT_STEPS = {
    "applied": [],
    "in_review": ["review"],
    "approved": ["review", "approve"],
    "denied": ["review", "deny"],
    "issued": ["review", "approve", "issue"],
    "suspended": ["review", "approve", "issue"],
    "revoked": ["review", "approve", "issue"],
    "expired": ["review", "approve", "issue"],
}


def _office(holder: str) -> str:
    return "sejong-permits" if data.ORGANISATIONS[holder][2] == "Sejong" else "busan-permits"


def _permit_specs(rng: random.Random) -> list[tuple[str, str, str, str, str, str, str]]:
    specs = list(data.PERMITS)
    holders = [
        (oid, "ops" if spec[1] == "carrier" else "clerk" if spec[1] != "prosumer" else "owner")
        for oid, spec in data.ORGANISATIONS.items()
        if spec[1] != "agency"
    ]
    statuses = list(_PERMIT_STEPS)
    streets = ["Jungang-daero", "Suyeong-ro", "Haeun-daero", "Hannuri-daero", "Dasom-ro"]
    for i in range(EXTRA_PERMITS):
        holder, member = holders[rng.randrange(len(holders))]
        permit_type = rng.choice(["building", "business", "event"])
        city = data.ORGANISATIONS[holder][2]
        prefix = "SJG" if city == "Sejong" else "BSN"
        specs.append(
            (
                f"{prefix}-{permit_type[:3].upper()}-{1001 + i}",
                permit_type,
                holder,
                member,
                f"{rng.randint(1, 400)} {rng.choice(streets)}, {city}",
                f"{permit_type.title()} permit application {i + 1}",
                rng.choice(statuses),
            )
        )
    return specs


def _plan_permits(plan: _Plan, rng: random.Random, start: int) -> None:
    for permit_id, ptype, holder, member, address, description, final in _permit_specs(rng):
        apply: dict[str, Value] = {
            "id": permit_id,
            "type": ptype,
            "address": address,
            "description": description,
        }
        if permit_id == "LIC-HCFC-0001":
            apply["hs_codes"] = ["2903"]
        plan.add(P_IDENTITY, holder, member, "permit.apply", apply)
        office = _office(holder)
        window = {
            "expired": (start - 400 * DAY, start - 35 * DAY),
            "issued": (start - 100 * DAY, start + 730 * DAY),
        }.get(final, (start - 50 * DAY, start + 365 * DAY))
        for step in _PERMIT_STEPS[final]:
            body: dict[str, Value] = {"permit_id": permit_id}
            if step == "issue":
                body |= {"valid_from": window[0], "valid_until": window[1]}
            elif step == "deny":
                body["reason"] = "incomplete fire-safety plan"
            plan.add(P_DECLARE, office, "clerk", f"permit.{step}", body)
        _plan_permit_aftercare(plan, office, permit_id, final, window)


def _plan_permit_aftercare(
    plan: _Plan, office: str, permit_id: str, final: str, window: tuple[int, int]
) -> None:
    if final == "suspended":
        plan.add(
            P_DOCS,
            office,
            "inspector",
            "permit.inspect",
            {"permit_id": permit_id, "result": "fail", "notes": "fire exits blocked"},
        )
        plan.add(
            P_DOCS,
            office,
            "clerk",
            "permit.suspend",
            {"permit_id": permit_id, "reason": "failed fire inspection"},
        )
    elif final == "revoked":
        plan.add(
            P_DOCS,
            office,
            "clerk",
            "permit.revoke",
            {"permit_id": permit_id, "reason": "works differ from the approved plans"},
        )
    elif final == "issued" and permit_id == "BSN-BLD-0001":
        plan.add(
            P_DOCS,
            office,
            "inspector",
            "permit.inspect",
            {"permit_id": permit_id, "result": "pass", "notes": "foundations as approved"},
        )
        plan.add(
            P_DOCS,
            office,
            "clerk",
            "permit.renew",
            {"permit_id": permit_id, "valid_until": window[1] + 365 * DAY},
        )


# --- shipments --------------------------------------------------------------------------------


@dataclass
class _Shipment:
    id: str
    export: bool
    origin: str
    destination: str
    consignor: tuple[str, str]  # (org, member)
    consignee: str
    declarant: tuple[str, str]
    carrier: str
    haulier: str
    customs: tuple[str, str]
    goods: list[Value]
    containers: list[str]
    t0: int
    transit_days: int
    fate: str  # delivered | held_released | held | seized | in_transit | at_port
    p0: int = P_DECLARE


class _Containers:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.used: set[str] = set(LONG_HISTORY_CONTAINERS)

    def draw(self, carrier: str) -> str:
        owner = data.CONTAINER_OWNERS.get(carrier, "KOLU")[:3]
        while True:
            first_ten = f"{owner}U{self.rng.randrange(1_000_000):06d}"
            number = with_check_digit(first_ten)
            if iso6346_remainder(first_ten) != 10 and number not in self.used:
                self.used.add(number)
                return number


def _goods(rng: random.Random, country: str, restricted: bool) -> list[Value]:
    catalogue = data.GOODS_BY_ORIGIN[country]
    picks = [data.RESTRICTED_GOODS] if restricted else []
    picks += rng.sample(catalogue, k=min(len(catalogue), rng.randint(1, 3)))
    currency = "USD" if country == "KR" else data.CURRENCY[country]
    lines: list[Value] = []
    for hs, description, unit, unit_value in picks:
        quantity = rng.randint(10, 2000) if unit == "C62" else rng.randint(500, 20_000)
        lines.append(
            {
                "hs_code": hs,
                "description": description,
                "quantity": quantity,
                "unit": unit,
                "value": quantity * unit_value,
                "currency": currency,
            }
        )
    return lines


def _import_fate(n: int) -> str:
    fates = {1: "held_released", 2: "held", 3: "seized", 5: "in_transit", 6: "in_transit"}
    fates |= {7: "at_port", 8: "at_port", 9: "held_released", 10: "held_released"}
    return fates.get(n, "delivered")


def _make_imports(rng: random.Random, containers: _Containers, start: int) -> list[_Shipment]:
    out = []
    for n in range(1, IMPORT_COUNT + 1):
        lane = data.IMPORT_LANES[0 if n in (1, 4, 12) else rng.randrange(len(data.IMPORT_LANES))]
        origin, consignor, carrier, transit = lane
        consignee = "hanbit-electronics" if n in (1, 4, 12) else rng.choice(data.IMPORTERS)
        sejong = consignee == "sejong-agritech"
        declarant = (
            ("incheon-forwarders", "clerk") if n % 5 == 0 else ("busan-customs-brokers", "clerk")
        )
        customs = (
            ("sejong-customs", "officer")
            if sejong
            else ("busan-customs", "officer-kim" if n % 2 else "officer-park")
        )
        sid = f"SHP-{n:04d}"
        boxes = (
            LONG_HISTORY_CONTAINERS
            if sid == LONG_HISTORY
            else [containers.draw(carrier) for _ in range(rng.randint(1, 3))]
        )
        span = (transit + 6) * DAY
        t0 = start - 60 * DAY if sid == REUSE_SOURCE else start - span - rng.randint(1, 20) * DAY
        out.append(
            _Shipment(
                id=sid,
                export=False,
                origin=origin,
                destination="KRPUS",
                consignor=(consignor, "clerk"),
                consignee=consignee,
                declarant=declarant,
                carrier=carrier,
                haulier="sejong-logistics" if sejong else "busan-haulage",
                customs=customs,
                goods=_goods(rng, origin[:2], restricted=sid == RESTRICTED),
                containers=list(boxes),
                t0=t0 - rng.randint(0, 12) * HOUR,
                transit_days=transit,
                fate=_import_fate(n),
            )
        )
    return out


def _make_exports(
    rng: random.Random, containers: _Containers, start: int, reuse: str
) -> list[_Shipment]:
    out = []
    for n in range(IMPORT_COUNT + 1, IMPORT_COUNT + EXPORT_COUNT + 2):
        second = n == IMPORT_COUNT + EXPORT_COUNT + 1
        destination, consignee, carrier, transit = data.EXPORT_LANES[
            0 if second else rng.randrange(len(data.EXPORT_LANES))
        ]
        shipper = "hanbit-electronics" if second or rng.random() < 0.6 else "sejong-agritech"
        member = "clerk-2" if shipper == "hanbit-electronics" else "clerk"
        t0 = start - 30 * DAY if second else start - (transit + 6) * DAY - rng.randint(1, 20) * DAY
        out.append(
            _Shipment(
                id=f"SHP-{n:04d}",
                export=True,
                origin="KRPUS",
                destination=destination,
                consignor=(shipper, member),
                consignee=consignee,
                declarant=(shipper, member),
                carrier=carrier,
                haulier=carrier,
                customs=("busan-customs", "officer-park"),
                goods=_goods(rng, "KR", restricted=False),
                containers=[reuse] if second else [containers.draw(carrier)],
                t0=t0,
                transit_days=transit,
                fate="in_transit" if n in (IMPORT_COUNT + 3, IMPORT_COUNT + 9) else "delivered",
                p0=SECOND_WAVE if second else P_DECLARE,
            )
        )
    return out


def _doc(seed: int, s: _Shipment, doc_type: str) -> dict[str, Value]:
    digest = hashlib.sha256(f"{s.id}/{doc_type}/{seed}".encode()).digest()
    return {
        "shipment_id": s.id,
        "type": doc_type,
        "sha256": digest,
        "uri": f"https://docs.{s.consignor[0]}.example/{s.id}/{doc_type}.pdf",
    }


def _declare(plan: _Plan, s: _Shipment) -> None:
    plan.add(
        s.p0,
        *s.declarant,
        "shipment.declare",
        {
            "id": s.id,
            "consignor": s.consignor[0],
            "consignee": s.consignee,
            "declarant": s.declarant[0],
            "origin": s.origin,
            "destination": s.destination,
            "goods": s.goods,
            "containers": s.containers,
            "time_ms": s.t0,
        },
    )


def _decision(plan: _Plan, phase: int, s: _Shipment, decision: str, reason: str, t: int) -> None:
    body: dict[str, Value] = {
        "shipment_id": s.id,
        "decision": decision,
        "reason": reason,
        "time_ms": t,
    }
    if decision == "clear" and s.id == RESTRICTED:
        body["licence_id"] = "LIC-HCFC-0001"
    plan.add(phase, *s.customs, "shipment.customs_decision", body)


def _milestone(
    plan: _Plan, phase: int, org: str, member: str, s: _Shipment, event: str, place: str, t: int
) -> None:
    plan.add(
        phase,
        org,
        member,
        "shipment.milestone",
        {"shipment_id": s.id, "event": event, "place": place, "time_ms": t},
    )


def _handover(
    plan: _Plan, phase: int, s: _Shipment, giver: tuple[str, str], taker: str, t: int
) -> None:
    """Offer in ``phase``, accept (by the taker's ops) at the start of ``phase + 1``."""
    plan.add(
        phase,
        *giver,
        "shipment.offer_custody",
        {"shipment_id": s.id, "to": taker, "time_ms": t},
    )
    plan.add(
        phase + 1,
        taker,
        "ops",
        "shipment.accept_custody",
        {"shipment_id": s.id, "time_ms": t + 2 * HOUR},
    )


def _plan_sailing(plan: _Plan, seed: int, s: _Shipment) -> int:
    """Declare, documents, handover to the ocean carrier, departure; returns arrival time."""
    p, t = s.p0, s.t0
    _declare(plan, s)
    docs = ["commercial_invoice", "packing_list", "certificate_of_origin"]
    if s.id == LONG_HISTORY:
        docs.append("import_licence")
    for doc_type in docs:
        plan.add(p + 1, *s.consignor, "shipment.attach_document", _doc(seed, s, doc_type))
    _handover(plan, p + 1, s, s.consignor, s.carrier, t + 2 * HOUR)
    plan.add(p + 2, s.carrier, "ops", "shipment.attach_document", _doc(seed, s, "bill_of_lading"))
    for event, hours in (("gate_in", 22), ("loaded", 30), ("departed", 34)):
        _milestone(plan, p + 2, s.carrier, "ops", s, event, s.origin, t + hours * HOUR)
    return t + 34 * HOUR + s.transit_days * DAY


def _plan_import(plan: _Plan, seed: int, s: _Shipment) -> None:
    arrived = _plan_sailing(plan, seed, s)
    if s.fate == "in_transit":
        return
    p = P_ARRIVE
    _milestone(plan, p, s.carrier, "ops", s, "arrived", "KRPUS", arrived)
    _milestone(plan, p, "busan-port", "ops", s, "discharged", "KRPUS", arrived + 6 * HOUR)
    if s.fate == "at_port":
        return
    t = arrived + 8 * HOUR
    if s.fate in ("held_released", "held", "seized"):
        _decision(plan, p, s, "hold", "X-ray image does not match the declared goods", t)
        if s.fate == "held":
            return
        _decision(plan, p + 1, s, "inspect", "physical examination ordered", t + DAY)
        if s.fate == "seized":
            _decision(plan, p + 2, s, "seize", "undeclared goods found at inspection", t + 2 * DAY)
            return
        _decision(plan, p + 2, s, "clear", "inspection found goods as declared", t + 2 * DAY)
        _decision(plan, p + 2, s, "release", "duties paid", t + 2 * DAY + 2 * HOUR)
        p, t = p + 3, t + 2 * DAY + 4 * HOUR
    else:
        _decision(plan, p, s, "clear", "documentary check passed", t)
        _decision(plan, p, s, "release", "duties paid", t + 2 * HOUR)
        p, t = p + 1, t + 4 * HOUR
    _handover(plan, p, s, (s.carrier, "ops"), s.haulier, t)
    _milestone(plan, p + 1, s.haulier, "ops", s, "gate_out", "KRPUS", t + 5 * HOUR)
    plan.add(
        p + 2,
        s.haulier,
        "ops",
        "shipment.deliver",
        {"shipment_id": s.id, "place": "KRPUS", "time_ms": t + 15 * HOUR},
    )


def _plan_export(plan: _Plan, seed: int, s: _Shipment) -> None:
    t = s.t0 + 12 * HOUR
    _decision(plan, s.p0 + 1, s, "clear", "export declaration accepted", t)
    _decision(plan, s.p0 + 1, s, "release", "released for export", t + HOUR)
    arrived = _plan_sailing(plan, seed, s)
    if s.fate == "in_transit":
        return
    p = s.p0 + 3
    _milestone(plan, p, s.carrier, "ops", s, "arrived", s.destination, arrived)
    _milestone(plan, p, s.carrier, "ops", s, "discharged", s.destination, arrived + 6 * HOUR)
    plan.add(
        p + 1,
        s.carrier,
        "ops",
        "shipment.deliver",
        {"shipment_id": s.id, "place": s.destination, "time_ms": arrived + DAY},
    )


def _plan_shipments(plan: _Plan, rng: random.Random, seed: int, start: int) -> list[_Shipment]:
    containers = _Containers(rng)
    imports = _make_imports(rng, containers, start)
    reuse = next(s for s in imports if s.id == REUSE_SOURCE).containers[0]
    exports = _make_exports(rng, containers, start, reuse)
    for s in imports:
        _plan_import(plan, seed, s)
    for s in exports:
        _plan_export(plan, seed, s)
    return imports + exports


# --- energy -----------------------------------------------------------------------------------


def energy_intervals(start_time_ms: int) -> dict[str, list[int]]:
    """Interval starts used by the demo: readings, settled markets, and one open market.

    Two days before the start, around noon in Korea (03:00 UTC).
    """
    day = start_time_ms - start_time_ms % DAY - 2 * DAY
    return {
        "readings": [day + 2 * HOUR + k * INTERVAL_MS for k in range(4)],
        "settled": [day + 3 * HOUR + k * INTERVAL_MS for k in range(3)],
        "open": [day + 4 * HOUR],
    }


def _meters() -> list[tuple[str, PrivateKey, int]]:
    out = []
    for org, (count, typical) in data.PROSUMER_METERS.items():
        for k in range(count):
            out.append((org, PrivateKey.from_label(f"demo/meter/{org}/{k}"), typical))
    return out


def _plan_energy(plan: _Plan, rng: random.Random, start: int) -> None:
    intervals = energy_intervals(start)
    regulator = ("sejong-energy", "regulator")
    for org, meter, _typical in _meters():
        plan.add(
            P_IDENTITY,
            *regulator,
            "energy.register_meter",
            {"meter_key": meter.public_key, "owner": org, "name": f"{org} meter"},
        )
    for org in data.PROSUMER_METERS:
        amount = 200_000 if org in data.BUYERS else 20_000
        plan.add(
            P_IDENTITY,
            *regulator,
            "energy.credit_balance",
            {"account": org, "amount": amount, "reference": f"prepayment {org}"},
        )
    minted: dict[str, int] = dict.fromkeys(data.PROSUMER_METERS, 0)
    for org, meter, typical in _meters():
        for start_ms in intervals["readings"]:
            produced = typical * rng.randint(70, 130) // 100
            consumed = rng.randint(100, 900) if org in data.BUYERS else rng.randint(50, 400)
            minted[org] += produced
            plan.add(
                P_DECLARE,
                org,
                "owner",
                "energy.submit_reading",
                {
                    "meter_key": meter.public_key,
                    "interval_start_ms": start_ms,
                    "produced_wh": produced,
                    "consumed_wh": consumed,
                    "signature": sign_reading(meter, plan.chain_id, start_ms, produced, consumed),
                },
            )
    _plan_orders(plan, rng, intervals, minted)


def _plan_orders(
    plan: _Plan, rng: random.Random, intervals: dict[str, list[int]], minted: dict[str, int]
) -> None:
    handles: list[int] = []
    for start_ms in intervals["settled"] + intervals["open"]:
        for org in data.SELLERS:
            quantity = max(1, minted[org] * rng.randint(8, 18) // 100)
            price = rng.randint(110, 170)
            plan.add(
                P_DOCS,
                org,
                "owner",
                "energy.place_order",
                _order(start_ms, "offer", quantity, price),
            )
        for org in data.BUYERS:
            quantity, price = rng.randint(500, 4000), rng.randint(120, 200)
            handles.append(
                plan.add(
                    P_DOCS,
                    org,
                    "owner",
                    "energy.place_order",
                    _order(start_ms, "bid", quantity, price),
                )
            )
    cancelled = handles[len(data.BUYERS) + 1]  # second interval, second buyer
    plan.add(
        P_SAIL,
        data.BUYERS[1],
        "owner",
        "energy.cancel_order",
        lambda built: {"order_id": built[cancelled].hash.hex()},
    )
    settled = intervals["settled"]
    plan.add(
        P_ARRIVE, "sejong-energy", "regulator", "energy.settle", {"interval_start_ms": settled[0]}
    )
    plan.add(
        P_ARRIVE, "sejong-energy", "regulator", "energy.settle", {"interval_start_ms": settled[1]}
    )
    plan.add(P_ARRIVE, data.BUYERS[0], "owner", "energy.settle", {"interval_start_ms": settled[2]})
    replaced = PrivateKey.from_label(f"demo/meter/{data.BUYERS[2]}/0")
    plan.add(
        P_ARRIVE,
        "sejong-energy",
        "regulator",
        "energy.revoke_meter",
        {"meter_key": replaced.public_key, "reason": "replaced by a smart meter"},
    )


def _order(start_ms: int, side: str, quantity: int, price: int) -> dict[str, Value]:
    return {
        "interval_start_ms": start_ms,
        "side": side,
        "quantity_wh": quantity,
        "price_per_kwh": price,
    }


# --- public API -------------------------------------------------------------------------------


def demo_phases(
    chain_id: str, seed: int = DEFAULT_SEED, start_time_ms: int = DEFAULT_START_MS
) -> list[list[Transaction]]:
    """The whole scenario as ordered phases of signed transactions (see the module docstring)."""
    plan = _Plan(chain_id)
    rng = random.Random(seed)
    _plan_identity(plan)
    _plan_permits(plan, rng, start_time_ms)
    _plan_shipments(plan, rng, seed, start_time_ms)
    _plan_energy(plan, rng, start_time_ms)
    return plan.build()


def demo_summary(seed: int = DEFAULT_SEED, start_time_ms: int | None = None) -> dict[str, Value]:
    """Ids worth querying after loading the demo (the same for every seed)."""
    del seed
    summary: dict[str, Value] = {
        "long_history_shipment": LONG_HISTORY,
        "container": LONG_HISTORY_CONTAINERS[0],
        "held_shipment": HELD,
        "seized_shipment": SEIZED,
        "restricted_shipment": RESTRICTED,
        "reused_container_shipments": [REUSE_SOURCE, REUSE_EXPORT],
        "party": "hanbit-electronics",
        "permit": "BSN-BLD-0001",
        "expired_permit": "BSN-BUS-0007",
        "import_licence": "LIC-HCFC-0001",
        "energy_account": "sejong-solar-coop",
        "energy_regulator_org": "sejong-energy",
        "auditor_label": member_label("busan-audit", "auditor"),
        "customs_officer_label": member_label("busan-customs", "officer-kim"),
    }
    if start_time_ms is not None:
        intervals = energy_intervals(start_time_ms)
        summary["settled_interval_start_ms"] = intervals["settled"][0]
        summary["open_interval_start_ms"] = intervals["open"][0]
    return summary
