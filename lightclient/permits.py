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
from lightclient.errors import VerificationError
from lightclient.headers import CertifiedHeader, verify_certified
from lightclient.records import KeptHistory

PERMITS = KeptHistory("permit", Permit, PermitEvent, sk.permit_key, sk.permit_history_key)


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
    record, history = PERMITS.verify(answer, certified.header, permit_id)
    return PermitView(certified, record, history)


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
