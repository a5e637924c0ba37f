"""Stored records: frozen dataclasses whose stored map is derived from their fields.

A record kind is described once, as a frozen dataclass subclassing :class:`Record`:
each field is a key of the stored map, its annotation the value's type — ``int``,
``str``, ``bytes``, ``bool``, another record (a nested map), ``tuple[X, ...]`` (a
list), ``X | None`` (the key is always present, its value may be nil) or
:data:`Details` (a free map kept as it is); ``Annotated[int, Bounds(lo, hi)]``
(:data:`Natural` for ``0 ..``) gives an integer field its range.
:meth:`Record.to_obj` gives the canonical map a handler stores;
:meth:`Record.from_obj` reads one back and refuses, with :class:`RecordError`, a
map that is not such a record (a missing, extra or mistyped key, a value out of
bounds), so what it returns is what the annotations say. Handlers change a record
with :func:`dataclasses.replace`, never in place.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable
from typing import Annotated, Any, ClassVar, NamedTuple, Self, TypeAlias

from ledger.encoding import Value
from ledger.errors import LedgerError

Details: TypeAlias = dict[str, Value]
"""A free map inside a record (e.g. a history entry's event details), stored as given."""

_Reader = Callable[[Value, str], Any]


class RecordError(LedgerError):
    """A stored map that is not a record of the kind it was read as."""

    code = "bad_record"


class Bounds(NamedTuple):
    """The range ``[lo, hi]`` (both ends included) of an integer field."""

    lo: int = 0
    hi: int = 2**63 - 1


Natural: TypeAlias = Annotated[int, Bounds()]
"""A count, height, time or amount: an integer from 0 up."""


class Record:
    """Base of every stored record kind (see the module docstring)."""

    __slots__ = ()
    record_type: ClassVar[str] = "record"

    def to_obj(self) -> dict[str, Value]:
        """The canonical map stored in state (one key per field)."""
        return {f.name: _to_value(getattr(self, f.name)) for f in dataclasses.fields(self)}  # type: ignore[arg-type]

    @classmethod
    def from_obj(cls, obj: Value) -> Self:
        """The record ``obj`` encodes, or :class:`RecordError` saying what is wrong."""
        readers = _readers(cls)
        if not isinstance(obj, dict) or obj.keys() != readers.keys():
            raise RecordError(f"{cls.record_type}: expected a map with keys {sorted(readers)}")
        return cls(
            **{name: read(obj[name], f"{cls.record_type}.{name}") for name, read in readers.items()}
        )


def _to_value(value: Any) -> Value:
    if isinstance(value, Record):
        return value.to_obj()
    if isinstance(value, tuple):
        return [_to_value(item) for item in value]
    return value


_READERS: dict[type, dict[str, _Reader]] = {}


def _readers(cls: type) -> dict[str, _Reader]:
    """Per field, the function that checks and converts its stored value (built once)."""
    readers = _READERS.get(cls)
    if readers is None:
        hints = typing.get_type_hints(cls, include_extras=True)
        readers = {f.name: _reader(hints[f.name], None) for f in dataclasses.fields(cls)}
        _READERS[cls] = readers
    return readers


def _reader(hint: Any, bounds: Bounds | None) -> _Reader:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Annotated:
        return _reader(args[0], hint.__metadata__[0])
    if origin in (types.UnionType, typing.Union) and type(None) in args:
        (inner,) = [a for a in args if a is not type(None)]
        read_inner = _reader(inner, bounds)
        return lambda v, what: None if v is None else read_inner(v, what)
    if origin is tuple:
        read_item = _reader(args[0], bounds)
        return lambda v, what: tuple(read_item(x, what) for x in _typed(v, list, what))
    if isinstance(hint, type) and issubclass(hint, Record):
        return lambda v, what: hint.from_obj(v)
    if hint == Details:
        return lambda v, what: _typed(v, dict, what)
    if hint is int:
        lo, hi = bounds or (-(2**63), 2**64 - 1)
        return lambda v, what: _int(v, lo, hi, what)
    assert hint in (str, bytes, bool), f"no stored form for {hint!r}"
    return lambda v, what: _typed(v, hint, what)


def _typed(value: Value, kind: type, what: str) -> Any:
    if type(value) is not kind:
        raise RecordError(f"{what}: expected {kind.__name__}, got {type(value).__name__}")
    return value


def _int(value: Value, lo: int, hi: int, what: str) -> int:
    number: int = _typed(value, int, what)
    if not lo <= number <= hi:
        raise RecordError(f"{what}: {number} is outside [{lo}, {hi}]")
    return number
