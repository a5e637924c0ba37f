"""Identity and roles: organisations, their member keys, registration and revocation.

Founding organisations and their members come from genesis. An admin of a
founding *agency* registers new organisations (with their first members); an
organisation's admin registers and revokes its own members. What roles a member
may hold depends on its organisation's kind, so a trader's admin can never mint
a customs officer. A revoked key can send nothing (the engine checks before any
handler runs). Member keys and meter keys share one key space: a key registered
as either can never be registered as the other (checked on both paths).
"""

from __future__ import annotations

from contracts import state_keys as sk
from contracts.context import Handler, TxContext, handler
from contracts.errors import ContractError, forbidden, wrong_state
from contracts.identity_payloads import (
    NewMember,
    RegisterOrg,
    RevokeMember,
    parse_register_member,
    parse_register_org,
    parse_revoke_member,
)
from ledger.encoding import Value, encode
from ledger.genesis import Genesis

# Roles an organisation of each kind may give its members. "meter" is never a
# member role: meters are registered by the regulator (energy.register_meter).
ORG_KIND_ROLES: dict[str, frozenset[str]] = {
    "agency": frozenset(
        {"admin", "customs", "port", "permit_office", "inspector", "energy_regulator", "auditor"}
    ),
    "carrier": frozenset({"admin", "carrier"}),
    "trader": frozenset({"admin", "trader"}),
    "customs_broker": frozenset({"admin", "trader"}),
    "prosumer": frozenset({"admin", "prosumer"}),
}


# --- records ---------------------------------------------------------------------------------


def org_record(
    org_id: str, name: str, kind: str, city: str, *, founding: bool, height: int
) -> dict[str, Value]:
    return {
        "id": org_id,
        "name": name,
        "kind": kind,
        "city": city,
        "founding": founding,
        "members": [],
        "registered_height": height,
    }


def member_record(
    public_key: bytes, org_id: str, roles: tuple[str, ...], name: str, height: int
) -> dict[str, Value]:
    return {
        "public_key": public_key,
        "org": org_id,
        "roles": sorted(roles),
        "name": name,
        "status": "active",
        "registered_height": height,
        "revoked_height": None,
        "revoked_reason": "",
    }


def genesis_identity(genesis: Genesis) -> dict[bytes, bytes]:
    """State of the founding organisations and members."""
    out: dict[bytes, bytes] = {}
    for org in genesis.organisations:
        record = org_record(org.id, org.name, org.kind, org.city, founding=True, height=0)
        record["members"] = [m.public_key.hex() for m in org.members]
        out[sk.org_key(org.id)] = encode(record)
        for m in org.members:
            out[sk.member_key(m.public_key)] = encode(
                member_record(m.public_key, org.id, m.roles, m.name, 0)
            )
    return out


# --- checks ----------------------------------------------------------------------------------


def require_org(ctx: TxContext, org_id: str) -> dict[str, Value]:
    return ctx.require(sk.org_key(org_id), "organisation", org_id)


def check_roles_for_kind(kind: str, member: NewMember) -> None:
    allowed = ORG_KIND_ROLES[kind]
    extra = sorted(set(member.roles) - allowed)
    if extra:
        raise ContractError(
            "forbidden_role", f"an organisation of kind {kind!r} cannot grant roles {extra}"
        )


def check_key_unused(ctx: TxContext, public_key: bytes) -> None:
    """One key space: a key is a member key or a meter key, never both, never twice."""
    if ctx.get(sk.member_key(public_key)) is not None:
        raise ContractError("duplicate", f"key {public_key.hex()[:16]}… is already registered")
    if ctx.get(sk.meter_key(public_key)) is not None:
        raise ContractError("duplicate", f"key {public_key.hex()[:16]}… is a registered meter key")


def add_member(ctx: TxContext, org: dict[str, Value], member: NewMember) -> None:
    ctx.store(
        sk.member_key(member.public_key),
        member_record(member.public_key, org["id"], member.roles, member.name, ctx.height),
    )
    org["members"].append(member.public_key.hex())
    ctx.emit(
        "identity.member_registered",
        {"org": org["id"], "public_key": member.public_key, "roles": list(member.roles)},
    )


# --- handlers --------------------------------------------------------------------------------


@handler(
    "identity.register_org",
    {"admin"},
    parse_register_org,
    "An admin of a founding agency registers a new organisation and its first members.",
)
def process_register_org(ctx: TxContext, p: RegisterOrg) -> None:
    own = require_org(ctx, ctx.sender.org)
    if not (own["founding"] and own["kind"] == "agency"):
        raise forbidden("only an admin of a founding agency may register organisations")
    if ctx.get(sk.org_key(p.id)) is not None:
        raise ContractError("duplicate", f"organisation {p.id!r} already exists")
    for m in p.members:
        check_roles_for_kind(p.kind, m)
        check_key_unused(ctx, m.public_key)
    org = org_record(p.id, p.name, p.kind, p.city, founding=False, height=ctx.height)
    ctx.emit(
        "identity.org_registered",
        {"org": p.id, "kind": p.kind, "city": p.city, "by": ctx.sender.org},
    )
    for m in p.members:
        add_member(ctx, org, m)
    ctx.store(sk.org_key(p.id), org)


@handler(
    "identity.register_member",
    {"admin"},
    parse_register_member,
    "An organisation's admin registers a new member key of that organisation.",
)
def process_register_member(ctx: TxContext, p: NewMember) -> None:
    org = require_org(ctx, ctx.sender.org)
    check_roles_for_kind(org["kind"], p)
    check_key_unused(ctx, p.public_key)
    add_member(ctx, org, p)
    ctx.store(sk.org_key(org["id"]), org)


@handler(
    "identity.revoke_member",
    {"admin"},
    parse_revoke_member,
    "An organisation's admin revokes one of its member keys; it can send nothing afterwards.",
)
def process_revoke_member(ctx: TxContext, p: RevokeMember) -> None:
    key = sk.member_key(p.public_key)
    member = ctx.require(key, "member", p.public_key.hex())
    if member["org"] != ctx.sender.org:
        raise forbidden("an admin may only revoke members of their own organisation")
    if p.public_key == ctx.sender.public_key:
        raise forbidden("an admin cannot revoke their own key")
    if member["status"] != "active":
        raise wrong_state("this member key is already revoked")
    member.update(status="revoked", revoked_height=ctx.height, revoked_reason=p.reason)
    ctx.store(key, member)
    ctx.emit(
        "identity.member_revoked",
        {"org": member["org"], "public_key": p.public_key, "reason": p.reason},
    )


HANDLERS: list[Handler] = [process_register_org, process_register_member, process_revoke_member]
