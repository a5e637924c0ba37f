"""Permit payloads: the described form of each ``permit.*`` transaction.

``permit.apply`` is :class:`Apply`; every later transition has a payload class of
its own shape (issue and renew carry a validity window, inspect a result, review
and approve an optional note, the rest a reason), read under its kind's name by
:func:`action_parser` and handed to the handler as one :class:`Action`. Parsing
is stateless, so the mempool runs it once at admission; the handlers that apply
a parsed payload to state are in :mod:`contracts.permits`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from contracts.errors import ContractError, bad_payload
from contracts.fields import AMOUNT, RECORD_ID, optional, payload, text
from contracts.permit_records import HS_PREFIXES
from ledger.encoding import Value
from ledger.schema import Choice, Described, Record, wire

PERMIT_TYPES = frozenset({"building", "business", "event", "import_licence"})
INSPECTION_RESULTS = frozenset({"pass", "fail", "partial"})
MAX_WINDOW_MS = 50 * 365 * 86_400_000


@payload("permit.apply")
class Apply(Described):
    """A member applies for a permit; its organisation becomes the holder."""

    id: str = field(metadata=wire(RECORD_ID))
    type: str = field(metadata=wire(Choice(PERMIT_TYPES)))
    address: str = field(metadata=wire(text(200)))
    description: str = field(metadata=wire(text()))
    hs_codes: tuple[str, ...] = optional(HS_PREFIXES, ())

    def __post_init__(self) -> None:
        if self.hs_codes and self.type != "import_licence":
            raise bad_payload("hs_codes only apply to an import_licence")
        if not self.address.strip():
            raise bad_payload("permit.apply.address must not be blank")


@dataclass(frozen=True, slots=True)
class Action:
    """What the handler of any transition reads; fields a kind does not take keep
    their defaults."""

    permit_id: str
    reason: str = ""
    valid_from: int = 0
    valid_until: int = 0
    conditions: str = ""
    result: str = ""
    time_ms: int | None = None


@dataclass(frozen=True, slots=True)
class Issue(Described):
    permit_id: str = field(metadata=wire(RECORD_ID))
    valid_from: int = field(metadata=wire(AMOUNT))
    valid_until: int = field(metadata=wire(AMOUNT))
    conditions: str = optional(text(min_len=0), "")

    def __post_init__(self) -> None:
        if not self.valid_from < self.valid_until <= self.valid_from + MAX_WINDOW_MS:
            raise bad_payload("permit.issue: need valid_from < valid_until within 50 years")

    def action(self) -> Action:
        return Action(
            self.permit_id,
            valid_from=self.valid_from,
            valid_until=self.valid_until,
            conditions=self.conditions,
        )


@dataclass(frozen=True, slots=True)
class Renew(Described):
    permit_id: str = field(metadata=wire(RECORD_ID))
    valid_until: int = field(metadata=wire(AMOUNT))

    def action(self) -> Action:
        return Action(self.permit_id, valid_until=self.valid_until)


@dataclass(frozen=True, slots=True)
class Inspect(Described):
    permit_id: str = field(metadata=wire(RECORD_ID))
    result: str = field(metadata=wire(Choice(INSPECTION_RESULTS)))
    notes: str = optional(text(min_len=0), "")
    time_ms: int | None = optional(AMOUNT, None)

    def action(self) -> Action:
        return Action(self.permit_id, result=self.result, reason=self.notes, time_ms=self.time_ms)


@dataclass(frozen=True, slots=True)
class Note(Described):
    """Review and approve: an optional note."""

    permit_id: str = field(metadata=wire(RECORD_ID))
    note: str = optional(text(min_len=0), "")

    def action(self) -> Action:
        return Action(self.permit_id, reason=self.note)


@dataclass(frozen=True, slots=True)
class Reason(Described):
    """Deny, suspend, reinstate, revoke: a reason is required."""

    permit_id: str = field(metadata=wire(RECORD_ID))
    reason: str = field(metadata=wire(text()))

    def action(self) -> Action:
        return Action(self.permit_id, reason=self.reason)


TRANSITION_PAYLOADS: dict[str, type[Issue | Renew | Inspect | Note | Reason]] = {
    "permit.issue": Issue,
    "permit.renew": Renew,
    "permit.inspect": Inspect,
    "permit.review": Note,
    "permit.approve": Note,
}


def action_parser(kind: str) -> Callable[[Value], Action]:
    """The parser of transition ``kind``'s payload (refusals name ``kind``)."""
    record = Record(
        TRANSITION_PAYLOADS.get(kind, Reason), kind, error=bad_payload, convert=(ContractError,)
    )

    def parse(obj: Value) -> Action:
        return record.from_obj(obj).action()

    return parse
