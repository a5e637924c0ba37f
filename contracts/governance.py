"""Governance: ``gov.propose``, ``gov.approve``, ``gov.withdraw``.

Only an admin of a founding agency proposes or approves (the genesis agencies
plus those admitted by a ``founding-admit`` proposal, less suspended ones);
approvals count per organisation, the proposer's included. A proposal executes
in the transaction that brings its approvals to more than ``gov_threshold`` of
the founding agencies (counted against the founding agencies *at that moment*:
an approval from an organisation since suspended no longer counts). Its change
is checked again then (rails included); if it no longer holds, the proposal is
closed as ``refused`` with that code, the approving transaction itself succeeds.

A proposal is open for ``gov_proposal_ttl`` heights: an approval or withdrawal
after ``expires_height`` is refused with ``proposal_expired``. Expiry is never
written: the stored status stays ``pending`` and readers compute ``expired``
from the height they read at (:meth:`Proposal.status_at`). Only an admin of
the proposer's organisation withdraws, and only while pending.

Bounds: at most :data:`MAX_OPEN_PER_ORG` open proposals per organisation and
:data:`MAX_OPEN` in all (``limit_exceeded``), so no founder can fill the state.
"""

from __future__ import annotations

from contracts.context import Handler, TxContext, handler
from contracts.errors import ContractError, forbidden, wrong_state
from contracts.governance_changes import prepare
from contracts.governance_params import gov_params
from contracts.governance_payloads import (
    CHANGES,
    Approve,
    ParsedProposal,
    Propose,
    Withdraw,
    parse_propose,
)
from contracts.governance_records import (
    Proposal,
    Registry,
    admitted_founders,
    is_suspended,
    list_key,
    load_proposal,
    load_registry,
    proposal_id_of,
    proposal_key,
)

MAX_OPEN_PER_ORG = 8
MAX_OPEN = 128


def founders(ctx: TxContext) -> frozenset[str]:
    """The founding agencies whose approvals count now."""
    orgs = {o.id for o in ctx.genesis.organisations if o.kind == "agency"}
    orgs.update(admitted_founders(ctx))
    return frozenset(o for o in orgs if not is_suspended(ctx, o))


def require_founder(ctx: TxContext, action: str) -> None:
    if ctx.sender.org not in founders(ctx):
        raise forbidden(f"only an admin of a founding agency may {action}")


def open_proposals(ctx: TxContext) -> tuple[Registry, list[Proposal]]:
    """The registry and the proposals in it that are still pending at this height."""
    registry = load_registry(ctx)
    live = [load_proposal(ctx, pid) for pid in registry.open]
    return registry, [p for p in live if p.status_at(ctx.height) == "pending"]


@handler(Propose, {"admin"}, parse=parse_propose)
def process_propose(ctx: TxContext, p: ParsedProposal) -> None:
    require_founder(ctx, "propose governance changes")
    registry, live = open_proposals(ctx)
    if len(live) >= MAX_OPEN or sum(x.proposer_org == ctx.sender.org for x in live) >= (
        MAX_OPEN_PER_ORG
    ):
        raise ContractError("limit_exceeded", "too many open proposals: withdraw or let expire")
    pid = proposal_id_of(ctx.tx_hash)
    if ctx.get(proposal_key(pid)) is not None:
        raise ContractError("duplicate", f"proposal {pid} already exists")
    prepare(ctx, p, ctx.sender.org, pid)  # refuse now what could not happen
    ttl = gov_params(ctx).gov_proposal_ttl
    proposal = Proposal(
        pid, p.kind, p.change_obj(), ctx.sender.org, ctx.sender.public_key, (ctx.sender.org,),
        "pending", ctx.height, ctx.height + ttl, None, None, "", "",
    )  # fmt: skip
    ctx.store(list_key(registry.count), {"id": pid})
    ctx.save(Registry(registry.count + 1, (*(x.id for x in live), pid)))
    ctx.emit("gov.proposed", {"id": pid, "kind": p.kind, "org": ctx.sender.org})
    decide(ctx, proposal)


def check_open(ctx: TxContext, proposal: Proposal) -> None:
    status = proposal.status_at(ctx.height)
    if status == "expired":
        raise ContractError(
            "proposal_expired",
            f"proposal {proposal.id} expired at height {proposal.expires_height}",
        )
    if status != "pending":
        raise wrong_state(f"proposal {proposal.id} is {status}")


@handler(Approve, {"admin"})
def process_approve(ctx: TxContext, p: Approve) -> None:
    proposal = load_proposal(ctx, p.id)
    require_founder(ctx, "approve proposals")
    check_open(ctx, proposal)
    if ctx.sender.org in proposal.approvals:
        raise ContractError("duplicate", f"{ctx.sender.org!r} has already approved {p.id}")
    proposal = proposal.replace(approvals=(*proposal.approvals, ctx.sender.org))
    ctx.emit("gov.approved", {"id": p.id, "org": ctx.sender.org})
    decide(ctx, proposal)


@handler(Withdraw, {"admin"})
def process_withdraw(ctx: TxContext, p: Withdraw) -> None:
    proposal = load_proposal(ctx, p.id)
    if ctx.sender.org != proposal.proposer_org:
        raise forbidden("only an admin of the proposing organisation may withdraw it")
    check_open(ctx, proposal)
    close(ctx, proposal.replace(status="withdrawn", closed_height=ctx.height))
    ctx.emit("gov.withdrawn", {"id": p.id})


def decide(ctx: TxContext, proposal: Proposal) -> None:
    """Execute ``proposal`` if its counted approvals pass the threshold; else store it."""
    counting = founders(ctx)
    counted = sum(1 for org in proposal.approvals if org in counting)
    if counted < gov_params(ctx).needed(len(counting)):
        ctx.save(proposal)
        return
    writes, index, events = dict(ctx.writes), dict(ctx.index_writes), list(ctx.events)
    parsed = ParsedProposal(proposal.kind, CHANGES[proposal.kind].from_obj(proposal.change))
    try:
        effective = prepare(ctx, parsed, proposal.proposer_org, proposal.id)()
    except ContractError as exc:
        ctx.writes, ctx.index_writes, ctx.events = writes, index, events
        refused = proposal.replace(
            status="refused",
            closed_height=ctx.height,
            refusal=exc.code,
            refusal_message=exc.message,
        )
        close(ctx, refused)
        ctx.emit("gov.refused", {"id": proposal.id, "code": exc.code})
        return
    executed = proposal.replace(
        status="executed", closed_height=ctx.height, effective_height=effective
    )
    close(ctx, executed)
    ctx.emit("gov.executed", {"id": proposal.id, "effective_height": effective})


def close(ctx: TxContext, proposal: Proposal) -> None:
    """Store a proposal that is no longer pending and drop it from the open list."""
    ctx.save(proposal)
    registry = load_registry(ctx)
    ctx.save(registry.replace(open=tuple(x for x in registry.open if x != proposal.id)))


HANDLERS: list[Handler] = [process_propose, process_approve, process_withdraw]
