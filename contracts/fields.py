"""The field descriptions the contracts share, on :mod:`ledger.schema`.

Every transaction payload and every stored record is a class whose fields carry
a spec (``field(metadata=wire(...))``); :func:`payload` and :func:`stored` make
it a frozen dataclass and compile its description, so ``from_obj`` and
``to_obj`` derive from that one description. A payload that does not fit is
refused with ``bad_payload`` and a message naming the kind and the field
(``shipment.declare.origin: ...``); rules between fields live in the payload's
``__post_init__``; its docstring says what the kind does. A stored record's
plain ``int`` and ``str`` fields need no spec (:data:`STORED_BY_TYPE`); a stored
map that does not fit its record raises :class:`RecordError`.

The specs here are the vocabulary both sides use: ids, text, places, counts;
:class:`HistoryEntry` is what every record history's entries share.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypedDict, TypeVar, dataclass_transform

from contracts import codes
from contracts.errors import ContractError, bad_payload
from ledger.encoding import INT_MAX, MAX_SIZE, Value
from ledger.errors import LedgerError
from ledger.genesis import ORG_ID_PATTERN
from ledger.schema import (
    HASH,
    MAX_I63,
    PUBLIC_KEY,
    AnyMap,
    Described,
    Int,
    Optional,
    Spec,
    Str,
    Where,
    described,
    wire,
)

T = TypeVar("T")

MAX_TEXT = 500


class RecordError(LedgerError):
    """A stored map that is not a record of the kind it was read as."""

    code = "bad_record"


@dataclass_transform(frozen_default=True, field_specifiers=(field,))
def payload(what: str) -> Callable[[type[T]], type[T]]:
    """Describe a transaction payload: the class becomes a frozen dataclass with slots
    whose parse refuses with ``bad_payload`` naming ``what``. Its docstring is required:
    it says what the kind does (the first paragraph is the kind's summary in
    :func:`contracts.context.handler`)."""
    describe = _described_dataclass(described(what, error=bad_payload, convert=(ContractError,)))

    def decorate(cls: type[T]) -> type[T]:
        if not (cls.__doc__ or "").strip():  # before @dataclass writes its own
            raise TypeError(f"payload {cls.__name__} ({what}) has no docstring")
        return describe(cls)

    return decorate


@dataclass_transform(frozen_default=True, field_specifiers=(field,))
def stored(what: str) -> Callable[[type[T]], type[T]]:
    """Describe a stored record: the class becomes a frozen dataclass with slots; a map
    that does not fit it raises :class:`RecordError`. A field that names no spec is
    read by its type (:data:`STORED_BY_TYPE`): what this code wrote is checked for its
    type and sign only, a bound belongs to the payload that let the value in."""
    return _described_dataclass(described(what, error=RecordError, by_type=STORED_BY_TYPE))


def _described_dataclass(describe: Callable[[type[T]], type[T]]) -> Callable[[type[T]], type[T]]:
    """``describe`` applied to the class made a frozen dataclass with slots: every payload
    and record is one (immutable, no per-instance dict)."""

    def decorate(cls: type[T]) -> type[T]:
        return describe(dataclass(frozen=True, slots=True)(cls))

    return decorate


def optional(spec: Spec, default: Any) -> Any:
    """A payload field that may be left out (or nil): it then reads as ``default``."""
    return field(default=default, metadata=wire(spec, missing=default))


def text(max_len: int = MAX_TEXT, *, min_len: int = 1) -> Spec:
    """Free text without control characters."""
    return Str(max_len=max_len, min_len=min_len, control=False)


RECORD_ID = Str(max_len=64, pattern=codes.RECORD_ID_PATTERN, control=False)
"""A shipment, permit or licence id."""
ORG_ID = Str(max_len=64, pattern=ORG_ID_PATTERN, control=False)
"""An organisation id."""
AMOUNT = Int(hi=MAX_I63)
"""A payload's count, time or amount: an integer from 0 up to 2**63 - 1."""
NUMBER = Int(hi=INT_MAX)
"""A stored count, height, time or amount: any non-negative integer the encoding holds."""
PLACE = Where(
    text(5),
    codes.is_unlocode,
    "{value!r} is not a UN/LOCODE (country + 3 of A-Z, 2-9)",
)
"""A UN/LOCODE place."""
ANY_TEXT = Str(max_len=MAX_SIZE)
"""Stored text: whatever a payload's text field let through (or the genesis file held)."""


@dataclass(frozen=True, slots=True)
class HistoryEntry(Described):
    """What every entry of a record's history holds (a permit's
    :class:`~contracts.permit_records.PermitEvent`, a shipment's
    :class:`~contracts.shipment_records.ShipmentEvent`): its number in the history, who
    acted (organisation and member key), at which height and in which transaction, and
    the details of what happened. Stored by a subclass (field order is the constructor's
    only: the stored map's keys are sorted)."""

    seq: int
    actor_org: str = field(metadata=wire(ORG_ID))
    actor: bytes = field(metadata=wire(PUBLIC_KEY))
    height: int
    tx_hash: bytes = field(metadata=wire(HASH))
    details: dict[str, Value] = field(metadata=wire(AnyMap()))


class Acted(TypedDict):
    """The fields of a :class:`HistoryEntry` the transaction being applied gives
    (:meth:`contracts.context.TxContext.acted`)."""

    actor_org: str
    actor: bytes
    height: int
    tx_hash: bytes


STORED_BY_TYPE: dict[str, Spec] = {"int": NUMBER, "str": ANY_TEXT, "int | None": Optional(NUMBER)}
"""The spec of a stored record's field that names none, by its type annotation."""
