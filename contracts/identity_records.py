"""Identity records as stored: organisations at ``org/<id>`` and member keys at
``member/<hex>`` (:mod:`contracts.state_keys`).

Handlers read them through :func:`load_org` and :func:`load_member` and store them
with :meth:`~contracts.context.TxContext.save`.
"""

from __future__ import annotations

from dataclasses import field

from contracts import state_keys as sk
from contracts.context import TxContext
from contracts.fields import ANY_TEXT, ORG_ID, stored
from ledger.encoding import MAX_SIZE
from ledger.schema import PUBLIC_KEY, Bool, Described, List, Str, wire


@stored("organisation")
class Organisation(Described):
    """An organisation: its kind, city, whether it founded the chain, its member keys (hex)."""

    id: str = field(metadata=wire(ORG_ID))
    name: str
    kind: str
    city: str
    founding: bool = field(metadata=wire(Bool()))
    members: tuple[str, ...] = field(
        metadata=wire(List(Str(max_len=64, min_len=64), max_len=MAX_SIZE))
    )
    registered_height: int

    @property
    def key(self) -> bytes:
        return sk.org_key(self.id)


@stored("member")
class Member(Described):
    """A member key: its organisation, roles (sorted), status and revocation."""

    public_key: bytes = field(metadata=wire(PUBLIC_KEY))
    org: str = field(metadata=wire(ORG_ID))
    roles: tuple[str, ...] = field(metadata=wire(List(ANY_TEXT, max_len=64)))
    name: str
    status: str
    registered_height: int
    revoked_height: int | None
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
    return ctx.require_record(sk.org_key(org_id), Organisation, "organisation", org_id)


def load_member(ctx: TxContext, public_key: bytes) -> Member:
    """The member record of ``public_key``; ``not_found`` when it was never registered."""
    return ctx.require_record(sk.member_key(public_key), Member, "member", public_key.hex())
