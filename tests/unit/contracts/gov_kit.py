"""Shared pieces of the governance tests: founders' keys, proposal payloads, a chain with
a validator set (the consensus side's context hooks, faked)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest

from contracts import engine
from contracts.context import TxContext
from contracts.governance_records import Proposal, proposal_key
from contracts.record_cache import typed_record
from ledger.block import Receipt
from ledger.crypto import PrivateKey
from ledger.encoding import Value
from ledger.validators import Validator, ValidatorSet

from .harness import Chain, key, member_key

# the test world's founding agencies with an admin ("audit" has none): 4 of 5 are needed
FOUNDERS = ["customs", "port", "permits", "energy"]
ADMIN = {org: member_key(org, "admin") for org in [*FOUNDERS, "exporter", "carrier-a"]}


def role_grant(
    org: str = "port", label: str = "new-officer", roles: tuple[str, ...] = ("customs",)
) -> dict[str, Value]:
    return grant(org, [(key(label).public_key, label, roles)])


def grant(org: str, members: list[tuple[bytes, str, tuple[str, ...]]]) -> dict[str, Value]:
    listed: list[Value] = [
        {"public_key": pk, "name": name, "roles": list(roles)} for pk, name, roles in members
    ]
    return {"kind": "role-grant", "change": {"org": org, "members": listed}}


def proposal_id(receipt: Receipt) -> str:
    for event in receipt.events:
        if event.type == "gov.proposed":
            pid = event.attrs["id"]
            assert isinstance(pid, str)
            return pid
    raise AssertionError("no gov.proposed event")


def proposal(chain: Chain, pid: str) -> Proposal:
    raw = chain.state.get(proposal_key(pid))
    assert raw is not None
    return typed_record(Proposal, raw)


def propose(chain: Chain, org: str, payload: dict[str, Value]) -> str:
    return proposal_id(chain.ok(ADMIN[org], "gov.propose", payload))


def approve_all(chain: Chain, pid: str, orgs: list[str]) -> list[Receipt]:
    return [chain.ok(ADMIN[org], "gov.approve", {"id": pid}) for org in orgs]


# --- a faked consensus side -----------------------------------------------------------------


@dataclass
class FakeConsensus:
    """What the consensus side gives the contexts: the set in force, liveness, a schedule."""

    validators: ValidatorSet
    last_signed: dict[bytes, int | None] = field(default_factory=dict)
    scheduled: list[tuple[int, list[Any]]] = field(default_factory=list)


VALIDATOR_KEYS = [PrivateKey.from_label(f"gov-test/validator-{i}") for i in range(5)]


def validator_set(n: int = 4) -> ValidatorSet:
    # named after the agencies: each belongs to a different organisation
    orgs = ["customs", "port", "permits", "energy", "audit"]
    return ValidatorSet(
        tuple(Validator(orgs[i], VALIDATOR_KEYS[i].public_key, 1) for i in range(n))
    )


@contextmanager
def consensus(monkeypatch: pytest.MonkeyPatch, fake: FakeConsensus) -> Iterator[FakeConsensus]:
    """Run the engine with contexts that carry the consensus side's hooks."""

    class Ctx(TxContext):
        @property
        def validators(self) -> ValidatorSet:
            """The set in force: updates scheduled at H are in force from H+2."""
            seats = {v.public_key: v for v in fake.validators.validators}
            for height, updates in fake.scheduled:
                if height + 2 > self.height:
                    continue
                for u in updates:
                    if u.power == 0:
                        seats.pop(u.public_key, None)
                    else:
                        seats[u.public_key] = Validator(u.name, u.public_key, u.power)
            return ValidatorSet(tuple(seats.values()))

        def schedule_validator_updates(self, updates: list[Any]) -> None:
            fake.scheduled.append((self.height, list(updates)))

        def last_signed_height(self, public_key: bytes) -> int | None:
            return fake.last_signed.get(public_key)

    monkeypatch.setattr(engine, "TxContext", Ctx)
    yield fake
