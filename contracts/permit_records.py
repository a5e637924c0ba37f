"""Permit records as stored: the permit at ``permit/<id>`` and its history entries at
``permit/<id>/h/<seq>`` (:mod:`contracts.state_keys`).

Handlers read them through :func:`load_permit` / :func:`require_permit`, store a
permit with :meth:`~contracts.context.TxContext.save` and an entry with
:func:`store_permit_entry`.
"""

from __future__ import annotations

from dataclasses import field

from contracts import codes
from contracts import state_keys as sk
from contracts.context import TxContext
from contracts.fields import ORG_ID, RECORD_ID, HistoryEntry, stored
from ledger.encoding import MAX_SIZE
from ledger.schema import PUBLIC_KEY, Described, List, Nested, Str, wire

MAX_INSPECTIONS = 100
MAX_HS_CODES = 50
HS_PREFIXES = List(
    Str(max_len=MAX_SIZE, pattern=codes.HS_PREFIX_PATTERN), max_len=MAX_HS_CODES, distinct=True
)
"""An import licence's scope: distinct HS code prefixes."""


@stored("inspection")
class Inspection(Described):
    """One inspection of an issued (or suspended) permit."""

    result: str
    notes: str
    by: str = field(metadata=wire(ORG_ID))
    time_ms: int


@stored("permit")
class Permit(Described):
    """A permit as it stands: holder, place, window of validity, stored status.

    ``status`` is the stored one; :func:`contracts.permits.effective_status` reads
    it at a time (an issued or suspended permit reads ``expired`` from
    ``valid_until`` on).
    """

    id: str = field(metadata=wire(RECORD_ID))
    type: str
    holder: str = field(metadata=wire(ORG_ID))
    applicant: bytes = field(metadata=wire(PUBLIC_KEY))
    address: str
    description: str
    hs_codes: tuple[str, ...] = field(metadata=wire(HS_PREFIXES))
    status: str
    valid_from: int
    valid_until: int
    conditions: str
    renewals: int
    inspections: tuple[Inspection, ...] = field(
        metadata=wire(List(Nested(Inspection), max_len=MAX_INSPECTIONS))
    )
    reason: str
    applied_time_ms: int
    history_len: int

    @property
    def key(self) -> bytes:
        return sk.permit_key(self.id)


@stored("permit_history")
class PermitEvent(HistoryEntry):
    """History entry ``seq``: the action, the status it left, who and when (the block's
    time)."""

    action: str
    status: str
    time_ms: int


def load_permit(ctx: TxContext, permit_id: str) -> Permit | None:
    """Permit ``permit_id``, or None when it does not exist."""
    return ctx.record(sk.permit_key(permit_id), Permit)


def require_permit(ctx: TxContext, permit_id: str) -> Permit:
    """Permit ``permit_id``; ``not_found`` when it does not exist."""
    return ctx.require_record(sk.permit_key(permit_id), Permit, "permit", permit_id)


def store_permit_entry(ctx: TxContext, permit_id: str, entry: PermitEvent) -> None:
    ctx.store(sk.permit_history_key(permit_id, entry.seq), entry.to_obj())
