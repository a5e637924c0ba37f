"""Permits: the proven record and its history, and validity at a time recomputed here."""

from __future__ import annotations

from dataclasses import dataclass

from contracts import state_keys as sk
from contracts.permit_records import Permit, PermitEvent
from contracts.permits import permit_valid_at
from ledger.encoding import Value
from ledger.genesis import Genesis
from lightclient.errors import VerificationError, answer_field
from lightclient.headers import CertifiedHeader, verify_certified
from lightclient.records import require_typed


@dataclass(frozen=True, slots=True)
class PermitView:
    certified: CertifiedHeader
    permit: Permit
    history: tuple[PermitEvent, ...]


def verify_permit(answer: Value, genesis: Genesis, permit_id: str) -> PermitView:
    """The permit record and whatever history came with it, proven at the certified height."""
    certified = verify_certified(answer, genesis)
    header = certified.header
    record = require_typed(
        answer_field(answer, "permit", "the answer"), header, sk.permit_key(permit_id), Permit
    )
    items = answer.get("history", [])
    if not isinstance(items, list):
        raise VerificationError("the permit history is malformed")
    if items and len(items) != record.history_len:
        raise VerificationError(
            f"the permit says {record.history_len} history entries, the node sent {len(items)}"
        )
    history = tuple(
        require_typed(item, header, sk.permit_history_key(permit_id, seq), PermitEvent)
        for seq, item in enumerate(items)
    )
    return PermitView(certified, record, history)


def verify_validity(
    answer: Value, genesis: Genesis, permit_id: str, at_ms: int
) -> tuple[PermitView, bool, str]:
    """Is the permit valid at ``at_ms``? Recomputed here from the proven record."""
    view = verify_permit(answer, genesis, permit_id)
    if answer.get("at_ms", at_ms) != at_ms:
        raise VerificationError(f"the node answered for time {answer.get('at_ms')}, not {at_ms}")
    valid, reason = permit_valid_at(view.permit, at_ms)
    if answer.get("valid", valid) != valid:
        raise VerificationError(
            f"the node says valid={answer.get('valid')}, the proven record says {valid}"
        )
    return view, valid, reason
