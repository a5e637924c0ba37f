"""Identity records as stored: organisations at ``org/<id>`` and member keys at
``member/<hex>`` (:mod:`contracts.state_keys`)."""

from __future__ import annotations

from dataclasses import dataclass

from contracts import state_keys as sk
from contracts.context import TxContext
from contracts.record import Natural, Record


@dataclass(frozen=True, slots=True)
class Organisation(Record):
    """An organisation: its kind, city, whether it founded the chain, its member keys (hex)."""

    record_type = "organisation"
    id: str
    name: str
    kind: str
    city: str
    founding: bool
    members: tuple[str, ...]
    registered_height: Natural

    @property
    def key(self) -> bytes:
        return sk.org_key(self.id)


@dataclass(frozen=True, slots=True)
class Member(Record):
    """A member key: its organisation, roles (sorted), status and revocation."""

    record_type = "member"
    public_key: bytes
    org: str
    roles: tuple[str, ...]
    name: str
    status: str
    registered_height: Natural
    revoked_height: Natural | None
    revoked_reason: str

    @property
    def key(self) -> bytes:
        return sk.member_key(self.public_key)

    @property
    def active(self) -> bool:
        return self.status == "active"


def new_member(
    public_key: bytes, org_id: str, roles: tuple[str, ...], name: str, height: int
) -> Member:
    """An active member registered at ``height``."""
    return Member(public_key, org_id, tuple(sorted(roles)), name, "active", height, None, "")


def load_org(ctx: TxContext, org_id: str) -> Organisation:
    """Organisation ``org_id``; ``not_found`` when it does not exist."""
    return Organisation.from_obj(ctx.require(sk.org_key(org_id), "organisation", org_id))


def save(ctx: TxContext, record: Organisation | Member) -> None:
    ctx.store(record.key, record.to_obj())
