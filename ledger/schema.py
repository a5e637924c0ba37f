"""One declarative description of data: specs, records, and what they derive.

A *spec* describes one wire value (an integer in a range, bytes of a size, a str
with a pattern, a list of some spec, a nested record ...) and compiles, once, into
a parser (decoded msgpack value -> Python value, or refusal) and a dumper (Python
value -> canonical value for :func:`ledger.encoding.encode`).

A *record* is a dataclass whose fields carry a spec in their metadata::

    @described("vote", error=DecodeError)
    @dataclass(frozen=True, slots=True)
    class Vote(Described):
        height: int = field(metadata=wire(Int(lo=1, hi=MAX_I63)))
        block_hash: bytes = field(metadata=wire(Bytes(max_size=32)))

:func:`described` compiles the record's :class:`Record` (``Vote.__schema__``), and
:class:`Described` gives the class ``to_obj`` and ``from_obj``. ``from_obj`` refuses
anything but a map with exactly the record's keys (optional ones may be left out),
checks every field, builds the instance (its ``__post_init__`` checks the rules
between fields), and raises the record's own error type, built from one message
that names the field: ``vote.height: 0 is not between 1 and 9223372036854775807``.
Each user picks that type (``error``: any callable from a message to an exception).
``to_obj`` gives the map that :func:`~ledger.encoding.encode` turns into canonical
bytes; its keys come in declaration order (``sort_keys`` for sorted order).

Speed: every parser is a closure built once per spec; a record's parser runs a
precomputed tuple of (name, parser) pairs, and only a refusal pays for finding
which field and item it came from (:class:`Refused` carries the path up).
Patterned strings remember (boundedly) the values they already accepted.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Collection, Iterable, Mapping
from enum import IntEnum
from functools import partial
from re import Pattern
from textwrap import indent
from typing import Any, ClassVar, Generic, Self, TypeVar

from ledger.crypto import PUBLIC_KEY_SIZE, SIGNATURE_SIZE
from ledger.encoding import INT_MAX, INT_MIN, MAX_SIZE, Value
from ledger.errors import DecodeError, ValidationError
from ledger.ids import HASH_SIZE

T = TypeVar("T")
E = TypeVar("E", bound=IntEnum)
R = TypeVar("R")
ErrorFactory = Callable[[str], Exception]
"""What a user raises: a callable from the message to an exception (a class, or a helper)."""

MAX_I63 = 2**63 - 1
"""The largest signed 64-bit integer: heights, times, nonces."""
MAX_CACHED = 1024
"""How many accepted values a patterned :class:`Str` remembers."""

_SCHEMA_KEY = "ledger.schema"
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


# --- specs --------------------------------------------------------------------------------------


class Spec:
    """A compiled description of one wire value.

    ``parse`` returns the Python value or raises :class:`Refused`; ``dump`` turns the
    Python value back into its wire value, None when that is the value itself.
    ``accept``, when set, is a Python expression over ``{v}`` (and ``{c}``, standing for
    ``const``) that holds only for a value ``parse`` returns unchanged: a record's
    generated parser tests it inline and calls ``parse`` only when it fails.
    """

    __slots__ = ("accept", "const", "dump", "parse")

    parse: Callable[[Any], Any]
    dump: Callable[[Any], Value] | None
    accept: str | None
    const: Any

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

    return _spec(parse, accept=f"type({{v}}) is int and {lo} <= {{v}} <= {hi}")


def IntEnumOf(enum: type[E]) -> Spec:
    """A member of the int enum ``enum``, given on the wire by its value."""
    members = {int(m): m for m in enum}
    names = sorted(members)

    def parse(value: Any) -> E:
        member = members.get(value) if type(value) is int else None
        if member is None:
            if not isinstance(value, int) or isinstance(value, bool):
                raise Refused(f"must be an integer, got {wire_name(value)}")
            raise Refused(f"{value} is not one of {names}")
        return member

    return _spec(parse, int)


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

        return _spec(parse, accept=f"type({{v}}) is bytes and len({{v}}) == {size}")

    def parse_any(value: Any) -> bytes:
        if type(value) is bytes and len(value) <= max_size:
            return value
        return check(value)

    return _spec(parse_any, accept=f"type({{v}}) is bytes and len({{v}}) <= {max_size}")


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

        return _spec(parse, accept=f"type({{v}}) is str and {min_len} <= len({{v}}) <= {max_len}")
    seen: set[str] = set()
    return _spec(_remembering(check, seen), accept="type({v}) is str and {v} in {c}", const=seen)


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

    return _spec(parse, accept="type({v}) is str and {v} in {c}", const=allowed)


def Bool() -> Spec:
    """True or false."""

    def parse(value: Any) -> bool:
        if type(value) is bool:
            return value
        raise Refused(f"must be a bool, got {wire_name(value)}")

    return _spec(parse, accept="type({v}) is bool")


def AnyMap() -> Spec:
    """Any map, kept as it is (its content is canonical by the encoding's rules)."""

    def parse(value: Any) -> dict[str, Value]:
        if type(value) is dict:
            return value
        raise Refused(f"must be a map, got {wire_name(value)}")

    return _spec(parse, accept="type({v}) is dict")


def AnyValue() -> Spec:
    """Any decoded value, kept as it is (for a part another reader checks)."""
    return _spec(_identity, accept="True")


def Optional(spec: Spec) -> Spec:
    """``spec``'s value or nil (None)."""
    inner, inner_dump = spec.parse, spec.dump or _identity

    def parse(value: Any) -> Any:
        return None if value is None else inner(value)

    def dump(value: Any) -> Value:
        return None if value is None else inner_dump(value)

    accept = None if spec.accept is None else f"{{v}} is None or ({spec.accept})"
    return _spec(parse, None if spec.dump is None else dump, accept, spec.const)


def Where(spec: Spec, test: Callable[[Any], bool], message: str) -> Spec:
    """``spec``'s value, refused with ``message`` (``{value!r}`` is filled in) unless
    ``test`` holds for it: a rule no other spec says (a check digit, a code list)."""
    inner = spec.parse

    def parse(value: Any) -> Any:
        out = inner(value)
        if not test(out):
            raise Refused(message.format(value=out))
        return out

    return _spec(parse, spec.dump)


def Mapped(spec: Spec, load: Callable[[Any], Any], unload: Callable[[Any], Any]) -> Spec:
    """``spec``'s value turned into another by ``load`` (and back by ``unload`` for the
    wire): a class kept as a list or a map of its own (what ``load`` raises propagates)."""
    inner, inner_dump = spec.parse, spec.dump or _identity

    def parse(value: Any) -> Any:
        return load(inner(value))

    return _spec(parse, lambda value: inner_dump(unload(value)))


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

    return _spec(parse, dump)


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

    if first.dump is None and second.dump is None:
        return _spec(parse, list)
    d1 = first.dump or _identity
    d2 = second.dump or _identity
    return _spec(parse, lambda value: [d1(value[0]), d2(value[1])])


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
            raise Refused(_key_problem(value, keys, frozenset()))
        try:
            return {name: p(value[name]) for name, p in parsers}
        except Refused:
            raise _locate_field(parsers, value) from None

    return _spec(parse)


def Nested(cls: type[Described]) -> Spec:
    """A value of the described class ``cls`` (its own map)."""
    record = cls.__schema__
    return _spec(record.parse, record.to_obj)


def OneOf(tag: str, classes: Iterable[type[Described]]) -> Spec:
    """A value of one of the described ``classes``, chosen by the map's ``tag`` key
    (each class's record is built with that ``tag``)."""
    by_tag: dict[Any, Record[Any]] = {}
    for cls in classes:
        record = cls.__schema__
        if record.tag is None or record.tag[0] != tag:
            raise ValueError(f"{cls.__name__} is not tagged by {tag!r}")
        by_tag[record.tag[1]] = record
    listed = sorted(by_tag)

    def parse(value: Any) -> Any:
        if type(value) is not dict:
            raise Refused(f"must be a map, got {wire_name(value)}")
        record = by_tag.get(value.get(tag)) if type(value.get(tag)) is str else None
        if record is None:
            raise Refused(f"must be one of {listed}, got {value.get(tag)!r}", f".{tag}")
        return record.parse(value)

    return _spec(parse, lambda value: value.to_obj())


def _spec(
    parse: Callable[[Any], Any],
    dump: Callable[[Any], Value] | None = None,
    accept: str | None = None,
    const: Any = None,
) -> Spec:
    spec = Spec()
    spec.parse = parse
    spec.dump = dump
    spec.accept = accept
    spec.const = const
    return spec


# --- reading a value with a spec ----------------------------------------------------------------


def read(spec: Spec, value: Value, what: str, *, error: ErrorFactory = DecodeError) -> Any:
    """``spec``'s parse of ``value``, or ``error("<what><path>: <problem>")``."""
    try:
        return spec.parse(value)
    except Refused as exc:
        raise error(f"{what}{exc.path}: {exc.message}") from None


# --- records --------------------------------------------------------------------------------------


_REQUIRED: Any = object()


@dataclasses.dataclass(frozen=True, slots=True)
class WireField:
    """How one dataclass field goes on the wire: its spec; the value that stands for it
    when its key is absent (or nil), a field left out when it holds that value (without
    ``missing`` the key is required); its key, when not the field's name."""

    spec: Spec
    missing: Any = _REQUIRED
    key: str = ""

    @property
    def optional(self) -> bool:
        return self.missing is not _REQUIRED


def wire(spec: Spec, *, missing: Any = _REQUIRED, key: str = "") -> dict[str, WireField]:
    """Field metadata putting a dataclass field on the wire (``field(metadata=wire(...))``)."""
    return {_SCHEMA_KEY: WireField(spec, missing, key)}


class Record(Generic[T]):
    """The compiled description of a dataclass ``cls``: its wire fields in declaration
    order, its parser and its dumper.

    ``what`` starts every message; ``error`` builds what :meth:`from_obj` raises;
    ``convert`` lists the exception types of the constructor (``__post_init__``) that
    are refusals too (the rest propagate as they are); ``tag`` is a constant
    ``(key, value)`` the map carries besides the fields (first in :meth:`to_obj`);
    ``sort_keys`` orders :meth:`to_obj`'s keys (canonical order) instead; ``override``
    reads the named fields with other specs (the same record read another way).

    Compiled into closures: ``parse`` and ``parse_values`` (raise :class:`Refused`, for
    nesting), ``from_obj`` and ``values`` (raise the record's error), ``to_obj``.
    """

    def __init__(
        self,
        cls: type[T],
        what: str,
        *,
        error: ErrorFactory = DecodeError,
        convert: tuple[type[Exception], ...] = (ValidationError,),
        tag: tuple[str, str] | None = None,
        sort_keys: bool = False,
        override: Mapping[str, Spec] | None = None,
    ) -> None:
        self.cls = cls
        self.what = what
        self.error = error
        self.tag = tag
        self.fields = _wire_fields(cls, override or {})
        """Field name -> :class:`WireField` (its ``key`` filled in), in declaration order."""
        self.names = tuple(self.fields)
        slow = self._compile_values()
        specs = tuple((f.key, f.spec) for f in self.fields.values())
        locate = partial(_locate_field, tuple((key, spec.parse) for key, spec in specs))
        fast = None
        if not any(f.optional for f in self.fields.values()):
            fast = "type(obj) is dict and obj.keys() == _keys"
            if tag is not None:
                fast += f" and obj[{tag[0]!r}] == {tag[1]!r}"
        env = {
            "_Refused": Refused,
            "_slow": slow,
            "_locate": locate,
            "_make": _maker(cls, self.names),
            "_convert": convert,
            "_error": error,
            "_what": what,
            "_keys": frozenset(key for key, _ in specs) | ({tag[0]} if tag else set()),
        }
        for i, (_, spec) in enumerate(specs):
            env[f"_p{i}"], env[f"_c{i}"] = spec.parse, spec.const
        self.parse: Callable[[Any], T] = _generate(_reader(specs, fast, True, False), env)
        self.from_obj: Callable[[Value], T] = _generate(_reader(specs, fast, True, True), env)
        self.parse_values: Callable[[Any], tuple[Any, ...]] = _generate(
            _reader(specs, fast, False, False), env
        )
        self.values: Callable[[Value], tuple[Any, ...]] = _generate(
            _reader(specs, fast, False, True), env
        )
        self.to_obj: Callable[[T], dict[str, Value]] = self._compile_dump(sort_keys)

    def _compile_values(self) -> Callable[[Any], tuple[Any, ...]]:
        """The parser of the field values, in declaration order (a tuple)."""
        parsers = tuple((f.key, f.spec.parse) for f in self.fields.values())
        missing = {f.key: f.missing for f in self.fields.values() if f.optional}
        keys = frozenset(key for key, _ in parsers) | ({self.tag[0]} if self.tag else set())
        required = keys - missing.keys()
        tag = self.tag

        def values(obj: Any) -> tuple[Any, ...]:
            if type(obj) is not dict and not isinstance(obj, dict):
                raise Refused(f"must be a map, got {wire_name(obj)}")
            if obj.keys() == keys and not missing and tag is None:
                try:
                    return tuple([p(obj[key]) for key, p in parsers])
                except Refused:
                    raise _locate_field(parsers, obj) from None
            if not (required <= obj.keys() <= keys):
                raise Refused(_key_problem(obj, required, keys - required))
            if tag is not None and obj[tag[0]] != tag[1]:
                raise Refused(f"must be {tag[1]!r}, got {obj[tag[0]]!r}", f".{tag[0]}")
            return _values_with_missing(parsers, missing, obj)

        return values

    def _compile_dump(self, sort_keys: bool) -> Callable[[T], dict[str, Value]]:
        order = list(self.fields.items())
        if sort_keys:
            order.sort(key=lambda item: item[1].key)
        env: dict[str, Any] = {}
        items = [] if self.tag is None else [f"{self.tag[0]!r}: {self.tag[1]!r}"]
        lines = []
        for i, (name, f) in enumerate(order):
            env[f"_d{i}"], env[f"_m{i}"] = f.spec.dump, f.missing
            value = f"x.{name}" if f.spec.dump is None else f"_d{i}(x.{name})"
            if f.optional:
                lines += [f"    if x.{name} != _m{i}:", f"        out[{f.key!r}] = {value}"]
            elif lines:
                lines.append(f"    out[{f.key!r}] = {value}")
            else:
                items.append(f"{f.key!r}: {value}")
        head = "    out = {" + ", ".join(items) + "}"
        to_obj: Callable[[T], dict[str, Value]] = _generate(
            "\n".join(["def generated(x):", head, *lines, "    return out"]), env
        )
        return to_obj


def _reader(
    specs: tuple[tuple[str, Spec], ...], fast: str | None, build: bool, raise_: bool
) -> str:
    """The source of a record's reader: the field values of a map, the instance when
    ``build``, the record's error instead of :class:`Refused` when ``raise_``.

    A map that passes ``fast`` (exactly the record's keys) has its fields read inline,
    each spec's ``accept`` tested before its parser is called; any other goes to
    ``_slow``, which also names what is wrong.
    """
    values = ", ".join(f"v{i}" for i in range(len(specs))) + ","
    if fast is None:
        read = f"{values} = _slow(obj)"
    else:
        fields = "\n".join(_read_field(i, key, spec) for i, (key, spec) in enumerate(specs))
        read = _FAST.format(fast=fast, fields=indent(fields, " " * 8), values=values)
    done = _BUILD.format(values=values) if build else f"return ({values})"
    fail = _RAISE if raise_ else "raise"
    return _READER.format(read=indent(read, " " * 8), done=indent(done, " " * 8), fail=fail)


def _read_field(i: int, key: str, spec: Spec) -> str:
    if spec.accept is None:
        return f"v{i} = _p{i}(obj[{key!r}])"
    test = spec.accept.replace("{v}", f"v{i}").replace("{c}", f"_c{i}")
    return f"v{i} = obj[{key!r}]\nif not ({test}):\n    v{i} = _p{i}(v{i})"


_READER = """\
def generated(obj):
    try:
{read}
{done}
    except _Refused as exc:
        {fail}
"""
_FAST = """\
if {fast}:
    try:
{fields}
    except _Refused:
        raise _locate(obj) from None
else:
    {values} = _slow(obj)"""
_BUILD = """\
try:
    return _make({values})
except _convert as exc:
    raise _Refused(str(exc)) from None"""
_RAISE = "raise _error(_what + exc.path + ': ' + exc.message) from None"


def _generate(source: str, env: dict[str, Any]) -> Any:  # returns the generated function
    """The function ``generated`` that ``source`` defines, with the names of ``env``."""
    namespace = dict(env)
    exec(compile(source, "<ledger.schema>", "exec"), namespace)
    return namespace["generated"]


def _values_with_missing(
    parsers: tuple[tuple[str, Callable[[Any], Any]], ...],
    missing: dict[str, Any],
    obj: dict[str, Any],
) -> tuple[Any, ...]:
    """The field values of a map that may leave out optional fields (absent or nil)."""
    out = []
    for name, p in parsers:
        value = obj.get(name)
        if value is None and name in missing:
            out.append(missing[name])
            continue
        try:
            out.append(p(value))
        except Refused as exc:
            raise exc.within(f".{name}") from None
    return tuple(out)


def _wire_fields(cls: type, override: Mapping[str, Spec]) -> dict[str, WireField]:
    """The wire fields of dataclass ``cls`` by name, their keys filled in, with the
    specs of ``override`` in place of their own."""
    fields = {}
    for f in dataclasses.fields(cls):
        wf = f.metadata.get(_SCHEMA_KEY)
        if wf is not None:
            spec = override.get(f.name, wf.spec)
            fields[f.name] = WireField(spec, wf.missing, wf.key or f.name)
    if not fields or not override.keys() <= fields.keys():
        raise ValueError(f"{cls.__name__}: no wire fields, or overrides of unknown ones")
    return fields


def _maker(cls: type[T], names: tuple[str, ...]) -> Callable[..., T]:
    """``cls`` called with the wire values in order: positionally when the wire fields
    are the constructor's parameters in order, else by name."""
    init = tuple(f.name for f in dataclasses.fields(cls) if f.init)  # type: ignore[arg-type]
    if init[: len(names)] == names:
        return cls

    def make(*values: Any) -> T:
        return cls(**dict(zip(names, values, strict=True)))

    return make


def _locate_field(parsers: Iterable[tuple[str, Callable[[Any], Any]]], obj: Any) -> Refused:
    """The refusal of the first bad field, with its name (the slow path of a refusal)."""
    for name, p in parsers:
        try:
            p(obj[name])
        except Refused as exc:
            return exc.within(f".{name}")
    return Refused("refused")  # unreachable: one field was refused


def _key_problem(obj: Mapping[str, Any], required: frozenset[str], optional: frozenset[str]) -> str:
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


class Described:
    """Mixin of a described dataclass: ``to_obj`` and ``from_obj`` from its record."""

    __slots__ = ()
    __schema__: ClassVar[Record[Any]]

    def to_obj(self) -> dict[str, Value]:
        """The wire map of this value (canonical bytes by :func:`ledger.encoding.encode`)."""
        return self.__schema__.to_obj(self)

    @classmethod
    def from_obj(cls, obj: Value) -> Self:
        """The value ``obj`` describes; the record's error type on anything else."""
        result: Self = cls.__schema__.from_obj(obj)
        return result


def described(
    what: str,
    *,
    error: ErrorFactory = DecodeError,
    convert: tuple[type[Exception], ...] = (ValidationError,),
    tag: tuple[str, str] | None = None,
    sort_keys: bool = False,
) -> Callable[[type[T]], type[T]]:
    """Class decorator (above ``@dataclass``): compile the class's :class:`Record`
    into ``cls.__schema__`` (the parameters are :class:`Record`'s)."""

    def decorate(cls: type[T]) -> type[T]:
        record = Record(cls, what, error=error, convert=convert, tag=tag, sort_keys=sort_keys)
        cls.__schema__ = record  # type: ignore[attr-defined]
        # The record's own closures, unless the class defines its own (one call less).
        if "from_obj" not in vars(cls):
            cls.from_obj = staticmethod(record.from_obj)  # type: ignore[attr-defined]
        if "to_obj" not in vars(cls):
            cls.to_obj = record.to_obj  # type: ignore[attr-defined]
        return cls

    return decorate


# --- the fields every wire type shares ------------------------------------------------------------

HASH = Bytes(size=HASH_SIZE)
"""A SHA-256 hash."""
PUBLIC_KEY = Bytes(size=PUBLIC_KEY_SIZE)
"""An Ed25519 public key (a validator's, a member's)."""
SIGNATURE = Bytes(size=SIGNATURE_SIZE)
"""An Ed25519 signature."""
HEIGHT = Int(lo=1, hi=MAX_I63)
"""A block height."""
COUNT = Int(hi=MAX_I63)
"""A non-negative 64-bit signed count, time or nonce."""
