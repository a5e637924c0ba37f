"""Permit payloads: the parsed, checked form of each ``permit.*`` transaction.

``permit.apply`` parses into :class:`Apply`; every later transition parses into
one :class:`Action` whose extra fields depend on the kind (issue and renew carry
a validity window, inspect a result, the rest a note or a reason). Parsing is
stateless, so the mempool runs it once at admission; the handlers that apply a
parsed payload to state are in :mod:`contracts.permits`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from contracts import codes
from contracts.errors import bad_payload
from contracts.payload import Fields
from ledger.encoding import Value

PERMIT_TYPES = frozenset({"building", "business", "event", "import_licence"})
INSPECTION_RESULTS = frozenset({"pass", "fail", "partial"})
MAX_WINDOW_MS = 50 * 365 * 86_400_000


@dataclass(frozen=True, slots=True)
class Apply:
    id: str
    type: str
    address: str
    description: str
    hs_codes: tuple[str, ...]


def parse_apply(payload: Value) -> Apply:
    f = Fields(payload, "permit.apply")
    permit_id = f.record_id("id")
    permit_type = f.choice("type", PERMIT_TYPES)
    address = f.text("address", max_len=200)
    description = f.text("description")
    hs_codes = (
        f.strings("hs_codes", max_len=50, pattern=codes.HS_PREFIX_PATTERN)
        if f.has("hs_codes")
        else ()
    )
    f.done()
    if hs_codes and permit_type != "import_licence":
        raise bad_payload("hs_codes only apply to an import_licence")
    if not address.strip():
        raise bad_payload("permit.apply.address must not be blank")
    return Apply(permit_id, permit_type, address, description, hs_codes)


@dataclass(frozen=True, slots=True)
class Action:
    """The payload of any transition; fields a kind does not take keep their defaults."""

    permit_id: str
    reason: str = ""
    valid_from: int = 0
    valid_until: int = 0
    conditions: str = ""
    result: str = ""
    time_ms: int | None = None


def _parse_extra(kind: str, f: Fields, permit_id: str) -> Action:
    if kind == "permit.issue":
        valid_from, valid_until = f.integer("valid_from"), f.integer("valid_until")
        if not valid_from < valid_until <= valid_from + MAX_WINDOW_MS:
            raise bad_payload("permit.issue: need valid_from < valid_until within 50 years")
        return Action(
            permit_id,
            valid_from=valid_from,
            valid_until=valid_until,
            conditions=f.opt_text("conditions"),
        )
    if kind == "permit.renew":
        return Action(permit_id, valid_until=f.integer("valid_until"))
    if kind == "permit.inspect":
        return Action(
            permit_id,
            result=f.choice("result", INSPECTION_RESULTS),
            reason=f.opt_text("notes"),
            time_ms=f.opt_integer("time_ms"),
        )
    if kind in ("permit.review", "permit.approve"):
        return Action(permit_id, reason=f.opt_text("note"))
    return Action(permit_id, reason=f.text("reason"))


def action_parser(kind: str) -> Callable[[Value], Action]:
    """The parser of transition ``kind``'s payload."""

    def parse(payload: Value) -> Action:
        f = Fields(payload, kind)
        action = _parse_extra(kind, f, f.record_id("permit_id"))
        f.done()
        return action

    return parse
