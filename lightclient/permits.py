"""Permits: the proven record and its whole history, and validity judged at a time.

Validity at a time T is judged on the permit as it stood at T: the latest proven
history tells which entries were written by T (each entry carries its block's
time), and the permit's proven state at the height of the last of them is the
permit at T (:func:`state_height_at`, :func:`verify_permit_then`). A permit
revoked after T is judged by its state before the revocation.
"""

from __future__ import annotations

from dataclasses import dataclass

from contracts import state_keys as sk
from contracts.permit_records import Permit, PermitEvent
from ledger.encoding import Value
from ledger.genesis import Genesis
from lightclient.answers import HistoryCount
from lightclient.errors import VerificationError, answer_field
from lightclient.headers import CertifiedHeader, verify_certified
from lightclient.records import require_typed


@dataclass(frozen=True, slots=True)
class PermitView:
    certified: CertifiedHeader
    permit: Permit
    history: tuple[PermitEvent, ...]

    def histories(self) -> tuple[HistoryCount, ...]:
        what = f"permit {self.permit.id!r}"
        return (HistoryCount(what, self.permit.history_len, len(self.history)),)


def verify_permit(answer: Value, genesis: Genesis, permit_id: str) -> PermitView:
    """The permit record and its whole history, proven at the certified height."""
    certified = verify_certified(answer, genesis)
    header = certified.header
    record = require_typed(
        answer_field(answer, "permit", "the answer"), header, sk.permit_key(permit_id), Permit
    )
    if record.id != permit_id:
        raise VerificationError(f"the proven record is not permit {permit_id!r}")
    items = answer_field(answer, "history", "the answer")
    if not isinstance(items, list):
        raise VerificationError("the permit history is malformed")
    if len(items) != record.history_len:
        raise VerificationError(
            f"the permit says {record.history_len} history entries, the node sent {len(items)} "
            "(truncated or emptied history)"
        )
    history = tuple(
        _history_entry(item, certified, permit_id, seq) for seq, item in enumerate(items)
    )
    return PermitView(certified, record, history)


def _history_entry(
    item: Value, certified: CertifiedHeader, permit_id: str, seq: int
) -> PermitEvent:
    """History entry ``seq``, proven, well formed and not from after the answered height."""
    key = sk.permit_history_key(permit_id, seq)
    entry = require_typed(item, certified.header, key, PermitEvent)
    if entry.seq != seq or entry.height > certified.height:
        raise VerificationError(f"permit {permit_id!r}: history entry {seq} is malformed")
    return entry


def entries_by(view: PermitView, at_ms: int) -> int:
    """How many of the permit's history entries were written at or before ``at_ms``."""
    return sum(1 for entry in view.history if entry.time_ms <= at_ms)


def state_height_at(view: PermitView, at_ms: int) -> int | None:
    """The height whose state is the permit at ``at_ms`` (None: it did not exist yet)."""
    count = entries_by(view, at_ms)
    return None if count == 0 else view.history[count - 1].height


def verify_permit_then(then: PermitView, latest: PermitView, at_ms: int) -> None:
    """``then`` is the permit as it stood at ``at_ms``: the state after exactly the
    entries of ``latest``'s history written by that time."""
    count = entries_by(latest, at_ms)
    if then.permit.history_len != count or then.history != latest.history[:count]:
        raise VerificationError(
            f"the permit at height {then.certified.height} is not the permit as it stood at "
            f"the time asked ({then.permit.history_len} history entries, {count} expected)"
        )
