"""Governance records as stored, all under ``gov/`` (:mod:`contracts.state_keys`).

``gov/proposal/<id>`` holds a :class:`Proposal`; ``gov/registry`` the number of
proposals ever made and the ids still open; ``gov/list/<n>`` the id of the n-th
proposal (so a list is a walk down from the count, every step provable);
``gov/suspended/<org>`` a :class:`Suspension`; ``gov/founding`` the agencies
admitted as founding after genesis; ``gov/validator/<hex>`` the organisation a
validator key belongs to; ``gov/scheduled`` validator updates scheduled and not
yet in force. Nothing of this exists at genesis, so a chain that never governs
keeps the state (and state root) it had.

A proposal's stored ``status`` is one of pending, executed, withdrawn,
refused. *Expired* is computed, never stored: a pending proposal whose
``expires_height`` lies below the height asked about (:func:`status_at`).
"""

from __future__ import annotations

import re
from dataclasses import field

from contracts import state_keys as sk
from contracts.context import StateReader, TxContext
from contracts.fields import ORG_ID, stored
from contracts.record_cache import typed_record
from ledger.encoding import MAX_SIZE, Value
from ledger.schema import PUBLIC_KEY, AnyMap, Described, List, Nested, Str, wire

PROPOSAL_ID_PATTERN = re.compile(r"^gov-[0-9a-f]{32}$")
PROPOSAL_ID = Str(max_len=36, pattern=PROPOSAL_ID_PATTERN)
STATUSES = ("pending", "executed", "expired", "withdrawn", "refused")
ORG_LIST = List(ORG_ID, max_len=MAX_SIZE)


def proposal_id_of(tx_hash: bytes) -> str:
    """The id of the proposal a ``gov.propose`` transaction makes (known once it is signed)."""
    return "gov-" + tx_hash[:16].hex()


def proposal_key(proposal_id: str) -> bytes:
    return sk.gov_key("proposal", proposal_id)


def list_key(n: int) -> bytes:
    return sk.gov_key("list", str(n))


def suspended_key(org_id: str) -> bytes:
    return sk.gov_key("suspended", org_id)


def validator_owner_key(public_key: bytes) -> bytes:
    return sk.gov_key("validator", public_key.hex())


REGISTRY_KEY = sk.gov_key("registry")
FOUNDING_KEY = sk.gov_key("founding")
SCHEDULED_KEY = sk.gov_key("scheduled")


@stored("governance proposal")
class Proposal(Described):
    """A governance proposal: the change, who proposed and approved it, where it stands."""

    id: str = field(metadata=wire(PROPOSAL_ID))
    kind: str
    change: dict[str, Value] = field(metadata=wire(AnyMap()))
    proposer_org: str = field(metadata=wire(ORG_ID))
    proposer: bytes = field(metadata=wire(PUBLIC_KEY))
    approvals: tuple[str, ...] = field(metadata=wire(ORG_LIST))
    status: str
    created_height: int
    expires_height: int
    closed_height: int | None
    effective_height: int | None
    refusal: str
    refusal_message: str

    @property
    def key(self) -> bytes:
        return proposal_key(self.id)

    def status_at(self, height: int) -> str:
        """The status as of ``height``: a pending proposal past its expiry is expired."""
        if self.status == "pending" and height > self.expires_height:
            return "expired"
        return self.status


@stored("governance registry")
class Registry(Described):
    """How many proposals were ever made; the ids of those that may still be pending."""

    count: int
    open: tuple[str, ...] = field(metadata=wire(List(PROPOSAL_ID, max_len=MAX_SIZE)))

    @property
    def key(self) -> bytes:
        return REGISTRY_KEY


@stored("suspension")
class Suspension(Described):
    """An organisation suspended by proposal ``proposal`` at ``height``."""

    org: str = field(metadata=wire(ORG_ID))
    reason: str
    height: int
    proposal: str = field(metadata=wire(PROPOSAL_ID))

    @property
    def key(self) -> bytes:
        return suspended_key(self.org)


@stored("founding agencies")
class Founding(Described):
    """Agencies admitted as founding by governance (genesis agencies are not listed)."""

    orgs: tuple[str, ...] = field(metadata=wire(ORG_LIST))

    @property
    def key(self) -> bytes:
        return FOUNDING_KEY


@stored("validator owner")
class ValidatorOwner(Described):
    """The organisation a validator key belongs to (set by validator-add and -rotate)."""

    public_key: bytes = field(metadata=wire(PUBLIC_KEY))
    org: str = field(metadata=wire(ORG_ID))
    name: str

    @property
    def key(self) -> bytes:
        return validator_owner_key(self.public_key)


@stored("scheduled validator update")
class Scheduled(Described):
    """A validator update that takes effect at ``effective_height``."""

    public_key: bytes = field(metadata=wire(PUBLIC_KEY))
    power: int
    name: str
    org: str
    effective_height: int


@stored("scheduled validator updates")
class ScheduledList(Described):
    updates: tuple[Scheduled, ...] = field(metadata=wire(List(Nested(Scheduled), max_len=1000)))

    @property
    def key(self) -> bytes:
        return SCHEDULED_KEY


def load_registry(ctx: TxContext) -> Registry:
    return ctx.record(REGISTRY_KEY, Registry) or Registry(0, ())


def load_proposal(ctx: TxContext, proposal_id: str) -> Proposal:
    """Proposal ``proposal_id``; ``not_found`` when there is none."""
    return ctx.require_record(proposal_key(proposal_id), Proposal, "proposal", proposal_id)


def is_suspended(state: StateReader, org_id: str) -> bool:
    return state.get(suspended_key(org_id)) is not None


def admitted_founders(state: StateReader) -> tuple[str, ...]:
    raw = state.get(FOUNDING_KEY)
    return () if raw is None else typed_record(Founding, raw).orgs
