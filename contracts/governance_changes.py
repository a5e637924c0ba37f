"""What each kind of proposal changes: checks first, then a deferred write.

:func:`prepare` checks a change against the state as it stands and returns a
function that makes it (and returns its effective height). A proposal is
prepared when it is made (so a change that cannot happen is refused at once)
and prepared again when it reaches its threshold (the world may have changed
meanwhile: a rail that fails then refuses the proposal with that code).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from contracts import state_keys as sk
from contracts.context import TxContext
from contracts.errors import ContractError, forbidden, wrong_state
from contracts.governance_payloads import (
    FoundingAdmit,
    OrgSuspend,
    OrgUnsuspend,
    ParamsSet,
    ParsedProposal,
    RoleGrant,
    ValidatorAdd,
    ValidatorPower,
    ValidatorRemove,
    ValidatorRotate,
    merge_params,
    possession_message,
)
from contracts.governance_rails import Change, Seat
from contracts.governance_records import (
    Founding,
    Suspension,
    admitted_founders,
    is_suspended,
    suspended_key,
)
from contracts.governance_validators import (
    apply_changes,
    check_changes,
    seats,
)
from contracts.identity import add_member, check_key_unused, check_roles_for_kind
from contracts.identity_payloads import NewMember
from contracts.identity_records import Member, Organisation, load_org
from contracts.params import AppParams
from ledger.crypto import Purpose, is_valid_signature
from ledger.errors import ValidationError

Apply = Callable[[], int]  # makes the change; returns the height it is effective from


def prepare(ctx: TxContext, proposal: ParsedProposal, proposer_org: str, pid: str) -> Apply:
    """Check ``proposal`` against state now; the returned function applies it."""
    change: Any = proposal.change
    if isinstance(change, RoleGrant):
        return _role_grant(ctx, change)
    if isinstance(change, OrgSuspend):
        return _suspend(ctx, change, pid)
    if isinstance(change, OrgUnsuspend):
        return _unsuspend(ctx, change)
    if isinstance(change, FoundingAdmit):
        return _admit(ctx, change)
    if isinstance(change, ParamsSet):
        return _params(ctx, change)
    return _validators(ctx, change, proposer_org)


def _live_org(ctx: TxContext, org_id: str) -> Organisation:
    org = load_org(ctx, org_id)
    if is_suspended(ctx, org_id):
        raise ContractError("suspended", f"organisation {org_id!r} is suspended")
    return org


# --- roles and organisations -----------------------------------------------------------------


def _role_grant(ctx: TxContext, c: RoleGrant) -> Apply:
    org = _live_org(ctx, c.org)
    steps = [_grant_one(ctx, org, m) for m in c.members]

    def grant() -> int:
        for step in steps:
            step()
        return ctx.height

    return grant


def _grant_one(ctx: TxContext, org: Organisation, m: NewMember) -> Callable[[], None]:
    """Checks for one member of a grant; the returned function registers or extends it."""
    check_roles_for_kind(org.kind, m)
    member = ctx.record(sk.member_key(m.public_key), Member)
    if member is None:
        check_key_unused(ctx, m.public_key)

        def register() -> None:
            ctx.save(add_member(ctx, load_org(ctx, org.id), m))

        return register
    if member.org != org.id:
        raise forbidden(f"key {m.public_key.hex()[:16]}… is a member of {member.org!r}")
    if not member.active:
        raise wrong_state("this member key is revoked")
    if set(m.roles) <= set(member.roles):
        raise wrong_state(f"the member already holds {sorted(m.roles)}")

    def extend() -> None:
        ctx.save(member.replace(roles=tuple(sorted(set(member.roles) | set(m.roles)))))
        ctx.emit(
            "identity.roles_granted",
            {"org": org.id, "public_key": m.public_key, "roles": list(m.roles)},
        )

    return extend


def _suspend(ctx: TxContext, c: OrgSuspend, pid: str) -> Apply:
    load_org(ctx, c.org)
    if is_suspended(ctx, c.org):
        raise wrong_state(f"organisation {c.org!r} is already suspended")
    removals = [(s, name) for s, name in seats(ctx) if s.org == c.org]
    if removals:  # an organisation without validators leaves the set as it is
        check_changes(ctx, [Change(s.public_key, 0, s.org) for s, _ in removals])

    def suspend() -> int:
        ctx.save(Suspension(c.org, c.reason, ctx.height, pid))
        ctx.emit("gov.org_suspended", {"org": c.org, "reason": c.reason})
        if removals:
            changes = [Change(s.public_key, 0, s.org) for s, _ in removals]
            apply_changes(ctx, changes, {s.public_key: name for s, name in removals})
        return ctx.height + 1

    return suspend


def _unsuspend(ctx: TxContext, c: OrgUnsuspend) -> Apply:
    load_org(ctx, c.org)
    if not is_suspended(ctx, c.org):
        raise wrong_state(f"organisation {c.org!r} is not suspended")

    def unsuspend() -> int:
        ctx.delete(suspended_key(c.org))
        ctx.emit("gov.org_unsuspended", {"org": c.org, "reason": c.reason})
        return ctx.height + 1

    return unsuspend


def _admit(ctx: TxContext, c: FoundingAdmit) -> Apply:
    org = _live_org(ctx, c.org)
    if org.kind != "agency":
        raise wrong_state(f"only an agency can be a founding agency, {c.org!r} is a {org.kind}")
    genesis_founders = {o.id for o in ctx.genesis.organisations if o.kind == "agency"}
    if c.org in genesis_founders or c.org in admitted_founders(ctx):
        raise wrong_state(f"{c.org!r} is already a founding agency")

    def admit() -> int:
        ctx.save(org.replace(founding=True))
        ctx.save(Founding((*admitted_founders(ctx), c.org)))
        ctx.emit("gov.founding_admitted", {"org": c.org})
        return ctx.height + 1

    return admit


def _params(ctx: TxContext, c: ParamsSet) -> Apply:
    raw = ctx.get(sk.params_key())
    current = AppParams() if raw is None else AppParams.from_stored(raw)
    try:
        merged = merge_params(current, c.params)
    except ValidationError as exc:
        raise ContractError("bad_payload", exc.message) from None

    def set_params() -> int:
        ctx.store(sk.params_key(), merged.to_obj())
        ctx.emit("gov.params_set", {"params": sorted(c.params)})
        return ctx.height + 1  # a block runs with the parameters it started with

    return set_params


# --- validators ------------------------------------------------------------------------------


def _validators(ctx: TxContext, change: Any, proposer_org: str) -> Apply:
    by_key = {s.public_key: (s, name) for s, name in seats(ctx)}
    changes, names = _validator_changes(ctx, change, proposer_org, by_key)
    check_changes(ctx, changes)
    return lambda: apply_changes(ctx, changes, names)


Seats = dict[bytes, tuple[Seat, str]]


def _validator_changes(
    ctx: TxContext, change: Any, proposer_org: str, by_key: Seats
) -> tuple[list[Change], dict[bytes, str]]:
    if isinstance(change, ValidatorAdd):
        org = change.org or proposer_org
        _live_org(ctx, org)
        if change.public_key in by_key:
            raise ContractError("duplicate", "this key is already a validator")
        if change.name in {name for _, name in by_key.values()}:
            raise ContractError("duplicate", f"a validator is already named {change.name!r}")
        return [Change(change.public_key, change.power, org)], {change.public_key: change.name}
    seat, name = _seat(by_key, change.public_key)
    if isinstance(change, ValidatorRemove):
        return [Change(seat.public_key, 0, seat.org)], {seat.public_key: name}
    if isinstance(change, ValidatorPower):
        if change.power == seat.power:
            raise wrong_state(f"the validator already has power {seat.power}")
        return [Change(seat.public_key, change.power, seat.org)], {seat.public_key: name}
    assert isinstance(change, ValidatorRotate)
    return _rotation(ctx, change, seat, name, by_key)


def _seat(by_key: Seats, public_key: bytes) -> tuple[Seat, str]:
    if public_key not in by_key:
        raise ContractError("not_found", f"key {public_key.hex()[:16]}… is not a validator")
    return by_key[public_key]


def _rotation(
    ctx: TxContext, c: ValidatorRotate, seat: Seat, name: str, by_key: Seats
) -> tuple[list[Change], dict[bytes, str]]:
    if c.new_public_key in by_key:
        raise ContractError("duplicate", "the new key is already a validator")
    message = possession_message(c.public_key, c.new_public_key)
    if not is_valid_signature(
        c.new_public_key, Purpose.VALIDATOR_KEY, ctx.genesis.chain_id, message, c.proof
    ):
        raise ContractError("bad_payload", "the new key's proof of possession does not verify")
    changes = [Change(c.public_key, 0, seat.org), Change(c.new_public_key, seat.power, seat.org)]
    return changes, {c.public_key: name, c.new_public_key: name}
