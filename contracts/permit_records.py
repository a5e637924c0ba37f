"""Permit records as stored: the permit at ``permit/<id>`` and its history entries at
``permit/<id>/h/<seq>`` (:mod:`contracts.state_keys`).

Handlers read and write them through :func:`load_permit` / :func:`save_permit`
and :func:`store_permit_entry`.
"""

from __future__ import annotations

from dataclasses import dataclass

from contracts import state_keys as sk
from contracts.context import TxContext
from contracts.record import Details, Natural, Record

MAX_INSPECTIONS = 100


@dataclass(frozen=True, slots=True)
class Inspection(Record):
    """One inspection of an issued (or suspended) permit."""

    record_type = "inspection"
    result: str
    notes: str
    by: str
    time_ms: Natural


@dataclass(frozen=True, slots=True)
class Permit(Record):
    """A permit as it stands: holder, place, window of validity, stored status.

    ``status`` is the stored one; :func:`contracts.permits.effective_status` reads
    it at a time (an issued or suspended permit reads ``expired`` from
    ``valid_until`` on).
    """

    record_type = "permit"
    id: str
    type: str
    holder: str
    applicant: bytes
    address: str
    description: str
    hs_codes: tuple[str, ...]
    status: str
    valid_from: Natural
    valid_until: Natural
    conditions: str
    renewals: Natural
    inspections: tuple[Inspection, ...]
    reason: str
    applied_time_ms: Natural
    history_len: Natural

    @property
    def key(self) -> bytes:
        return sk.permit_key(self.id)


@dataclass(frozen=True, slots=True)
class PermitEvent(Record):
    """History entry ``seq``: the action, the status it left, who and when."""

    record_type = "permit_history"
    seq: int
    action: str
    status: str
    actor_org: str
    actor: bytes
    time_ms: int
    height: int
    tx_hash: bytes
    details: Details


def load_permit(ctx: TxContext, permit_id: str) -> Permit | None:
    obj = ctx.load(sk.permit_key(permit_id))
    return None if obj is None else Permit.from_obj(obj)


def save_permit(ctx: TxContext, permit: Permit) -> None:
    ctx.store(permit.key, permit.to_obj())


def store_permit_entry(ctx: TxContext, permit_id: str, entry: PermitEvent) -> None:
    ctx.store(sk.permit_history_key(permit_id, entry.seq), entry.to_obj())
