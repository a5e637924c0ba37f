"""Identity payloads: the described form of each ``identity.*`` transaction.

A new member names its key, a display name and distinct roles from
:data:`MEMBER_ROLES` (which roles its organisation's kind may grant is a state
check, made by the handler). A new organisation lists at most
:data:`MAX_NEW_MEMBERS` first members with distinct keys, at least one an admin.
The handlers are in :mod:`contracts.identity`.
"""

from __future__ import annotations

from dataclasses import field

from contracts.errors import bad_payload
from contracts.fields import ORG_ID, payload, text
from ledger.genesis import ORG_KINDS, ROLES
from ledger.schema import PUBLIC_KEY, Choice, Described, List, Mapped, Nested, wire

# "meter" is never a member role: meters are registered by the regulator.
MEMBER_ROLES = ROLES - {"meter"}
MAX_NEW_MEMBERS = 16

ROLE_LIST = Mapped(
    List(Choice(MEMBER_ROLES), min_len=1, max_len=len(MEMBER_ROLES), distinct=True),
    lambda roles: tuple(sorted(roles)),
    lambda roles: roles,
)
"""Distinct member roles, held sorted."""


@payload("identity.register_member")
class NewMember(Described):
    """An organisation's admin registers a new member key of that organisation."""

    public_key: bytes = field(metadata=wire(PUBLIC_KEY))
    name: str = field(metadata=wire(text(100)))
    roles: tuple[str, ...] = field(metadata=wire(ROLE_LIST))


def check_distinct_keys(members: tuple[NewMember, ...], what: str) -> None:
    """A list of new members names each key once."""
    if len({m.public_key for m in members}) != len(members):
        raise bad_payload(f"{what}: a member key is listed twice")


@payload("identity.register_org")
class RegisterOrg(Described):
    """An admin of a founding agency registers a new organisation and its first members."""

    id: str = field(metadata=wire(ORG_ID))
    name: str = field(metadata=wire(text(200)))
    kind: str = field(metadata=wire(Choice(ORG_KINDS)))
    city: str = field(metadata=wire(text(100)))
    members: tuple[NewMember, ...] = field(
        metadata=wire(List(Nested(NewMember), min_len=1, max_len=MAX_NEW_MEMBERS))
    )

    def __post_init__(self) -> None:
        check_distinct_keys(self.members, "identity.register_org")
        if not any("admin" in m.roles for m in self.members):
            raise bad_payload("identity.register_org: at least one member must be an admin")


@payload("identity.revoke_member")
class RevokeMember(Described):
    """An organisation's admin revokes one of its member keys; it can send nothing afterwards."""

    public_key: bytes = field(metadata=wire(PUBLIC_KEY))
    reason: str = field(metadata=wire(text()))
