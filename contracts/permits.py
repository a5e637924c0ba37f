"""Permits: building, business, event permits and import licences.

Statuses follow the Building & Land Development Specification (BLDS: application
accepted, in review, issued, ...) plus ``suspended``, ``revoked`` and
``expired``. ``expired`` is never written: it is how an ``issued`` or
``suspended`` permit reads once the block time reaches ``valid_until``, so
"is permit P valid at time T?" is answered from the stored record and T alone.

Every transition after the application is one row of :data:`TRANSITIONS`
(data, not scattered ifs): the statuses it may start from (as they read at the
block time), the status it leads to, and the roles that may make it. Renewal
keeps the stored status, so only ``permit.reinstate`` lifts a suspension and
nothing lifts a revocation. The payloads are parsed in :mod:`contracts.permit_payloads`
and the records described in :mod:`contracts.permit_records`.
"""

from __future__ import annotations

from dataclasses import dataclass

from contracts import index_keys as ik
from contracts import search_buckets as sb
from contracts import state_keys as sk
from contracts.context import Handler, TxContext, handler
from contracts.errors import ContractError, bad_payload, wrong_state
from contracts.permit_payloads import MAX_WINDOW_MS, Action, Apply, action_parser
from contracts.permit_records import (
    MAX_INSPECTIONS,
    Inspection,
    Permit,
    PermitEvent,
    require_permit,
    store_permit_entry,
)
from ledger.encoding import Value

STATUSES = (
    "applied",
    "in_review",
    "approved",
    "denied",
    "issued",
    "suspended",
    "revoked",
    "expired",
)
# BLDS StatusCurrentMapped equivalents (for exports to open-data portals).
BLDS_STATUS = {
    "applied": "Application Accepted",
    "in_review": "In Review",
    "approved": "In Review",
    "denied": "Permit Cancelled",
    "issued": "Permit Issued",
    "suspended": "Permit Issued",
    "revoked": "Permit Cancelled",
    "expired": "Permit Expired",
}
APPLY_ROLES = {"admin", "trader", "carrier", "prosumer"}


@dataclass(frozen=True, slots=True)
class Transition:
    action: str
    from_statuses: frozenset[str]
    to: str | None  # None: the status does not change
    roles: frozenset[str]


def _t(action: str, sources: set[str], to: str | None, role: str) -> Transition:
    return Transition(action, frozenset(sources), to, frozenset({role}))


TRANSITIONS: dict[str, Transition] = {
    "permit.review": _t("reviewed", {"applied"}, "in_review", "permit_office"),
    "permit.approve": _t("approved", {"in_review"}, "approved", "permit_office"),
    "permit.deny": _t("denied", {"applied", "in_review"}, "denied", "permit_office"),
    "permit.issue": _t("issued", {"approved"}, "issued", "permit_office"),
    "permit.inspect": _t("inspected", {"issued", "suspended"}, None, "inspector"),
    # Renewal extends the window and keeps the stored status: it never lifts a
    # suspension (an expired suspended permit renews to suspended) or a revocation.
    "permit.renew": _t("renewed", {"issued", "suspended", "expired"}, None, "permit_office"),
    "permit.suspend": _t("suspended", {"issued"}, "suspended", "permit_office"),
    "permit.reinstate": _t("reinstated", {"suspended"}, "issued", "permit_office"),
    "permit.revoke": _t("revoked", {"approved", "issued", "suspended"}, "revoked", "permit_office"),
}


# --- reading a permit ------------------------------------------------------------------------


def effective_status(permit: Permit, time_ms: int) -> str:
    """The status as it reads at ``time_ms``: issued/suspended become expired at valid_until."""
    if permit.status in ("issued", "suspended") and time_ms >= permit.valid_until:
        return "expired"
    return permit.status


def permit_valid_at(p: Permit, time_ms: int) -> tuple[bool, str]:
    """Whether the permit authorises its holder at ``time_ms``, and why (not)."""
    status = effective_status(p, time_ms)
    if status == "expired":
        return False, f"expired at {p.valid_until}"
    if status != "issued":
        return False, f"permit is {status}"
    if time_ms < p.valid_from:
        return False, f"not valid before {p.valid_from}"
    return True, f"issued, valid from {p.valid_from} until {p.valid_until}"


# --- writing ---------------------------------------------------------------------------------


def append_history(
    ctx: TxContext, permit: Permit, action: str, details: dict[str, Value]
) -> Permit:
    """Store the next history entry (with the permit's status); returns the permit counting it."""
    seq = permit.history_len
    entry = PermitEvent(
        seq=seq,
        action=action,
        status=permit.status,
        time_ms=ctx.time_ms,
        details=details,
        **ctx.acted(),
    )
    store_permit_entry(ctx, permit.id, entry)
    return permit.replace(history_len=seq + 1)


@handler(Apply, APPLY_ROLES)
def process_apply(ctx: TxContext, p: Apply) -> None:
    key = sk.permit_key(p.id)
    if ctx.get(key) is not None:
        raise ContractError("duplicate", f"permit {p.id!r} already exists")
    permit = Permit(
        id=p.id,
        type=p.type,
        holder=ctx.sender.org,
        applicant=ctx.sender.public_key,
        address=p.address,
        description=p.description,
        hs_codes=p.hs_codes,
        status="applied",
        valid_from=0,
        valid_until=0,
        conditions="",
        renewals=0,
        inspections=(),
        reason="",
        applied_time_ms=ctx.time_ms,
        history_len=0,
    )
    permit = append_history(ctx, permit, "applied", {"type": p.type, "address": p.address})
    ctx.save(permit)
    holder = sb.PERMIT_HOLDER.bucket(ctx.sender.org)
    sb.file(ctx, holder, ik.PERMIT_HOLDER.key(ctx.sender.org, p.id), key)
    address = sb.PERMIT_ADDRESS.bucket(ik.normalise_address(p.address))
    sb.file(ctx, address, ik.permit_address_key(p.address, p.id), key)
    ctx.emit(
        "permit.applied",
        {"permit": p.id, "type": p.type, "holder": ctx.sender.org, "status": "applied"},
    )


def _renewed(ctx: TxContext, permit: Permit, valid_until: int) -> Permit:
    if valid_until <= max(permit.valid_until, ctx.time_ms):
        raise bad_payload("a renewal must extend valid_until beyond both its current value and now")
    if valid_until > permit.valid_from + MAX_WINDOW_MS:
        raise bad_payload("a permit window cannot exceed 50 years")
    return permit.replace(valid_until=valid_until, renewals=permit.renewals + 1)


def _inspection(ctx: TxContext, permit: Permit, a: Action) -> Inspection:
    if len(permit.inspections) >= MAX_INSPECTIONS:
        raise ContractError("limit_exceeded", f"at most {MAX_INSPECTIONS} inspections")
    when = ctx.time_ms if a.time_ms is None else a.time_ms
    if when > ctx.time_ms:
        raise ContractError("bad_time", "an inspection cannot be in the future")
    if when < ctx.time_ms - ctx.params.max_event_age_ms:
        raise ContractError(
            "bad_time",
            f"an inspection time may lie at most {ctx.params.max_event_age_ms} ms before the block",
        )
    return Inspection(result=a.result, notes=a.reason, by=ctx.sender.org, time_ms=when)


def _apply_effect(
    ctx: TxContext, kind: str, permit: Permit, a: Action
) -> tuple[Permit, dict[str, Value]]:
    """The kind-specific part of a transition: the changed permit and the history details."""
    if kind == "permit.issue":
        issued = permit.replace(
            valid_from=a.valid_from, valid_until=a.valid_until, conditions=a.conditions
        )
        return issued, {"valid_from": a.valid_from, "valid_until": a.valid_until}
    if kind == "permit.renew":
        return _renewed(ctx, permit, a.valid_until), {"valid_until": a.valid_until}
    if kind == "permit.inspect":
        inspection = _inspection(ctx, permit, a)
        inspected = permit.replace(inspections=(*permit.inspections, inspection))
        return inspected, inspection.to_obj()
    return permit.replace(reason=a.reason), ({"reason": a.reason} if a.reason else {})


def transition_handler(kind: str, transition: Transition) -> Handler:
    def process(ctx: TxContext, a: Action) -> None:
        permit = require_permit(ctx, a.permit_id)
        current = effective_status(permit, ctx.time_ms)
        if current not in transition.from_statuses:
            raise wrong_state(f"{kind} is not possible for a permit that is {current}")
        permit, details = _apply_effect(ctx, kind, permit, a)
        if transition.to is not None:
            permit = permit.replace(status=transition.to)
        permit = append_history(ctx, permit, transition.action, details)
        ctx.save(permit)
        ctx.emit(
            f"permit.{transition.action}",
            {"permit": a.permit_id, "holder": permit.holder, "status": permit.status},
        )

    summary = f"{', '.join(sorted(transition.roles))}: {kind.split('.')[1]} a permit"
    return Handler(kind, transition.roles, action_parser(kind), process, summary)


HANDLERS: list[Handler] = [process_apply] + [
    transition_handler(kind, t) for kind, t in TRANSITIONS.items()
]
