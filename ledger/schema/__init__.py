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

Speed: every spec's parser is a closure built once; a record's readers and its
``to_obj`` are generated once as straight-line Python (:mod:`ledger.schema.generate`)
that tests each scalar field inline and calls a parser only when the test fails.
Only a refusal pays for finding which field and item it came from (:class:`Refused`
carries the path up). Patterned strings remember (boundedly) what they accepted.

Modules: :mod:`~ledger.schema.specs` (the specs and :func:`read`),
:mod:`~ledger.schema.records` (records, :class:`Described`, :func:`described`,
:func:`Nested`, :func:`OneOf`), :mod:`~ledger.schema.generate` (the generated code),
:mod:`~ledger.schema.fields` (specs every wire type shares). Import from here.
"""

from ledger.schema.fields import COUNT, HASH, HEIGHT, MAX_I63, PUBLIC_KEY, SIGNATURE
from ledger.schema.records import (
    Described,
    Nested,
    OneOf,
    Record,
    WireField,
    described,
    wire,
)
from ledger.schema.specs import (
    MAX_CACHED,
    AnyMap,
    AnyValue,
    Bool,
    Bytes,
    Choice,
    ErrorFactory,
    Int,
    IntEnumOf,
    List,
    Mapped,
    Optional,
    Pair,
    Refused,
    Spec,
    Str,
    Struct,
    Where,
    read,
    wire_name,
)

__all__ = [
    "COUNT",
    "HASH",
    "HEIGHT",
    "MAX_CACHED",
    "MAX_I63",
    "PUBLIC_KEY",
    "SIGNATURE",
    "AnyMap",
    "AnyValue",
    "Bool",
    "Bytes",
    "Choice",
    "Described",
    "ErrorFactory",
    "Int",
    "IntEnumOf",
    "List",
    "Mapped",
    "Nested",
    "OneOf",
    "Optional",
    "Pair",
    "Record",
    "Refused",
    "Spec",
    "Str",
    "Struct",
    "Where",
    "WireField",
    "described",
    "read",
    "wire",
    "wire_name",
]
