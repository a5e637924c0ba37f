"""Source generation for :class:`ledger.schema.records.Record`: each record's readers
and its ``to_obj`` are Python functions written once from its fields and compiled,
so reading a map runs straight-line code with each spec's ``accept`` test inline."""

from __future__ import annotations

from textwrap import indent
from typing import Any

from ledger.schema.specs import Spec


def reader_source(
    specs: tuple[tuple[str, Spec, bool], ...], fast: str | None, build: bool, raise_: bool
) -> str:
    """The source of a record's reader: the field values of a map, the instance when
    ``build``, the record's error instead of :class:`Refused` when ``raise_``.

    ``specs``: each field's key, spec and whether it may be left out (absent or nil:
    its missing value ``_m<i>``). A map that passes ``fast`` (the record's keys, all
    of them but what may be left out) has its fields read inline, each spec's
    ``accept`` tested before its parser is called; any other goes to ``_slow``, which
    also names what is wrong.
    """
    values = ", ".join(f"v{i}" for i in range(len(specs))) + ","
    if fast is None:
        read = f"{values} = _slow(obj)"
    else:
        fields = "\n".join(_read_field(i, *field) for i, field in enumerate(specs))
        read = _FAST.format(fast=fast, fields=indent(fields, " " * 8), values=values)
    done = _BUILD.format(values=values) if build else f"return ({values})"
    fail = _RAISE if raise_ else "raise"
    return _READER.format(read=indent(read, " " * 8), done=indent(done, " " * 8), fail=fail)


def _read_field(i: int, key: str, spec: Spec, optional: bool) -> str:
    """Field ``i`` read into ``v<i>``: its spec's parser called unless ``accept`` passes;
    an optional field's absent or nil value is its missing value ``_m<i>``."""
    parse = f"v{i} = _p{i}(v{i})"
    if spec.accept is not None:
        test = spec.accept.replace("{v}", f"v{i}").replace("{c}", f"_c{i}")
        parse = f"if not ({test}):\n    {parse}"
    if optional:
        head = f"v{i} = obj.get({key!r})\nif v{i} is None:\n    v{i} = _m{i}\nelse:\n"
        return head + indent(parse, "    ")
    if spec.accept is None:
        return f"v{i} = _p{i}(obj[{key!r}])"
    return f"v{i} = obj[{key!r}]\n{parse}"


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


def compile_function(source: str, env: dict[str, Any]) -> Any:
    """The function ``generated`` that ``source`` defines, with the names of ``env``
    (Any: its signature is the caller's to state)."""
    namespace = dict(env)
    exec(compile(source, "<ledger.schema>", "exec"), namespace)
    return namespace["generated"]


def loader_source(fields: list[tuple[str, bool, bool]]) -> str:
    """The source of a record's trusted ``load``: for each field (key, whether its spec
    has a loader ``_l<i>``, whether it may be left out, reading as ``_m<i>``), its value
    straight from the map, passed to ``_make`` in declaration order."""
    args = []
    for i, (key, loaded, optional) in enumerate(fields):
        if optional:
            value = f"_l{i}(x{i})" if loaded else f"x{i}"
            args.append(f"(_m{i} if (x{i} := obj.get({key!r})) is None else {value})")
        else:
            args.append(f"_l{i}(obj[{key!r}])" if loaded else f"obj[{key!r}]")
    lines = ["def generated(obj):", "    return _make("]
    lines += [f"        {a}," for a in args]
    return "\n".join([*lines, "    )"])


def slot_maker_source(count: int) -> str:
    """The source of a constructor that sets ``count`` slots (setters ``_s<i>``) of a
    new ``_cls`` from its arguments, in order."""
    args = ", ".join(f"v{i}" for i in range(count))
    lines = [f"def generated({args}):", "    x = _new(_cls)"]
    lines += [f"    _s{i}(x, v{i})" for i in range(count)]
    return "\n".join([*lines, "    return x"])


def replacer_source(names: tuple[str, ...]) -> str:
    """The source of a record's ``replace``: a copy of ``_self`` with the fields given
    as keywords set to their values (an unknown keyword is Python's own TypeError)."""
    params = ", ".join(f"{name}=_KEEP" for name in names)
    lines = [f"def replace(_self, *, {params}):", "    return _make("]
    lines += [f"        _self.{name} if {name} is _KEEP else {name}," for name in names]
    return "\n".join([*lines, "    )", "generated = replace"])


def dumper_source(fields: list[tuple[str, str, bool, bool]], tag: tuple[str, str] | None) -> str:
    """The source of a record's ``to_obj``: for each field (attribute, key, whether its
    spec has a dumper ``_d<i>``, whether it is left out when equal to ``_m<i>``) in the
    order of the map's keys, after the ``tag`` if there is one."""
    items = [] if tag is None else [f"{tag[0]!r}: {tag[1]!r}"]
    lines = []
    for i, (name, key, dumped, optional) in enumerate(fields):
        value = f"_d{i}(x.{name})" if dumped else f"x.{name}"
        if optional:
            lines += [f"    if x.{name} != _m{i}:", f"        out[{key!r}] = {value}"]
        elif lines:
            lines.append(f"    out[{key!r}] = {value}")
        else:
            items.append(f"{key!r}: {value}")
    head = "    out = {" + ", ".join(items) + "}"
    return "\n".join(["def generated(x):", head, *lines, "    return out"])
