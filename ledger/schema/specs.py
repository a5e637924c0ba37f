"""Specs: compiled descriptions of single wire values (see :mod:`ledger.schema`).

Each spec constructor builds, once, a parser closure (decoded value -> Python value,
or :class:`Refused`) and a dumper (Python value -> wire value); scalar specs also say
inline (``accept``) which values they take unchanged, for the generated readers of
:mod:`ledger.schema.records`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Mapping
from enum import IntEnum
from re import Pattern
from typing import Any, TypeVar

from ledger.encoding import INT_MAX, INT_MIN, MAX_SIZE, Value
from ledger.errors import DecodeError

E = TypeVar("E", bound=IntEnum)
ErrorFactory = Callable[[str], Exception]
"""What a user raises: a callable from the message to an exception (a class, or a helper)."""

MAX_CACHED = 1024
"""How many accepted values a patterned :class:`Str` remembers."""

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class Refused(Exception):
    """A value a parser refuses: ``path`` (``.field``, ``[index]``) and what is wrong.

    Internal to parsing: :meth:`Record.from_obj` and :func:`read` turn it into the
    user's error type with the whole path in the message."""

    def __init__(self, message: str, path: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.path = path

    def within(self, step: str) -> Refused:
        """This refusal, one level further out (``step`` is ``.name`` or ``[i]``)."""
        self.path = step + self.path
        return self


def wire_name(value: object) -> str:
    """The wire type of ``value`` for messages (``nil``, ``map``, ``integer``, ...)."""
    t = type(value)
    return _WIRE_NAMES.get(t, t.__name__)


_WIRE_NAMES: dict[type, str] = {
    type(None): "nil",
    dict: "map",
    list: "list",
    int: "integer",
    bool: "bool",
    str: "str",
    bytes: "bytes",
}


class Spec:
    """A compiled description of one wire value.

    ``parse`` returns the Python value or raises :class:`Refused`; ``dump`` turns the
    Python value back into its wire value, None when that is the value itself.
    ``accept``, when set, is a Python expression over ``{v}`` (and ``{c}``, standing for
    ``const``) that holds only for a value ``parse`` returns unchanged: a record's
    generated parser tests it inline and calls ``parse`` only when it fails.
    ``load`` turns a wire value this code wrote itself (a record read back from the
    node's own state) into the Python value without checking it; None when that is the
    value itself.
    """

    __slots__ = ("accept", "const", "dump", "load", "parse")

    parse: Callable[[Any], Any]
    dump: Callable[[Any], Value] | None
    accept: str | None
    const: Any
    load: Callable[[Any], Any] | None

    @classmethod
    def of(
        cls,
        parse: Callable[[Any], Any],
        dump: Callable[[Any], Value] | None = None,
        accept: str | None = None,
        const: Any = None,
        load: Callable[[Any], Any] | None = None,
    ) -> Spec:
        """A spec from its parts (see the class)."""
        spec = cls()
        spec.parse = parse
        spec.dump = dump
        spec.accept = accept
        spec.const = const
        spec.load = load
        return spec

    def load_value(self, value: Any) -> Any:
        """``value``, written by this code, as its Python value (unchecked)."""
        return value if self.load is None else self.load(value)

    def dump_value(self, value: Any) -> Value:
        """``value`` as it goes on the wire."""
        return value if self.dump is None else self.dump(value)


def Int(*, lo: int = 0, hi: int = INT_MAX) -> Spec:
    """An integer (never a bool) in ``[lo, hi]``."""
    if not INT_MIN <= lo <= hi <= INT_MAX:
        raise ValueError(f"Int bounds [{lo}, {hi}] are not inside the encodable range")

    def parse(value: Any) -> int:
        if type(value) is int and lo <= value <= hi:
            return value
        if not isinstance(value, int) or isinstance(value, bool):
            raise Refused(f"must be an integer, got {wire_name(value)}")
        if not lo <= value <= hi:
            raise Refused(f"{value} is not between {lo} and {hi}")
        return int(value)

    return Spec.of(parse, accept=f"type({{v}}) is int and {lo} <= {{v}} <= {hi}")


def IntEnumOf(enum: type[E]) -> Spec:
    """A member of the int enum ``enum``, given on the wire by its value."""
    members = {int(m): m for m in enum}
    names = sorted(members)

    def parse(value: Any) -> E:
        member = members.get(value) if type(value) is int else None
        if member is None:
            if not isinstance(value, int) or isinstance(value, bool):
                raise Refused(f"must be an integer, got {wire_name(value)}")
            member = members.get(int(value))  # an int subclass: a member itself, say
            if member is None:
                raise Refused(f"{value} is not one of {names}")
        return member

    return Spec.of(parse, int, load=members.__getitem__)


def Bytes(*, size: int | None = None, max_size: int = MAX_SIZE) -> Spec:
    """Bytes of exactly ``size`` or at most ``max_size``."""

    def check(value: Any) -> bytes:
        if not isinstance(value, bytes):
            raise Refused(f"must be bytes, got {wire_name(value)}")
        if size is not None and len(value) != size:
            raise Refused(f"must be {size} bytes, got {len(value)}")
        if len(value) > max_size:
            raise Refused(f"must be at most {max_size} bytes, got {len(value)}")
        return bytes(value)

    if size is not None:

        def parse(value: Any) -> bytes:
            if type(value) is bytes and len(value) == size:
                return value
            return check(value)

        return Spec.of(parse, accept=f"type({{v}}) is bytes and len({{v}}) == {size}")

    def parse_any(value: Any) -> bytes:
        if type(value) is bytes and len(value) <= max_size:
            return value
        return check(value)

    return Spec.of(parse_any, accept=f"type({{v}}) is bytes and len({{v}}) <= {max_size}")


def Str(
    *,
    max_len: int = 256,
    min_len: int = 0,
    pattern: Pattern[str] | None = None,
    control: bool = True,
) -> Spec:
    """A str of ``min_len..max_len`` characters, matching ``pattern`` if given, with
    control characters (U+0000..U+001F, U+007F) only if ``control``."""

    def check(value: Any) -> str:
        if not isinstance(value, str):
            raise Refused(f"must be a str, got {wire_name(value)}")
        if not min_len <= len(value) <= max_len:
            raise Refused(f"length must be {min_len}..{max_len}, got {len(value)}")
        if not control and _CONTROL.search(value):
            raise Refused("control characters are not allowed")
        if pattern is not None and not pattern.match(value):
            raise Refused(f"{value!r} does not match {pattern.pattern}")
        return str(value)

    if pattern is None and control:

        def parse(value: Any) -> str:
            if type(value) is str and min_len <= len(value) <= max_len:
                return value
            return check(value)

        return Spec.of(parse, accept=f"type({{v}}) is str and {min_len} <= len({{v}}) <= {max_len}")
    seen: set[str] = set()
    return Spec.of(_remembering(check, seen), accept="type({v}) is str and {v} in {c}", const=seen)


def _remembering(check: Callable[[Any], str], seen: set[str]) -> Callable[[Any], str]:
    """``check`` with a bounded memory (``seen``) of the strs it accepted (a pattern costs
    more than a set lookup, and kinds, chain ids and org ids repeat)."""

    def parse(value: Any) -> str:
        if type(value) is str and value in seen:
            return value
        out = check(value)
        if len(seen) < MAX_CACHED:
            seen.add(out)
        return out

    return parse


def Choice(options: Collection[str]) -> Spec:
    """One of the strs ``options``."""
    allowed = frozenset(options)
    listed = sorted(allowed)

    def parse(value: Any) -> str:
        if type(value) is str and value in allowed:
            return value
        raise Refused(f"must be one of {listed}, got {value!r}")

    return Spec.of(parse, accept="type({v}) is str and {v} in {c}", const=allowed)


def Bool() -> Spec:
    """True or false."""

    def parse(value: Any) -> bool:
        if type(value) is bool:
            return value
        raise Refused(f"must be a bool, got {wire_name(value)}")

    return Spec.of(parse, accept="type({v}) is bool")


def AnyMap() -> Spec:
    """Any map, kept as it is (its content is canonical by the encoding's rules)."""

    def parse(value: Any) -> dict[str, Value]:
        if type(value) is dict:
            return value
        raise Refused(f"must be a map, got {wire_name(value)}")

    return Spec.of(parse, accept="type({v}) is dict")


def AnyValue() -> Spec:
    """Any decoded value, kept as it is (for a part another reader checks)."""
    return Spec.of(_identity, accept="True")


def Optional(spec: Spec) -> Spec:
    """``spec``'s value or nil (None)."""
    inner, inner_dump = spec.parse, spec.dump or _identity

    def parse(value: Any) -> Any:
        return None if value is None else inner(value)

    def dump(value: Any) -> Value:
        return None if value is None else inner_dump(value)

    accept = None if spec.accept is None else f"{{v}} is None or ({spec.accept})"
    load = None
    if spec.load is not None:
        inner_load = spec.load

        def load(value: Any) -> Any:
            return None if value is None else inner_load(value)

    return Spec.of(parse, None if spec.dump is None else dump, accept, spec.const, load)


def Where(spec: Spec, test: Callable[[Any], bool], message: str) -> Spec:
    """``spec``'s value, refused with ``message`` (``{value!r}`` is filled in) unless
    ``test`` holds for it: a rule no other spec says (a check digit, a code list)."""
    inner = spec.parse

    def parse(value: Any) -> Any:
        out = inner(value)
        if not test(out):
            raise Refused(message.format(value=out))
        return out

    return Spec.of(parse, spec.dump, load=spec.load)


def Mapped(spec: Spec, load: Callable[[Any], Any], unload: Callable[[Any], Any]) -> Spec:
    """``spec``'s value turned into another by ``load`` (and back by ``unload`` for the
    wire): a class kept as a list or a map of its own (what ``load`` raises propagates)."""
    inner, inner_dump = spec.parse, spec.dump or _identity

    def parse(value: Any) -> Any:
        return load(inner(value))

    def load_trusted(value: Any) -> Any:
        return load(spec.load_value(value))

    return Spec.of(parse, lambda value: inner_dump(unload(value)), load=load_trusted)


def List(
    item: Spec,
    *,
    max_len: int,
    min_len: int = 0,
    distinct: bool = False,
    sort: bool = False,
    of: str = "",
) -> Spec:
    """A list of ``min_len..max_len`` items of ``item``, parsed to a tuple.

    ``distinct``: no item twice. ``sort``: dumped in sorted order (a set on the wire).
    ``of`` names the items in the refusal of a non-list (``a list of hashes``).
    """
    noun = f"a list of {of}" if of else "a list"
    parse_item, dump_item = item.parse, item.dump

    def parse(value: Any) -> tuple[Any, ...]:
        if not isinstance(value, list):
            raise Refused(f"must be {noun}, got {wire_name(value)}")
        n = len(value)
        if n > max_len:
            raise Refused(f"has {n} items, more than the {max_len} allowed")
        if n < min_len:
            raise Refused(f"has {n} items, fewer than the {min_len} required")
        try:
            out = tuple([parse_item(x) for x in value])
        except Refused:
            raise _locate_item(parse_item, value) from None
        if distinct and len(set(out)) != n:
            raise Refused("duplicate entries")
        return out

    def dump(value: Iterable[Any]) -> list[Value]:
        out = list(value) if dump_item is None else [dump_item(x) for x in value]
        if sort:
            out.sort()
        return out

    load_item = item.load
    if load_item is None:
        return Spec.of(parse, dump, load=tuple)

    def load(value: list[Any]) -> tuple[Any, ...]:
        return tuple([load_item(x) for x in value])

    return Spec.of(parse, dump, load=load)


def _locate_item(parse_item: Callable[[Any], Any], items: Iterable[Any]) -> Refused:
    """The refusal of the first bad item, with its index (the slow path of a refusal)."""
    for i, x in enumerate(items):
        try:
            parse_item(x)
        except Refused as exc:
            return exc.within(f"[{i}]")
    return Refused("refused")  # unreachable: one item was refused


def Pair(first: Spec, second: Spec) -> Spec:
    """A two-item list ``[first, second]``, parsed to a tuple."""
    p1, p2 = first.parse, second.parse

    def parse(value: Any) -> tuple[Any, Any]:
        if isinstance(value, list) and len(value) == 2:
            a, b = value
        else:
            raise Refused(f"must be a list of 2 items, got {_shape(value)}")
        try:
            a = p1(a)
        except Refused as exc:
            raise exc.within("[0]") from None
        try:
            b = p2(b)
        except Refused as exc:
            raise exc.within("[1]") from None
        return a, b

    l1, l2 = first.load or _identity, second.load or _identity

    def load(value: list[Any]) -> tuple[Any, Any]:
        return l1(value[0]), l2(value[1])

    if first.dump is None and second.dump is None:
        return Spec.of(parse, list, load=load)
    d1 = first.dump or _identity
    d2 = second.dump or _identity
    return Spec.of(parse, lambda value: [d1(value[0]), d2(value[1])], load=load)


def _shape(value: object) -> str:
    if isinstance(value, list):
        return f"{len(value)} items"
    return wire_name(value)


def _identity(value: Any) -> Any:
    return value


def Struct(fields: Mapping[str, Spec]) -> Spec:
    """A map with exactly ``fields``, parsed to a dict of the parsed values (for a
    small message that needs no class of its own)."""
    names = tuple(fields)
    keys = frozenset(names)
    parsers = tuple((name, spec.parse) for name, spec in fields.items())

    def parse(value: Any) -> dict[str, Any]:
        if type(value) is not dict:
            raise Refused(f"must be a map, got {wire_name(value)}")
        if value.keys() != keys:
            raise Refused(key_problem(value, keys, frozenset()))
        try:
            return {name: p(value[name]) for name, p in parsers}
        except Refused:
            raise locate_field(parsers, value) from None

    loaders = tuple((name, spec.load or _identity) for name, spec in fields.items())

    def load(value: dict[str, Any]) -> dict[str, Any]:
        return {name: load_field(value[name]) for name, load_field in loaders}

    return Spec.of(parse, load=load)


def read(spec: Spec, value: Value, what: str, *, error: ErrorFactory = DecodeError) -> Any:
    """``spec``'s parse of ``value``, or ``error("<what><path>: <problem>")``."""
    try:
        return spec.parse(value)
    except Refused as exc:
        raise error(f"{what}{exc.path}: {exc.message}") from None


def locate_field(parsers: Iterable[tuple[str, Callable[[Any], Any]]], obj: Any) -> Refused:
    """The refusal of the first bad field, with its name (the slow path of a refusal)."""
    for name, p in parsers:
        try:
            p(obj[name])
        except Refused as exc:
            return exc.within(f".{name}")
    return Refused("refused")  # unreachable: one field was refused


def key_problem(obj: Mapping[str, Any], required: frozenset[str], optional: frozenset[str]) -> str:
    missing = sorted(required - obj.keys())
    unknown = sorted(map(str, obj.keys() - required - optional))
    problems = []
    if len(missing) == 1:
        problems.append(f"missing field {missing[0]!r}")
    elif missing:
        problems.append(f"missing fields {missing}")
    if unknown:
        problems.append(f"unknown fields {unknown}")
    expected = f"exactly the fields {sorted(required)}"
    if optional:
        expected += f" and optionally {sorted(optional)}"
    return f"{', '.join(problems)}; expected {expected}"
