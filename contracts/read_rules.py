"""Who may read which record: the API applies these before answering a query or a proof.

The ledger itself is replicated to every validator; these rules govern what a
node's API discloses to a requester (identified by a signed API request, see
:func:`reader_for`). Auditors may read everything.

=================  =========================================================
record type        readable by
=================  =========================================================
params, nonce      everyone
organisation       everyone
member             everyone
permit (+history)  everyone (permits are public records)
shipment           its consignor, consignee and declarant, every organisation
(+history)         that has held it or been offered custody; roles customs,
                   port, auditor (commercial data stays among those involved)
energy_account     the owner organisation; roles energy_regulator, auditor
meter, reading     the owner organisation; roles energy_regulator, auditor
energy_order       the ordering organisation; roles energy_regulator, auditor
market             roles prosumer, energy_regulator, auditor
trade              seller and buyer; roles energy_regulator, auditor
governance         every registered member (proposals, suspensions, the
                   validator owners: who decides on the network is no secret
                   among its members, but no business of outsiders)
anything else      auditors only
=================  =========================================================

Absence is guarded like presence: a key of a public type may be proven absent
to anyone; a confidential one only to a reader who would see the record if it
existed (its role readers; for an energy account, the organisation it is named
after). Anyone else gets the same refusal whether the record exists or not, so
the answers are no oracle for which shipment, meter or order ids exist.

Transactions (their payloads, and the events and messages of their receipts)
follow the record they act on (:func:`may_read_tx`): ``permit.*`` and
``identity.*`` are public like their records; ``gov.*`` readable by every
member, like governance records; a ``shipment.*`` transaction is
readable by whoever may read the shipment; an ``energy.*`` transaction by the
energy regulator, the sender's organisation and the organisation it names as
account or owner; anything else by its sender's organisation. Auditors read all,
and the sender's own organisation always reads what it sent.
"""

from __future__ import annotations

from dataclasses import dataclass

from contracts import codes
from contracts import state_keys as sk
from contracts.context import StateReader
from contracts.energy_records import Account, Meter, Order, Position, Trade
from contracts.fields import RecordError
from contracts.governance_records import is_suspended
from contracts.identity_records import Member
from contracts.record_cache import typed_record
from contracts.shipment_records import Shipment
from ledger.encoding import Value, decode
from ledger.schema import Described

PUBLIC_TX_PREFIXES = ("permit.", "identity.")
PUBLIC = frozenset({"params", "nonce", "organisation", "member", "permit", "permit_history"})
MEMBERS_ONLY = frozenset({"governance"})  # every active member of any organisation
# record type -> roles that may read every record of that type
ROLE_READERS: dict[str, frozenset[str]] = {
    "shipment": frozenset({"customs", "port", "auditor"}),
    "shipment_history": frozenset({"customs", "port", "auditor"}),
    "energy_account": frozenset({"energy_regulator", "auditor"}),
    "meter": frozenset({"energy_regulator", "auditor"}),
    "meter_reading": frozenset({"energy_regulator", "auditor"}),
    "energy_order": frozenset({"energy_regulator", "auditor"}),
    "market": frozenset({"prosumer", "energy_regulator", "auditor"}),
    "trade": frozenset({"energy_regulator", "auditor"}),
    "unknown": frozenset({"auditor"}),
}


@dataclass(frozen=True, slots=True)
class Reader:
    """Who is asking: an organisation and roles, or nobody in particular (public)."""

    org: str | None
    roles: frozenset[str]

    @classmethod
    def public(cls) -> Reader:
        return cls(None, frozenset())


def reader_for(state: StateReader, public_key: bytes | None) -> Reader:
    """The reader behind a verified API request key (public if unknown, revoked or of a
    suspended organisation)."""
    if public_key is None:
        return Reader.public()
    raw = state.get(sk.member_key(public_key))
    if raw is None:
        return Reader.public()
    member = typed_record(Member, raw)
    if not member.active or is_suspended(state, member.org):
        return Reader.public()
    return Reader(member.org, frozenset(member.roles))


def shipment_readers(shipment: Shipment) -> set[str]:
    """Organisations entitled to a shipment's commercial data."""
    orgs = shipment.involved()
    if shipment.custody_offer is not None:
        orgs.add(shipment.custody_offer.to)
    return orgs


# record type -> the stored record whose owners may read it (history entries and
# readings are governed by their shipment and meter, see _parent_key; an account's
# interval positions share its record type)
OWNED: dict[str, type[Described]] = {
    "shipment": Shipment,
    "shipment_history": Shipment,
    "energy_account": Account,
    "meter": Meter,
    "meter_reading": Meter,
    "energy_order": Order,
    "trade": Trade,
}


def owners_of(record: object) -> set[str]:
    """The organisations a record belongs to (beyond the role readers)."""
    if isinstance(record, Shipment):
        return shipment_readers(record)
    if isinstance(record, Account | Position):
        return {record.org}
    if isinstance(record, Meter):
        return {record.owner}
    if isinstance(record, Order):
        return {record.account}
    if isinstance(record, Trade):
        return {record.seller, record.buyer}
    return set()


def may_read(record_type: str, record: object, reader: Reader) -> bool:
    """Whether ``reader`` may see ``record`` of ``record_type``.

    For ``shipment_history`` and ``meter_reading`` pass the *parent* record
    (the shipment, the meter): entries are readable exactly when it is.
    """
    if record_type in PUBLIC or (record_type in MEMBERS_ONLY and reader.org is not None):
        return True
    if not reader.roles.isdisjoint(ROLE_READERS.get(record_type, ROLE_READERS["unknown"])):
        return True
    return reader.org is not None and reader.org in owners_of(record)


def may_read_key(state: StateReader, key: bytes, reader: Reader) -> bool:
    """Read rule for a raw state key, as used for state proofs."""
    record_type = sk.key_kind(key)
    if record_type in PUBLIC:
        return True
    parent_key = _parent_key(record_type, key)
    raw = state.get(parent_key if parent_key is not None else key)
    if raw is None:
        return may_know_absent(record_type, key, reader)
    record = _governing_record(record_type, key, raw)
    if record is None:  # not a record of its type: only auditors see it
        return "auditor" in reader.roles
    return may_read(record_type, record, reader)


def may_know_absent(record_type: str, key: bytes, reader: Reader) -> bool:
    """Whether ``reader`` may learn that no record of ``record_type`` is at ``key``."""
    if record_type in PUBLIC or (record_type in MEMBERS_ONLY and reader.org is not None):
        return True
    if not reader.roles.isdisjoint(ROLE_READERS.get(record_type, ROLE_READERS["unknown"])):
        return True
    return record_type == "energy_account" and key == sk.energy_account_key(reader.org or "")


def _governing_record(record_type: str, key: bytes, raw: bytes) -> object | None:
    """The record (typed when its type has owners) whose rule governs ``key``."""
    if record_type == "energy_account" and b"/i/" in key:
        owned: type[Described] | None = Position  # an interval position of the account
    else:
        owned = OWNED.get(record_type)
    value = decode(raw)
    if owned is None:
        return value if isinstance(value, dict) else None
    try:
        return owned.from_obj(value)
    except RecordError:
        return None


def _parent_key(record_type: str, key: bytes) -> bytes | None:
    """The record whose rule governs ``key`` (history entries follow their shipment,
    readings their meter); ``None`` when ``key`` governs itself."""
    if record_type == "shipment_history":
        return sk.shipment_key(key.decode("ascii").split("/")[1])
    if record_type == "meter_reading":
        try:
            return sk.meter_key(bytes.fromhex(key.decode("ascii").split("/")[2]))
        except ValueError:
            return None
    return None


def sender_org(state: StateReader, sender: bytes) -> str | None:
    """The organisation behind a transaction's sender: a member's, or a meter's owner."""
    raw = state.get(sk.member_key(sender))
    if raw is not None:
        return typed_record(Member, raw).org
    raw = state.get(sk.meter_key(sender))
    if raw is not None:
        return typed_record(Meter, raw).owner
    return None


def may_read_tx(
    state: StateReader, kind: str, sender: bytes, payload: Value, reader: Reader
) -> bool:
    """Whether ``reader`` may see a transaction's payload and its receipt's events.

    ``state`` is the state after the transaction's block: the record it acted on as
    it then stood decides, as for the record itself. Cheap checks come first: a
    public reader needs no state read at all.
    """
    if kind.startswith(PUBLIC_TX_PREFIXES) or "auditor" in reader.roles:
        return True
    if reader.org is None:
        return False
    if kind.startswith("gov."):
        return True
    fields = payload if isinstance(payload, dict) else {}
    if kind.startswith("shipment."):
        if not reader.roles.isdisjoint(ROLE_READERS["shipment"]):
            return True
        shipment_id = fields.get("id" if kind == "shipment.declare" else "shipment_id")
        if isinstance(shipment_id, str) and codes.is_record_id(shipment_id):
            raw = state.get(sk.shipment_key(shipment_id))
            if raw is not None and may_read("shipment", typed_record(Shipment, raw), reader):
                return True
    elif kind.startswith("energy."):
        if "energy_regulator" in reader.roles:
            return True
        if reader.org in (fields.get("account"), fields.get("owner")):
            return True
    return reader.org == sender_org(state, sender)
