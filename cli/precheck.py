"""Before signing: does the record a transaction names exist, and can the action apply?

A transaction that names a record which does not exist (a mistyped shipment id
for ``tx customs seize``) would be committed as a permanent failed entry. So
``tx`` reads that record first (a state read, proven against a certified header
when ``--genesis`` is given) and refuses with one line, unless ``--force``.
One table, :data:`PRECHECKS`, says per transaction kind which record to read,
whether it must exist (or, for a new id, must not), and a cheap state check.

What this cannot see it does not guess: when the read rules do not let the
sender's key read the record (absence of a confidential record is proven only
to those who could read it), the check is skipped and the node decides.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cli.client import NodeClient, system_ms
from cli.verified_reads import Reads
from contracts import state_keys as sk
from contracts.permit_records import Permit
from contracts.permits import TRANSITIONS, effective_status
from contracts.shipment_payloads import CUSTOMS_TRANSITIONS
from contracts.shipment_records import Shipment
from ledger.encoding import Value, decode
from lightclient.records import verify_state_view

Payload = dict[str, Value]
StateCheck = Callable[[Value, str, Payload], str | None]  # record, kind, payload -> problem


@dataclass(frozen=True)
class Target:
    """The record a kind names: its noun, payload field, state key, and what must hold."""

    noun: str
    field: str
    key: Callable[[Value], bytes]
    must_exist: bool = True
    check: StateCheck | None = None


def _shipment_open(record: Value, kind: str, payload: Payload) -> str | None:
    """The shipment is open (a seizure excepted), and a customs decision may follow its
    customs status (the contract's own transition table)."""
    s = Shipment.from_obj(record)
    decision = payload.get("decision") if kind == "shipment.customs_decision" else None
    if decision != "seize" and s.customs_status == "seized":
        return f"shipment {s.id} has been seized by customs"
    if decision != "seize" and s.stage == "delivered":
        return f"shipment {s.id} is delivered and closed"
    allowed = CUSTOMS_TRANSITIONS.get(str(decision), (None,))[0]
    if allowed is not None and s.customs_status not in allowed:
        return f"cannot {decision} shipment {s.id}: its customs status is {s.customs_status}"
    return None


def _permit_may(record: Value, kind: str, _payload: Payload) -> str | None:
    p = Permit.from_obj(record)
    status = effective_status(p, system_ms())
    allowed = TRANSITIONS[kind].from_statuses
    if status in allowed:
        return None
    return f"permit {p.id} is {status}; {kind} applies to {', '.join(sorted(allowed))} permits"


def _text_key(make: Callable[[str], bytes]) -> Callable[[Value], bytes]:
    return lambda v: make(str(v))


def _bytes_key(make: Callable[[bytes], bytes]) -> Callable[[Value], bytes]:
    return lambda v: make(v if isinstance(v, bytes) else b"")


_SHIPMENT = Target("shipment", "shipment_id", _text_key(sk.shipment_key), check=_shipment_open)
PRECHECKS: dict[str, Target] = {
    "shipment.declare": Target("shipment", "id", _text_key(sk.shipment_key), must_exist=False),
    **{
        f"shipment.{a}": _SHIPMENT
        for a in ("confirm_party", "attach_document", "offer_custody", "accept_custody")
    },
    **{f"shipment.{a}": _SHIPMENT for a in ("milestone", "deliver", "customs_decision")},
    "permit.apply": Target("permit", "id", _text_key(sk.permit_key), must_exist=False),
    **{
        kind: Target("permit", "permit_id", _text_key(sk.permit_key), check=_permit_may)
        for kind in TRANSITIONS
    },
    "energy.cancel_order": Target("order", "order_id", _text_key(sk.order_key)),
    "energy.revoke_meter": Target("meter", "meter_key", _bytes_key(sk.meter_key)),
    "identity.revoke_member": Target("member", "public_key", _bytes_key(sk.member_key)),
}


def precheck_problem(
    client: NodeClient, reads: Reads | None, kind: str, payload: Payload
) -> str | None:
    """Why ``kind`` with ``payload`` would certainly fail, or None (or cannot tell)."""
    target = PRECHECKS.get(kind)
    if target is None or target.field not in payload:
        return None
    ident = payload[target.field]
    key = target.key(ident)
    status, answer = client.get_any(f"/v1/state/{key.hex()}")
    if status != 200:
        return None  # the read rules hide it from this key: the node decides
    if reads is not None:
        verified = reads.accept(
            lambda: verify_state_view(answer, reads.genesis, key), reads.current()
        )
        record, where = verified.view.value, f"proven at height {verified.height}"
    else:
        raw = answer.get("value")
        record, where = (None if not isinstance(raw, bytes) else decode(raw)), "the node says"
    name = ident.hex() if isinstance(ident, bytes) else ident
    if record is None:
        return f"no {target.noun} {name} exists ({where})" if target.must_exist else None
    if not target.must_exist:
        return f"{target.noun} {name} already exists ({where})"
    return None if target.check is None else target.check(record, kind, payload)
