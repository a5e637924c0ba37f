"""Records: dataclasses described field by field, and what their description derives
(see :mod:`ledger.schema`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from functools import partial
from typing import Any, ClassVar, Generic, Self, TypedDict, TypeVar, Unpack

from ledger.encoding import Value
from ledger.errors import DecodeError, ValidationError
from ledger.schema.generate import (
    compile_function,
    dumper_source,
    loader_source,
    reader_source,
    replacer_source,
    slot_maker_source,
)
from ledger.schema.specs import (
    ErrorFactory,
    Refused,
    Spec,
    key_problem,
    wire_name,
)

T = TypeVar("T")

_SCHEMA_KEY = "ledger.schema"
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
    reads the named fields with other specs (the same record read another way);
    ``by_type`` makes every field a wire field: one that names no spec gets the spec of
    its type annotation (``"int"``, ``"str | None"``) there.

    Compiled once into functions: ``parse`` and ``parse_values`` (raise :class:`Refused`,
    for nesting), ``from_obj`` and ``values`` (raise the record's error), ``to_obj``, and
    ``load``: the instance of a map this code wrote itself (a record of the node's own
    state), built without checking a field (what the instance's ``__post_init__`` checks
    still holds).
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
        by_type: Mapping[str, Spec] | None = None,
    ) -> None:
        self.cls = cls
        self.what = what
        self.error = error
        self.tag = tag
        self.fields = _wire_fields(cls, override or {}, by_type)
        """Field name -> :class:`WireField` (its ``key`` filled in), in declaration order."""
        self.names = tuple(self.fields)
        self.make = _maker(cls, self.names)
        """The class built from its wire values in order (see :func:`_maker`)."""
        env = self._reader_env(convert)
        source = partial(
            reader_source, tuple((f.key, f.spec, f.optional) for f in self.fields.values())
        )
        fast = self._fast_test()
        self.parse: Callable[[Any], T] = compile_function(source(fast, True, False), env)
        self.from_obj: Callable[[Value], T] = compile_function(source(fast, True, True), env)
        self.parse_values: Callable[[Any], tuple[Any, ...]] = compile_function(
            source(fast, False, False), env
        )
        self.values: Callable[[Value], tuple[Any, ...]] = compile_function(
            source(fast, False, True), env
        )
        self.to_obj: Callable[[T], dict[str, Value]] = self._compile_dump(sort_keys)
        self.load: Callable[[Value], T] = self._compile_load()
        self.replace: Callable[..., T] = self._compile_replace()

    def _compile_replace(self) -> Callable[..., T]:
        """``replace(x, **changes)``: generated when the wire fields are all the class's
        constructor takes, else :func:`dataclasses.replace`."""
        init = {f.name for f in dataclasses.fields(self.cls) if f.init}  # type: ignore[arg-type]
        if init != set(self.names):
            return dataclasses.replace
        env = {"_make": self.make, "_KEEP": object()}
        replace: Callable[..., T] = compile_function(replacer_source(self.names), env)
        return replace

    def _compile_load(self) -> Callable[[Value], T]:
        env: dict[str, Any] = {"_make": self.make}
        fields = []
        for i, f in enumerate(self.fields.values()):
            env[f"_l{i}"], env[f"_m{i}"] = f.spec.load, f.missing
            fields.append((f.key, f.spec.load is not None, f.optional))
        load: Callable[[Value], T] = compile_function(loader_source(fields), env)
        return load

    def _reader_env(self, convert: tuple[type[Exception], ...]) -> dict[str, Any]:
        """The names the generated readers use (see :func:`reader_source`)."""
        slow = self._compile_values()
        env: dict[str, Any] = {
            "_Refused": Refused,
            "_slow": slow,
            "_locate": partial(_refusal_of, slow),
            "_make": self.make,
            "_convert": convert,
            "_error": self.error,
            "_what": self.what,
            "_keys": self._keys(),
            "_required": self._keys() - {f.key for f in self.fields.values() if f.optional},
        }
        for i, f in enumerate(self.fields.values()):
            env[f"_p{i}"], env[f"_c{i}"], env[f"_m{i}"] = f.spec.parse, f.spec.const, f.missing
        return env

    def _keys(self) -> frozenset[str]:
        """Every key of the record's map: its fields' and its tag's."""
        keys = frozenset(f.key for f in self.fields.values())
        return keys if self.tag is None else keys | {self.tag[0]}

    def _fast_test(self) -> str:
        """The test of a map the generated readers read inline: the record's keys (all
        but the optional fields' at least) and its tag."""
        if any(f.optional for f in self.fields.values()):
            fast = "type(obj) is dict and _required <= obj.keys() <= _keys"
        else:
            fast = "type(obj) is dict and obj.keys() == _keys"
        if self.tag is not None:
            fast += f" and obj[{self.tag[0]!r}] == {self.tag[1]!r}"
        return fast

    def _compile_values(self) -> Callable[[Any], tuple[Any, ...]]:
        """The closure-based reader of the field values (a tuple in declaration order):
        what the generated readers call for any map but one with exactly the record's
        keys, and where a refusal of the map as a whole is worded."""
        parsers = tuple((f.key, f.spec.parse) for f in self.fields.values())
        missing = {f.key: f.missing for f in self.fields.values() if f.optional}
        keys = self._keys()
        required = keys - missing.keys()
        tag = self.tag

        def values(obj: Any) -> tuple[Any, ...]:
            if type(obj) is not dict and not isinstance(obj, dict):
                raise Refused(f"must be a map, got {wire_name(obj)}")
            if not (required <= obj.keys() <= keys):
                raise Refused(key_problem(obj, required, keys - required))
            if tag is not None and obj[tag[0]] != tag[1]:
                raise Refused(f"must be {tag[1]!r}, got {obj[tag[0]]!r}", f".{tag[0]}")
            return _values_with_missing(parsers, missing, obj)

        return values

    def _compile_dump(self, sort_keys: bool) -> Callable[[T], dict[str, Value]]:
        order = list(self.fields.items())
        if sort_keys:
            order.sort(key=lambda item: item[1].key)
        env: dict[str, Any] = {}
        for i, (_, f) in enumerate(order):
            env[f"_d{i}"], env[f"_m{i}"] = f.spec.dump, f.missing
        fields = [(name, f.key, f.spec.dump is not None, f.optional) for name, f in order]
        to_obj: Callable[[T], dict[str, Value]] = compile_function(
            dumper_source(fields, self.tag), env
        )
        return to_obj


def _refusal_of(values: Callable[[Any], tuple[Any, ...]], obj: Any) -> Refused:
    """What the closure-based reader ``values`` says is wrong with ``obj``, a map the
    inline reader refused (the slow path names the field)."""
    try:
        values(obj)
    except Refused as exc:
        return exc
    return Refused("refused")  # unreachable: both readers refuse the same maps


def _values_with_missing(
    parsers: tuple[tuple[str, Callable[[Any], Any]], ...],
    missing: dict[str, Any],
    obj: dict[str, Any],
) -> tuple[Any, ...]:
    """The field values of a map that may leave out optional fields (absent or nil)."""
    out = []
    for key, p in parsers:
        value = obj.get(key)
        if value is None and key in missing:
            out.append(missing[key])
            continue
        try:
            out.append(p(value))
        except Refused as exc:
            raise exc.within(f".{key}") from None
    return tuple(out)


def _wire_fields(
    cls: type, override: Mapping[str, Spec], by_type: Mapping[str, Spec] | None
) -> dict[str, WireField]:
    """The wire fields of dataclass ``cls`` by name, their keys filled in, with the
    specs of ``override`` in place of their own (``by_type``: see :class:`Record`)."""
    fields = {}
    for f in dataclasses.fields(cls):
        wf = f.metadata.get(_SCHEMA_KEY)
        if wf is None and by_type is not None:
            wf = WireField(_spec_of_type(cls, f, by_type))
        if wf is not None:
            spec = override.get(f.name, wf.spec)
            fields[f.name] = WireField(spec, wf.missing, wf.key or f.name)
    if not fields or not override.keys() <= fields.keys():
        raise ValueError(f"{cls.__name__}: no wire fields, or overrides of unknown ones")
    return fields


def _spec_of_type(cls: type, f: dataclasses.Field[Any], by_type: Mapping[str, Spec]) -> Spec:
    """The spec ``by_type`` gives field ``f`` by its annotation (a str under ``from
    __future__ import annotations``, else the type itself)."""
    t = f.type
    annotation = t if isinstance(t, str) else getattr(t, "__name__", str(t))
    spec = by_type.get(annotation)
    if spec is None:
        raise ValueError(f"{cls.__name__}.{f.name}: no spec, and none for type {annotation!r}")
    return spec


def _maker(cls: type[T], names: tuple[str, ...]) -> Callable[..., T]:
    """``cls`` called with the wire values in order: positionally when the wire fields
    are the constructor's parameters in order, else by name; or, for a slotted class
    whose fields are all wire fields and which has no ``__post_init__``, the same
    instance built by setting its slots (a frozen dataclass's ``__init__`` sets each
    field through ``object.__setattr__``, which costs a third more)."""
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    init = tuple(f.name for f in fields if f.init)
    if init == names and len(fields) == len(names) and not hasattr(cls, "__post_init__"):
        setters = _slot_setters(cls, names)
        if setters is not None:
            return _slot_maker(cls, setters)
    if init[: len(names)] == names:
        return cls

    def make(*values: Any) -> T:
        return cls(**dict(zip(names, values, strict=True)))

    return make


def _slot_setters(cls: type, names: tuple[str, ...]) -> list[Callable[[Any, Any], None]] | None:
    """The ``__set__`` of each named slot of ``cls`` (found where the class or a base
    defines it), or None when one is not a slot."""
    setters = []
    for name in names:
        slot: Any = next((vars(c)[name] for c in cls.__mro__ if name in vars(c)), None)
        if not hasattr(slot, "__set__"):
            return None
        setters.append(slot.__set__)
    return setters


def _slot_maker(cls: type[T], setters: list[Callable[[Any, Any], None]]) -> Callable[..., T]:
    """A function of the field values in order that builds ``cls`` by setting its slots."""
    env: dict[str, Any] = {"_new": object.__new__, "_cls": cls}
    env.update((f"_s{i}", setter) for i, setter in enumerate(setters))
    make: Callable[..., T] = compile_function(slot_maker_source(len(setters)), env)
    return make


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

    def replace(self, **changes: Any) -> Self:
        """A copy with ``changes`` (like :func:`dataclasses.replace`, compiled per record)."""
        result: Self = self.__schema__.replace(self, **changes)
        return result

    @classmethod
    def load(cls, obj: Value) -> Self:
        """The value of a map this code wrote itself, unchecked (see :class:`Record`)."""
        result: Self = cls.__schema__.load(obj)
        return result


class RecordOptions(TypedDict, total=False):
    """The keyword parameters :func:`described` hands to :class:`Record` (see there)."""

    error: ErrorFactory
    convert: tuple[type[Exception], ...]
    tag: tuple[str, str] | None
    sort_keys: bool
    by_type: Mapping[str, Spec] | None


def described(what: str, **options: Unpack[RecordOptions]) -> Callable[[type[T]], type[T]]:
    """Class decorator (above ``@dataclass``): compile the class's :class:`Record`
    into ``cls.__schema__`` (the parameters are :class:`Record`'s)."""

    def decorate(cls: type[T]) -> type[T]:
        record = Record(cls, what, **options)
        cls.__schema__ = record  # type: ignore[attr-defined]
        # The record's own closures, unless the class defines its own (one call less).
        if "from_obj" not in vars(cls):
            cls.from_obj = staticmethod(record.from_obj)  # type: ignore[attr-defined]
        if "to_obj" not in vars(cls):
            cls.to_obj = record.to_obj  # type: ignore[attr-defined]
        if "load" not in vars(cls):
            cls.load = staticmethod(record.load)  # type: ignore[attr-defined]
        if "replace" not in vars(cls):
            cls.replace = record.replace  # type: ignore[attr-defined]
        return cls

    return decorate


def Nested(cls: type[Described]) -> Spec:
    """A value of the described class ``cls`` (its own map)."""
    record = cls.__schema__
    return Spec.of(record.parse, record.to_obj, load=record.load)


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

    def load(value: dict[str, Any]) -> Any:
        return by_tag[value[tag]].load(value)

    return Spec.of(parse, lambda value: value.to_obj(), load=load)
