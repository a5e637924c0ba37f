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

import random
from dataclasses import dataclass

from devnet import demo_data as data
from devnet.demo_energy import energy_intervals, plan_energy
from devnet.demo_keys import operators_in_turn
from devnet.demo_permits import plan_permits
from devnet.demo_plan import (
    DAY,
    DEFAULT_SEED,
    DEFAULT_START_MS,
    HELD,
    INTERVAL_MS,
    LONG_HISTORY,
    LONG_HISTORY_CONTAINERS,
    P_IDENTITY,
    RESTRICTED,
    REUSE_EXPORT,
    REUSE_SOURCE,
    SEIZED,
    Plan,
    member_label,
)
from devnet.demo_shipments import plan_shipments
from ledger.crypto import PrivateKey
from ledger.encoding import Value
from ledger.founding_checks import DEFAULT_MIN_VALIDATORS, MIN_VALIDATORS_KEY
from ledger.genesis import Genesis, Member, Organisation
from ledger.tx import Transaction
from ledger.validators import Validator, ValidatorSet

__all__ = [
    "DEFAULT_SEED",
    "DEFAULT_START_MS",
    "DemoMember",
    "DemoOrg",
    "app_params",
    "demo_genesis",
    "demo_organisations",
    "demo_phases",
    "demo_summary",
    "energy_intervals",
    "genesis_organisations",
    "member_label",
]


# --- organisations ---------------------------------------------------------------------------


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
    """A genesis holding the demo organisations (one demo validator unless given): a
    devnet one, since every key in it is derived from a label in the source."""
    if validators is None:
        validators = ValidatorSet(
            (Validator("demo-0", PrivateKey.from_label("demo/validator-0").public_key, 1),)
        )
    organisations = tuple(genesis_organisations(seed))
    app = app_params()
    if len(validators) < DEFAULT_MIN_VALIDATORS:
        app[MIN_VALIDATORS_KEY] = len(validators)
    keys = [v.public_key for v in validators.validators]
    return Genesis(
        chain_id,
        genesis_time_ms,
        validators,
        organisations,
        app=app,
        devnet=True,
        validator_orgs=operators_in_turn(keys, organisations),
    )


# --- identity ---------------------------------------------------------------------------------


def plan_identity(plan: Plan) -> None:
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


# --- public API -------------------------------------------------------------------------------


def demo_phases(
    chain_id: str, seed: int = DEFAULT_SEED, start_time_ms: int = DEFAULT_START_MS
) -> list[list[Transaction]]:
    """The whole scenario as ordered phases of signed transactions (see the module docstring)."""
    plan = Plan(chain_id)
    rng = random.Random(seed)
    plan_identity(plan)
    plan_permits(plan, rng, start_time_ms)
    plan_shipments(plan, rng, seed, start_time_ms)
    plan_energy(plan, rng, start_time_ms)
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
