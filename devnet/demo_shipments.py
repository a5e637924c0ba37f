"""The demo's shipments: imports and exports with documents, sailings, customs decisions
and custody hand-overs, including one long history and a re-used container."""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass

from contracts.codes import iso6346_remainder, with_check_digit
from devnet import demo_data as data
from devnet.demo_plan import (
    DAY,
    EXPORT_COUNT,
    HOUR,
    IMPORT_COUNT,
    LONG_HISTORY,
    LONG_HISTORY_CONTAINERS,
    P_ARRIVE,
    P_DECLARE,
    RESTRICTED,
    REUSE_SOURCE,
    SECOND_WAVE,
    Plan,
)
from devnet.payloads import goods_line
from ledger.encoding import Value


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
        lines.append(goods_line(hs, description, unit, unit_value, quantity, currency))
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


def _declare(plan: Plan, s: _Shipment) -> None:
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


def _decision(plan: Plan, phase: int, s: _Shipment, decision: str, reason: str, t: int) -> None:
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
    plan: Plan, phase: int, org: str, member: str, s: _Shipment, event: str, place: str, t: int
) -> None:
    plan.add(
        phase,
        org,
        member,
        "shipment.milestone",
        {"shipment_id": s.id, "event": event, "place": place, "time_ms": t},
    )


def _handover(
    plan: Plan, phase: int, s: _Shipment, giver: tuple[str, str], taker: str, t: int
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


def _confirm_parties(plan: Plan, p: int, s: _Shipment, t: int) -> None:
    """Consignor and consignee named by another organisation's declarant confirm their roles
    (the consignor before it acts as the holder, in the same phase: nonce order)."""
    body: dict[str, Value] = {"shipment_id": s.id, "time_ms": t}
    if s.consignor[0] != s.declarant[0]:
        plan.add(p, *s.consignor, "shipment.confirm_party", body)
    if s.consignee != s.declarant[0]:
        plan.add(p, s.consignee, "clerk", "shipment.confirm_party", body)


def _plan_sailing(plan: Plan, seed: int, s: _Shipment) -> int:
    """Declare, confirmations, documents, handover to the ocean carrier, departure; returns
    arrival time."""
    p, t = s.p0, s.t0
    _declare(plan, s)
    _confirm_parties(plan, p + 1, s, t + HOUR)
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


def _plan_import(plan: Plan, seed: int, s: _Shipment) -> None:
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


def _plan_export(plan: Plan, seed: int, s: _Shipment) -> None:
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


def plan_shipments(plan: Plan, rng: random.Random, seed: int, start: int) -> list[_Shipment]:
    containers = _Containers(rng)
    imports = _make_imports(rng, containers, start)
    reuse = next(s for s in imports if s.id == REUSE_SOURCE).containers[0]
    exports = _make_exports(rng, containers, start, reuse)
    for s in imports:
        _plan_import(plan, seed, s)
    for s in exports:
        _plan_export(plan, seed, s)
    return imports + exports
