"""The demo's permits: applications in every status, and their aftercare."""

from __future__ import annotations

import random

from devnet import demo_data as data
from devnet.demo_plan import (
    DAY,
    EXTRA_PERMITS,
    P_DECLARE,
    P_DOCS,
    P_IDENTITY,
    Plan,
)
from ledger.encoding import Value

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


def plan_permits(plan: Plan, rng: random.Random, start: int) -> None:
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
    plan: Plan, office: str, permit_id: str, final: str, window: tuple[int, int]
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
