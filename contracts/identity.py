"""Identity and roles: organisations, their member keys, registration and revocation.

Founding organisations and their members come from genesis. An admin of a
founding *agency* registers new organisations (with their first members); an
organisation's admin registers and revokes its own members. What roles a member
may hold depends on its organisation's kind, so a trader's admin can never mint
a customs officer; and the privileged roles of ``gov_consent_roles`` (customs,
auditor, energy regulator, permit office by default) are never registered
directly, by anyone: only an executed ``role-grant`` governance proposal gives
them (:mod:`contracts.governance`), refused here with ``consent_required``.
Genesis members keep the roles the genesis gave them. A revoked key can send
nothing (the engine checks before any handler runs). Member keys and meter keys
share one key space: a key registered as either can never be registered as the
other (checked on both paths). Every organisation is filed in the
proven organisation directory (``search_buckets.ORGANISATIONS``) where it is
created, so a client resolving a name knows it saw them all. Payloads
are described in :mod:`contracts.identity_payloads`, records in
:mod:`contracts.identity_records`.
"""

from __future__ import annotations

from contracts import search_buckets as sb
from contracts import state_keys as sk
from contracts.context import Handler, TxContext, handler
from contracts.errors import ContractError, forbidden, wrong_state
from contracts.governance_params import gov_params
from contracts.identity_payloads import NewMember, RegisterOrg, RevokeMember
from contracts.identity_records import Organisation, load_member, load_org, new_member
from ledger.encoding import encode
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


def genesis_identity(genesis: Genesis) -> dict[bytes, bytes]:
    """State of the founding organisations and members, and the organisation directory
    holding the founders in genesis order (each filed by its genesis entry's bytes)."""
    out: dict[bytes, bytes] = {}
    directory: list[tuple[bytes, bytes]] = []
    for org in genesis.organisations:
        members = tuple(m.public_key.hex() for m in org.members)
        record = Organisation(org.id, org.name, org.kind, org.city, True, members, 0)
        out[record.key] = encode(record.to_obj())
        directory.append((record.key, encode(org.to_obj())))
        for m in org.members:
            member = new_member(m.public_key, org.id, m.roles, m.name, 0)
            out[member.key] = encode(member.to_obj())
    out.update(sb.seed(sb.ORGANISATIONS, directory))
    return out


# --- checks ----------------------------------------------------------------------------------


def check_roles_for_kind(kind: str, member: NewMember) -> None:
    allowed = ORG_KIND_ROLES[kind]
    extra = sorted(set(member.roles) - allowed)
    if extra:
        raise ContractError(
            "forbidden_role", f"an organisation of kind {kind!r} cannot grant roles {extra}"
        )


def check_consent(ctx: TxContext, member: NewMember) -> None:
    """Roles of ``gov_consent_roles`` come only from an executed ``role-grant`` proposal."""
    held = sorted(set(member.roles) & gov_params(ctx).consent_roles)
    if held:
        raise ContractError(
            "consent_required",
            f"roles {held} are granted only by the founding agencies together: "
            "propose it with `cityledger gov propose role-grant`",
        )


def check_key_unused(ctx: TxContext, public_key: bytes) -> None:
    """One key space: a key is a member key or a meter key, never both, never twice."""
    if ctx.get(sk.member_key(public_key)) is not None:
        raise ContractError("duplicate", f"key {public_key.hex()[:16]}… is already registered")
    if ctx.get(sk.meter_key(public_key)) is not None:
        raise ContractError("duplicate", f"key {public_key.hex()[:16]}… is a registered meter key")


def add_member(ctx: TxContext, org: Organisation, member: NewMember) -> Organisation:
    """Store the new member; returns the organisation listing it."""
    ctx.save(new_member(member.public_key, org.id, member.roles, member.name, ctx.height))
    ctx.emit(
        "identity.member_registered",
        {"org": org.id, "public_key": member.public_key, "roles": list(member.roles)},
    )
    return org.replace(members=(*org.members, member.public_key.hex()))


# --- handlers --------------------------------------------------------------------------------


@handler(RegisterOrg, {"admin"})
def process_register_org(ctx: TxContext, p: RegisterOrg) -> None:
    own = load_org(ctx, ctx.sender.org)
    if not (own.founding and own.kind == "agency"):
        raise forbidden("only an admin of a founding agency may register organisations")
    if ctx.get(sk.org_key(p.id)) is not None:
        raise ContractError("duplicate", f"organisation {p.id!r} already exists")
    for m in p.members:
        check_roles_for_kind(p.kind, m)
        check_consent(ctx, m)
        check_key_unused(ctx, m.public_key)
    org = Organisation(p.id, p.name, p.kind, p.city, False, (), ctx.height)
    ctx.emit(
        "identity.org_registered",
        {"org": p.id, "kind": p.kind, "city": p.city, "by": ctx.sender.org},
    )
    for m in p.members:
        org = add_member(ctx, org, m)
    ctx.save(org)
    sb.join(ctx, sb.ORGANISATIONS, org.key)  # the directory a name search reads whole


@handler(NewMember, {"admin"})
def process_register_member(ctx: TxContext, p: NewMember) -> None:
    org = load_org(ctx, ctx.sender.org)
    check_roles_for_kind(org.kind, p)
    check_consent(ctx, p)
    check_key_unused(ctx, p.public_key)
    ctx.save(add_member(ctx, org, p))


@handler(RevokeMember, {"admin"})
def process_revoke_member(ctx: TxContext, p: RevokeMember) -> None:
    member = load_member(ctx, p.public_key)
    if member.org != ctx.sender.org:
        raise forbidden("an admin may only revoke members of their own organisation")
    if p.public_key == ctx.sender.public_key:
        raise forbidden("an admin cannot revoke their own key")
    if not member.active:
        raise wrong_state("this member key is already revoked")
    ctx.save(member.replace(status="revoked", revoked_height=ctx.height, revoked_reason=p.reason))
    ctx.emit(
        "identity.member_revoked",
        {"org": member.org, "public_key": p.public_key, "reason": p.reason},
    )


HANDLERS: list[Handler] = [process_register_org, process_register_member, process_revoke_member]
