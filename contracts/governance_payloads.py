"""Governance payloads: ``gov.propose``, ``gov.approve``, ``gov.withdraw``.

A proposal is ``{"kind": K, "change": {...}}``; the change is described per kind
(:data:`CHANGES`) and parsed with it, so a malformed change is refused before
anything is stored. Parsing is stateless; what the change means against state
is checked by :mod:`contracts.governance_changes` (at proposal and again at
execution). A key rotation carries the new key's signature over the old and
new key (:func:`possession_message`, purpose ``VALIDATOR_KEY``): the node that
will sign with it holds it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from contracts.errors import bad_payload
from contracts.fields import ORG_ID, optional, payload, text
from contracts.governance_records import PROPOSAL_ID
from contracts.identity_payloads import NewMember, check_distinct_keys
from contracts.params import INT_RANGES, AppParams
from ledger.block import MAX_EVENTS
from ledger.encoding import Value
from ledger.errors import ValidationError
from ledger.schema import (
    PUBLIC_KEY,
    SIGNATURE,
    AnyMap,
    Choice,
    Described,
    Int,
    List,
    Nested,
    Str,
    wire,
)
from ledger.validators import MAX_TOTAL_POWER

POWER = Int(lo=1, hi=MAX_TOTAL_POWER)
VALIDATOR_NAME = Str(max_len=64, min_len=1, control=False)
# one grant seats a shift of officers; each member is one event of the executing receipt,
# which holds at most MAX_EVENTS (the approval's own events too)
MAX_GRANT_MEMBERS = MAX_EVENTS - 16
SETTABLE_PARAMS = frozenset({"restricted_hs_codes", *INT_RANGES})


@payload("gov.propose validator-add")
class ValidatorAdd(Described):
    """A new validator; ``org`` owns it (default: the proposer's organisation)."""

    public_key: bytes = field(metadata=wire(PUBLIC_KEY))
    name: str = field(metadata=wire(VALIDATOR_NAME))
    power: int = field(metadata=wire(POWER))
    org: str = optional(ORG_ID, "")
    p2p: str = optional(text(260), "")


@payload("gov.propose validator-remove")
class ValidatorRemove(Described):
    """Take a validator out of the set."""

    public_key: bytes = field(metadata=wire(PUBLIC_KEY))


@payload("gov.propose validator-power")
class ValidatorPower(Described):
    """Change a validator's voting power."""

    public_key: bytes = field(metadata=wire(PUBLIC_KEY))
    power: int = field(metadata=wire(POWER))


@payload("gov.propose validator-rotate")
class ValidatorRotate(Described):
    """``public_key`` hands its seat to ``new_public_key``, which signed ``proof``."""

    public_key: bytes = field(metadata=wire(PUBLIC_KEY))
    new_public_key: bytes = field(metadata=wire(PUBLIC_KEY))
    proof: bytes = field(metadata=wire(SIGNATURE))

    def __post_init__(self) -> None:
        if self.public_key == self.new_public_key:
            raise bad_payload("gov.propose validator-rotate: the new key is the old key")


@payload("gov.propose role-grant")
class RoleGrant(Described):
    """Give each listed member of ``org`` its roles: registers the key, or extends the
    roles of a member it already is (its name then stays)."""

    org: str = field(metadata=wire(ORG_ID))
    members: tuple[NewMember, ...] = field(
        metadata=wire(List(Nested(NewMember), min_len=1, max_len=MAX_GRANT_MEMBERS))
    )

    def __post_init__(self) -> None:
        check_distinct_keys(self.members, "gov.propose role-grant")


@dataclass(frozen=True, slots=True)
class SuspensionChange(Described):
    """An organisation's suspension set or lifted, and why: :class:`OrgSuspend`,
    :class:`OrgUnsuspend`."""

    org: str = field(metadata=wire(ORG_ID))
    reason: str = field(metadata=wire(text()))


@payload("gov.propose org-suspend")
class OrgSuspend(SuspensionChange):
    """Suspend an organisation: its members' transactions are refused, its validators
    removed."""


@payload("gov.propose org-unsuspend")
class OrgUnsuspend(SuspensionChange):
    """Lift an organisation's suspension (its removed validators stay removed)."""


@payload("gov.propose founding-admit")
class FoundingAdmit(Described):
    """Make a registered agency a founding agency (it then approves proposals)."""

    org: str = field(metadata=wire(ORG_ID))


@payload("gov.propose params-set")
class ParamsSet(Described):
    """New values for some contract parameters (:data:`SETTABLE_PARAMS`)."""

    params: dict[str, Value] = field(metadata=wire(AnyMap()))

    def __post_init__(self) -> None:
        unknown = sorted(set(self.params) - SETTABLE_PARAMS)
        if unknown or not self.params:
            raise bad_payload(
                f"gov.propose params-set: give some of {sorted(SETTABLE_PARAMS)}"
                + (f"; not settable: {unknown}" if unknown else "")
            )
        try:
            merge_params(AppParams(), self.params)
        except ValidationError as exc:
            raise bad_payload(f"gov.propose params-set: {exc.message}") from None


def merge_params(current: AppParams, changes: dict[str, Value]) -> AppParams:
    """``current`` with ``changes`` applied, checked against the same ranges as genesis."""
    values: dict[str, Any] = {**current.to_obj(), **changes}
    restricted = values.pop("restricted_hs_codes")
    if not isinstance(restricted, list) or not all(isinstance(c, str) for c in restricted):
        raise ValidationError("restricted_hs_codes must be a list of HS prefixes")
    return AppParams(restricted_hs_codes=tuple(sorted(set(restricted))), **values)


CHANGES: dict[str, type[Described]] = {
    "validator-add": ValidatorAdd,
    "validator-remove": ValidatorRemove,
    "validator-power": ValidatorPower,
    "validator-rotate": ValidatorRotate,
    "role-grant": RoleGrant,
    "org-suspend": OrgSuspend,
    "org-unsuspend": OrgUnsuspend,
    "founding-admit": FoundingAdmit,
    "params-set": ParamsSet,
}


@payload("gov.propose")
class Propose(Described):
    """An admin of a founding agency proposes a governance change (its agency approves it)."""

    kind: str = field(metadata=wire(Choice(CHANGES)))
    change: dict[str, Value] = field(metadata=wire(AnyMap()))


@dataclass(frozen=True, slots=True)
class ParsedProposal:
    """A ``gov.propose`` payload with its change parsed into the kind's type."""

    kind: str
    change: Any

    def change_obj(self) -> dict[str, Value]:
        obj: dict[str, Value] = self.change.to_obj()
        return obj


def parse_propose(obj: Value) -> ParsedProposal:
    p = Propose.from_obj(obj)
    return ParsedProposal(p.kind, CHANGES[p.kind].from_obj(p.change))


def possession_message(old_key: bytes, new_key: bytes) -> bytes:
    """What a rotation's new key signs (purpose ``VALIDATOR_KEY``, bound to the chain id)."""
    return b"rotate:" + old_key + new_key


@dataclass(frozen=True, slots=True)
class ProposalRef(Described):
    """A payload naming only a proposal: :class:`Approve`, :class:`Withdraw`."""

    id: str = field(metadata=wire(PROPOSAL_ID))


@payload("gov.approve")
class Approve(ProposalRef):
    """An admin of a founding agency approves a pending proposal for its agency."""


@payload("gov.withdraw")
class Withdraw(ProposalRef):
    """An admin of the proposing organisation withdraws its pending proposal."""
