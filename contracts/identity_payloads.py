"""Identity payloads: the parsed, checked form of each ``identity.*`` transaction.

A new member names its key, a display name and distinct roles from
:data:`MEMBER_ROLES` (which roles its organisation's kind may grant is a state
check, made by the handler). A new organisation lists at most
:data:`MAX_NEW_MEMBERS` first members with distinct keys, at least one an admin.
The handlers are in :mod:`contracts.identity`.
"""

from __future__ import annotations

from dataclasses import dataclass

from contracts.errors import bad_payload
from contracts.payload import Fields
from ledger.encoding import Value
from ledger.genesis import ORG_KINDS, ROLES

# "meter" is never a member role: meters are registered by the regulator.
MEMBER_ROLES = ROLES - {"meter"}
MAX_NEW_MEMBERS = 16


# --- payloads --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NewMember:
    public_key: bytes
    name: str
    roles: tuple[str, ...]


def _parse_member(f: Fields) -> NewMember:
    key = f.raw("public_key", size=32)
    name = f.text("name", max_len=100)
    raw_roles = f.items("roles", min_len=1, max_len=len(MEMBER_ROLES))
    roles = [r for r in raw_roles if isinstance(r, str) and r in MEMBER_ROLES]
    if len(roles) != len(raw_roles) or len(set(roles)) != len(roles):
        raise bad_payload(f"roles must be distinct and from {sorted(MEMBER_ROLES)}")
    f.done()
    return NewMember(key, name, tuple(sorted(roles)))


@dataclass(frozen=True, slots=True)
class RegisterOrg:
    id: str
    name: str
    kind: str
    city: str
    members: tuple[NewMember, ...]


def parse_register_org(payload: Value) -> RegisterOrg:
    f = Fields(payload, "identity.register_org")
    org_id = f.org_id("id")
    name = f.text("name", max_len=200)
    kind = f.choice("kind", ORG_KINDS)
    city = f.text("city", max_len=100)
    raw = f.items("members", min_len=1, max_len=MAX_NEW_MEMBERS)
    members = tuple(_parse_member(f.sub(m, i, "members")) for i, m in enumerate(raw))
    f.done()
    if len({m.public_key for m in members}) != len(members):
        raise bad_payload("identity.register_org: a member key is listed twice")
    if not any("admin" in m.roles for m in members):
        raise bad_payload("identity.register_org: at least one member must be an admin")
    return RegisterOrg(org_id, name, kind, city, members)


def parse_register_member(payload: Value) -> NewMember:
    return _parse_member(Fields(payload, "identity.register_member"))


@dataclass(frozen=True, slots=True)
class RevokeMember:
    public_key: bytes
    reason: str


def parse_revoke_member(payload: Value) -> RevokeMember:
    f = Fields(payload, "identity.revoke_member")
    out = RevokeMember(f.raw("public_key", size=32), f.text("reason"))
    f.done()
    return out
