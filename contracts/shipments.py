"""Import/export shipments: declaration, documents, custody, milestones, customs, delivery.

Vocabulary: a *consignment* (UN/CEFACT) moves goods from a *consignor* to a
*consignee*; the *declarant* (WCO) lodges the declaration. Goods lines carry HS
codes, transport equipment is ISO 6346 containers, places are UN/LOCODEs. Each
change appends one provenance entry in the shape of a GS1 EPCIS event — what
(shipment, containers), when (event time and record time), where (UN/LOCODE),
why (business step) and who (actor organisation and key) — under its own state
key, so the whole history is provable against one state root.

Parties consent: a consignor or consignee named by a declarant of another
organisation is *unconfirmed* until a member of it sends ``shipment.confirm_party``.
An unconfirmed consignor cannot act as the holder (offer custody, record
milestones) and an unconfirmed consignee's import licence does not count; a
shipment is delivered only once both have confirmed.

Licence gates: for goods under a restricted HS heading the consignee's import
licence must be valid at the event time of ``clear``, ``release`` and
``deliver`` (the licence recorded at clearance is checked again at the later two).
Event times lie at most ``max_event_age_ms`` before and 5 minutes after the block.

Every check runs before any write; handlers raise :class:`ContractError` and the
engine drops their buffered writes. The payloads are parsed and checked in
:mod:`contracts.shipment_payloads`, the records are described in
:mod:`contracts.shipment_records`; this module applies the one to the other.
"""

from __future__ import annotations

from contracts import codes
from contracts import index_keys as ik
from contracts import search_buckets as sb
from contracts import shipment_search as search
from contracts import state_keys as sk
from contracts.context import Handler, TxContext, handler
from contracts.errors import ContractError, bad_payload, forbidden, wrong_state
from contracts.identity_records import load_org
from contracts.params import MAX_SKEW_MS
from contracts.permit_records import load_permit
from contracts.permits import permit_valid_at
from contracts.shipment_payloads import (
    CUSTOMS_TRANSITIONS,
    AcceptCustody,
    AttachDocument,
    ConfirmParty,
    CustomsDecision,
    Declare,
    Deliver,
    Milestone,
    OfferCustody,
)
from contracts.shipment_records import (
    MAX_DOCUMENTS,
    MAX_HISTORY,
    PARTY_ROLES,
    CustodyOffer,
    Document,
    Shipment,
    ShipmentEvent,
    load_shipment,
    store_entry,
)
from ledger.encoding import Value

# EPCIS Core Business Vocabulary business steps for the history entries.
BIZ_STEPS: dict[str, str] = {
    "gate_in": "arriving",
    "gate_out": "departing",
    "loaded": "loading",
    "departed": "departing",
    "arrived": "arriving",
    "discharged": "unloading",
    "hold": "holding",
    "inspect": "inspecting",
    "custody_transferred": "accepting",
    "party_confirmed": "accepting",
    "delivered": "receiving",
}

# --- helpers ---------------------------------------------------------------------------------


def event_time(ctx: TxContext, time_ms: int | None) -> int:
    """The business event time (EPCIS eventTime); the block time is its record time.

    At most 5 minutes after the block time and ``max_event_age_ms`` before it.
    """
    if time_ms is None:
        return ctx.time_ms
    if time_ms > ctx.time_ms + MAX_SKEW_MS:
        raise ContractError("bad_time", "an event time cannot be in the future of the block")
    if time_ms < ctx.time_ms - ctx.params.max_event_age_ms:
        raise ContractError(
            "bad_time",
            f"an event time may lie at most {ctx.params.max_event_age_ms} ms before the block",
        )
    return time_ms


def require_open(shipment: Shipment) -> None:
    """Nothing but a seizure may touch a delivered or seized shipment."""
    if shipment.customs_status == "seized":
        raise wrong_state(f"shipment {shipment.id} has been seized by customs")
    if shipment.stage == "delivered":
        raise wrong_state(f"shipment {shipment.id} is delivered and closed")


def require_history_room(shipment: Shipment) -> None:
    if shipment.history_len >= MAX_HISTORY:
        raise ContractError("limit_exceeded", f"shipment history is capped at {MAX_HISTORY}")


def require_consignor_confirmed(shipment: Shipment) -> None:
    if not shipment.confirmed("consignor"):
        raise wrong_state(
            f"the consignor {shipment.consignor} has not confirmed its role: "
            "it cannot act as the holder yet"
        )


def append_history(
    ctx: TxContext,
    shipment: Shipment,
    event: str,
    *,
    time_ms: int,
    place: str | None,
    details: dict[str, Value],
    biz_step: str = "",
) -> Shipment:
    """Store the next provenance entry; returns the shipment that counts it."""
    seq = shipment.history_len
    entry = ShipmentEvent(
        seq=seq,
        event=event,
        biz_step=biz_step or BIZ_STEPS.get(event, ""),
        time_ms=time_ms,
        recorded_ms=ctx.time_ms,
        place=place,
        details=details,
        **ctx.acted(),
    )
    store_entry(ctx, shipment.id, entry)
    return shipment.replace(history_len=seq + 1, updated_height=ctx.height)


def record_event(
    ctx: TxContext,
    shipment: Shipment,
    event: str,
    attrs: dict[str, Value],
    *,
    time_ms: int,
    place: str | None,
    details: dict[str, Value],
    biz_step: str = "",
) -> None:
    """The last step of every handler: append the history entry ``event``, store the
    shipment and emit ``shipment.<event>`` with ``attrs``."""
    shipment = append_history(
        ctx, shipment, event, time_ms=time_ms, place=place, details=details, biz_step=biz_step
    )
    ctx.save(shipment)
    ctx.emit(f"shipment.{event}", attrs)


def set_status(
    ctx: TxContext,
    shipment: Shipment,
    *,
    stage: str | None = None,
    customs: str | None = None,
) -> Shipment:
    """Change stage and/or customs status, moving the status index entries with them."""
    if stage is not None and stage != shipment.stage:
        _move_status_index(ctx, shipment, shipment.stage, stage)
        shipment = shipment.replace(stage=stage)
    if customs is not None and customs != shipment.customs_status:
        _move_status_index(ctx, shipment, shipment.customs_status, customs)
        shipment = shipment.replace(customs_status=customs)
    return shipment


def _move_status_index(ctx: TxContext, shipment: Shipment, old: str, new: str) -> None:
    old_bucket = sb.SHIPMENT_STATUS.bucket(old)
    sb.unfile(ctx, old_bucket, ik.SHIPMENT_STATUS.key(old, shipment.id), shipment.key)
    _file_status(ctx, shipment, new)


def _file_status(ctx: TxContext, shipment: Shipment, status: str) -> None:
    bucket = sb.SHIPMENT_STATUS.bucket(status)
    sb.file(ctx, bucket, ik.SHIPMENT_STATUS.key(status, shipment.id), shipment.key)


def add_party_index(ctx: TxContext, shipment: Shipment, org_id: str) -> None:
    bucket = sb.SHIPMENT_PARTY.bucket(org_id)
    sb.file(ctx, bucket, ik.SHIPMENT_PARTY.key(org_id, shipment.id), shipment.key)


def index_declared(ctx: TxContext, shipment: Shipment) -> None:
    """A new shipment filed under its containers, parties, stage and customs status
    (local index and proven search buckets, :mod:`contracts.search_buckets`), and
    under its HS headings, ports and declaration day (proven buckets)."""
    for number in shipment.containers:
        bucket = sb.SHIPMENT_CONTAINER.bucket(number)
        sb.file(ctx, bucket, ik.SHIPMENT_CONTAINER.key(number, shipment.id), shipment.key)
    for org_id in sorted(shipment.parties()):
        add_party_index(ctx, shipment, org_id)
    _file_status(ctx, shipment, shipment.stage)
    _file_status(ctx, shipment, shipment.customs_status)
    for heading in search.hs_headings(shipment):  # proven buckets only: no local index
        sb.join(ctx, sb.SHIPMENT_HS.bucket(heading), shipment.key)
    for place in search.ports(shipment):
        sb.join(ctx, sb.SHIPMENT_PORT.bucket(place), shipment.key)
    sb.join(ctx, sb.SHIPMENT_DAY.bucket(search.day_of(shipment.declared_time_ms)), shipment.key)


# --- handlers --------------------------------------------------------------------------------


def declared_shipment(ctx: TxContext, p: Declare, when: int) -> Shipment:
    """The record of a shipment just declared (before its first history entry)."""
    return Shipment(
        id=p.id,
        consignor=p.consignor,
        consignee=p.consignee,
        declarant=p.declarant,
        origin=p.origin,
        destination=p.destination,
        goods=p.goods,
        containers=p.containers,
        documents=(),
        holder=p.consignor,
        holders=(p.consignor,),
        unconfirmed=tuple(
            role
            for role, org in (("consignee", p.consignee), ("consignor", p.consignor))
            if org != p.declarant
        ),
        custody_offer=None,
        stage="declared",
        customs_status="pending",
        licence_id=None,
        last_place=p.origin,
        declared_time_ms=when,
        delivered_time_ms=None,
        declared_height=ctx.height,
        updated_height=ctx.height,
        history_len=0,
    )


@handler(Declare, {"trader"})
def process_declare(ctx: TxContext, p: Declare) -> None:
    if ctx.sender.org != p.declarant:
        raise forbidden("only a member of the declarant organisation may declare")
    if ctx.get(sk.shipment_key(p.id)) is not None:
        raise ContractError("duplicate", f"shipment {p.id!r} already exists")
    for org_id in (p.consignor, p.consignee, p.declarant):
        load_org(ctx, org_id)
    when = event_time(ctx, p.time_ms)
    shipment = declared_shipment(ctx, p, when)
    index_declared(ctx, shipment)
    record_event(
        ctx,
        shipment,
        "declared",
        {
            "shipment": p.id,
            "consignor": p.consignor,
            "consignee": p.consignee,
            "declarant": p.declarant,
            "origin": p.origin,
            "destination": p.destination,
            "containers": list(p.containers),
        },
        time_ms=when,
        place=p.origin,
        details={"destination": p.destination, "goods_lines": len(p.goods)},
    )


@handler(AttachDocument, {"trader", "carrier", "customs"})
def process_attach_document(ctx: TxContext, p: AttachDocument) -> None:
    shipment = load_shipment(ctx, p.shipment_id)
    allowed = shipment.parties() | {shipment.holder}
    if ctx.sender.org not in allowed and not ctx.has_role("customs"):
        raise forbidden("only a party, the current holder or customs may attach documents")
    require_open(shipment)
    require_history_room(shipment)
    docs = shipment.documents
    if any(d.type == p.type and d.sha256 == p.sha256 for d in docs):
        raise ContractError("duplicate", "this document is already attached")
    if len(docs) >= MAX_DOCUMENTS:
        raise ContractError("limit_exceeded", f"at most {MAX_DOCUMENTS} documents per shipment")
    doc = Document(p.type, p.sha256, p.uri, ctx.sender.org, ctx.height)
    record_event(
        ctx,
        shipment.replace(documents=(*docs, doc)),
        "document_attached",
        {"shipment": p.shipment_id, "type": p.type, "sha256": p.sha256},
        time_ms=ctx.time_ms,
        place=None,
        details={"type": p.type, "sha256": p.sha256},
    )


def _check_custody_movable(shipment: Shipment) -> None:
    require_open(shipment)
    if shipment.customs_status == "held":
        raise wrong_state("custody cannot change while customs holds the shipment")


@handler(OfferCustody, {"trader", "carrier", "port"})
def process_offer_custody(ctx: TxContext, p: OfferCustody) -> None:
    shipment = load_shipment(ctx, p.shipment_id)
    if ctx.sender.org != shipment.holder:
        raise forbidden("only the current holder may offer custody")
    _check_custody_movable(shipment)
    require_consignor_confirmed(shipment)
    require_history_room(shipment)
    if p.to == shipment.holder:
        raise bad_payload("custody cannot be offered to its current holder")
    load_org(ctx, p.to)
    when = event_time(ctx, p.time_ms)
    offer = CustodyOffer(to=p.to, by=ctx.sender.org, height=ctx.height)
    record_event(
        ctx,
        shipment.replace(custody_offer=offer),
        "custody_offered",
        {"shipment": p.shipment_id, "from": ctx.sender.org, "to": p.to},
        time_ms=when,
        place=None,
        details={"to": p.to},
    )


def held_by(shipment: Shipment, org_id: str) -> Shipment:
    """``org_id`` holds the shipment (listed once among its holders), the offer is closed."""
    holders = shipment.holders
    if org_id not in holders:
        holders = (*holders, org_id)
    return shipment.replace(holder=org_id, holders=holders, custody_offer=None)


def with_holder(ctx: TxContext, shipment: Shipment, org_id: str) -> Shipment:
    """:func:`held_by` ``org_id``; a first-time holder is indexed."""
    if org_id not in shipment.holders:
        add_party_index(ctx, shipment, org_id)
    return held_by(shipment, org_id)


@handler(AcceptCustody, {"trader", "carrier", "port"})
def process_accept_custody(ctx: TxContext, p: AcceptCustody) -> None:
    shipment = load_shipment(ctx, p.shipment_id)
    offer = shipment.custody_offer
    if offer is None:
        raise wrong_state("there is no open custody offer for this shipment")
    if ctx.sender.org != offer.to:
        raise forbidden("custody was not offered to your organisation")
    _check_custody_movable(shipment)
    require_history_room(shipment)
    when = event_time(ctx, p.time_ms)
    previous = shipment.holder
    shipment = with_holder(ctx, shipment, ctx.sender.org)
    if shipment.stage == "declared":
        shipment = set_status(ctx, shipment, stage="in_transit")
    record_event(
        ctx,
        shipment,
        "custody_transferred",
        {"shipment": p.shipment_id, "from": previous, "to": ctx.sender.org},
        time_ms=when,
        place=None,
        details={"from": previous, "to": ctx.sender.org},
    )


@handler(Milestone, {"carrier", "trader", "port"})
def process_milestone(ctx: TxContext, p: Milestone) -> None:
    shipment = load_shipment(ctx, p.shipment_id)
    as_port = ctx.has_role("port")
    if ctx.sender.org != shipment.holder and not as_port:
        raise forbidden("only the current holder or a port may record milestones")
    require_open(shipment)
    if not as_port:
        require_consignor_confirmed(shipment)
    require_history_room(shipment)
    when = event_time(ctx, p.time_ms)
    if shipment.stage == "declared":
        shipment = set_status(ctx, shipment, stage="in_transit")
    record_event(
        ctx,
        shipment.replace(last_place=p.place),
        "milestone",
        {"shipment": p.shipment_id, "milestone": p.event, "place": p.place, "time_ms": when},
        time_ms=when,
        place=p.place,
        details={"milestone": p.event},
        biz_step=BIZ_STEPS[p.event],
    )


@handler(ConfirmParty, {"admin", "trader", "carrier"})
def process_confirm_party(ctx: TxContext, p: ConfirmParty) -> None:
    shipment = load_shipment(ctx, p.shipment_id)
    roles = [r for r in PARTY_ROLES if getattr(shipment, r) == ctx.sender.org]
    if not roles:
        raise forbidden("only the consignor or the consignee confirms its role")
    require_open(shipment)
    pending = [r for r in roles if not shipment.confirmed(r)]
    if not pending:
        raise wrong_state(f"{ctx.sender.org} has already confirmed its role")
    require_history_room(shipment)
    when = event_time(ctx, p.time_ms)
    unconfirmed = tuple(r for r in shipment.unconfirmed if r not in pending)
    record_event(
        ctx,
        shipment.replace(unconfirmed=unconfirmed),
        "party_confirmed",
        {"shipment": p.shipment_id, "org": ctx.sender.org, "roles": pending},
        time_ms=when,
        place=None,
        details={"roles": pending},
    )


def restricted_lines(ctx: TxContext, shipment: Shipment) -> list[str]:
    """HS codes of the goods lines that may fall under a restricted heading."""
    restricted = list(ctx.params.restricted_hs_codes)
    return [g.hs_code for g in shipment.goods if codes.is_restricted(g.hs_code, restricted)]


def check_licence(ctx: TxContext, shipment: Shipment, licence_id: str | None, when: int) -> None:
    """The licence gate of ``clear``, ``release`` and ``deliver`` at event time ``when``.

    Restricted goods need ``licence_id``: an import licence held by the consignee
    (which has confirmed its role), valid at ``when``, covering every restricted
    line. A licence that is cited is checked in full even when nothing is
    restricted, and must then cover at least one line: an unchecked or irrelevant
    licence id is never recorded.
    """
    restricted = restricted_lines(ctx, shipment)
    if licence_id is None:
        if restricted:
            raise ContractError(
                "licence_required", f"HS codes {restricted} are restricted: cite an import licence"
            )
        return
    permit = load_permit(ctx, licence_id)
    if permit is None or permit.type != "import_licence":
        raise ContractError("licence_required", f"{licence_id!r} is not an import licence")
    if permit.holder != shipment.consignee:
        raise ContractError("licence_required", "the licence is not held by the consignee")
    if not shipment.confirmed("consignee"):
        raise ContractError(
            "licence_required",
            f"the consignee {shipment.consignee} has not confirmed its role: "
            "its licence does not count yet",
        )
    valid, reason = permit_valid_at(permit, when)
    if not valid:
        raise ContractError("licence_required", f"the licence is not valid at {when}: {reason}")
    scope = list(permit.hs_codes)
    if restricted:
        uncovered = [code for code in restricted if not codes.is_covered(code, scope)]
        if uncovered:
            raise ContractError("licence_required", f"the licence does not cover {uncovered}")
    elif not any(codes.is_covered(g.hs_code, scope) for g in shipment.goods):
        raise ContractError("licence_required", "the licence covers none of the goods")


@handler(CustomsDecision, {"customs"})
def process_customs_decision(ctx: TxContext, p: CustomsDecision) -> None:
    shipment = load_shipment(ctx, p.shipment_id)
    allowed_from, target = CUSTOMS_TRANSITIONS[p.decision]
    if p.decision != "seize":
        require_open(shipment)
    if shipment.customs_status not in allowed_from:
        raise wrong_state(
            f"cannot {p.decision} a shipment whose customs status is {shipment.customs_status}"
        )
    require_history_room(shipment)
    when = event_time(ctx, p.time_ms)
    if p.decision == "clear":
        check_licence(ctx, shipment, p.licence_id, when)
        shipment = shipment.replace(licence_id=p.licence_id)
    elif p.decision == "release" and restricted_lines(ctx, shipment):
        check_licence(ctx, shipment, shipment.licence_id, when)
    shipment = set_status(ctx, shipment, customs=target)
    details: dict[str, Value] = {"decision": p.decision, "reason": p.reason}
    if p.licence_id is not None:
        details["licence_id"] = p.licence_id
    record_event(
        ctx,
        shipment,
        "customs_decision",
        {"shipment": p.shipment_id, "decision": p.decision, "status": target},
        time_ms=when,
        place=shipment.last_place,
        details=details,
        biz_step=BIZ_STEPS.get(p.decision, ""),
    )


@handler(Deliver, {"carrier", "trader"})
def process_deliver(ctx: TxContext, p: Deliver) -> None:
    shipment = load_shipment(ctx, p.shipment_id)
    if ctx.sender.org not in (shipment.holder, shipment.consignee):
        raise forbidden("only the holder or the consignee may record delivery")
    require_open(shipment)
    if shipment.customs_status != "released":
        raise wrong_state("goods can only be delivered after customs release")
    if shipment.unconfirmed:
        raise wrong_state(
            f"parties {list(shipment.unconfirmed)} have not confirmed their roles: "
            "the shipment cannot be delivered yet"
        )
    require_history_room(shipment)
    when = event_time(ctx, p.time_ms)
    if restricted_lines(ctx, shipment):
        check_licence(ctx, shipment, shipment.licence_id, when)
    previous = shipment.holder
    # the consignee is a party: its index entry exists since the declaration
    shipment = held_by(shipment, shipment.consignee)
    shipment = shipment.replace(last_place=p.place, delivered_time_ms=when)
    shipment = set_status(ctx, shipment, stage="delivered")
    record_event(
        ctx,
        shipment,
        "delivered",
        {"shipment": p.shipment_id, "consignee": shipment.consignee, "place": p.place},
        time_ms=when,
        place=p.place,
        details={"from": previous, "to": shipment.consignee},
    )


HANDLERS: list[Handler] = [
    process_declare,
    process_confirm_party,
    process_attach_document,
    process_offer_custody,
    process_accept_custody,
    process_milestone,
    process_customs_decision,
    process_deliver,
]
