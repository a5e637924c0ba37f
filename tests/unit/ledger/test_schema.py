"""ledger.schema: every spec refuses bad input naming the field, records round-trip,
unknown and missing keys are refused, and junk raises only the declared error."""

from __future__ import annotations

import contextlib
import dataclasses
import re
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.encoding import decode, encode
from ledger.errors import DecodeError, ValidationError
from ledger.schema import (
    AnyMap,
    Bool,
    Bytes,
    Choice,
    Described,
    Int,
    IntEnumOf,
    List,
    Mapped,
    Nested,
    OneOf,
    Optional,
    Pair,
    Str,
    Struct,
    Where,
    described,
    read,
    wire,
)

ID = re.compile(r"^[a-z][a-z0-9-]{0,15}$")


class Colour(IntEnum):
    RED = 1
    GREEN = 2


class PayloadError(Exception):
    """A user's own error type (as contracts raise ``bad_payload``)."""


def payload_error(message: str) -> Exception:
    return PayloadError(f"bad payload: {message}")


@described("line")
@dataclass(frozen=True, slots=True)
class Line(Described):
    sku: str = field(metadata=wire(Str(max_len=8, min_len=1, pattern=ID)))
    qty: int = field(metadata=wire(Int(lo=1, hi=1000)))


@described("order", error=payload_error)
@dataclass(frozen=True, slots=True)
class Order(Described):
    id: str = field(metadata=wire(Str(max_len=16, min_len=1, pattern=ID)))
    colour: Colour = field(metadata=wire(IntEnumOf(Colour)))
    kind: str = field(metadata=wire(Choice({"sale", "loan"})))
    digest: bytes = field(metadata=wire(Bytes(size=4)))
    blob: bytes = field(metadata=wire(Bytes(max_size=6)))
    lines: tuple[Line, ...] = field(metadata=wire(List(Nested(Line), min_len=1, max_len=3)))
    tags: tuple[str, ...] = field(
        metadata=wire(List(Str(max_len=4), max_len=4, distinct=True, sort=True))
    )
    pair: tuple[bytes, int] = field(metadata=wire(Pair(Bytes(size=1), Int(hi=9))))
    urgent: bool = field(metadata=wire(Bool()))
    extra: dict[str, Any] = field(metadata=wire(AnyMap()))
    parent: bytes | None = field(metadata=wire(Optional(Bytes(size=2))))
    note: str = field(default="", metadata=wire(Str(max_len=20, control=False), missing=""))
    due_ms: int | None = field(default=None, metadata=wire(Int(), missing=None))
    even: int = field(
        default=0, metadata=wire(Where(Int(), lambda v: v % 2 == 0, "{value} is odd"), missing=0)
    )

    def __post_init__(self) -> None:
        if self.kind == "loan" and self.due_ms is None:
            raise ValidationError("a loan needs due_ms")


GOOD: dict[str, Any] = {
    "id": "o-1",
    "colour": 2,
    "kind": "sale",
    "digest": b"\x00" * 4,
    "blob": b"xy",
    "lines": [{"sku": "apple", "qty": 3}],
    "tags": ["a", "b"],
    "pair": [b"\x01", 7],
    "urgent": False,
    "extra": {"any": [1, 2]},
    "parent": None,
}


def refusal(obj: object) -> str:
    with pytest.raises(PayloadError) as caught:
        Order.from_obj(obj)
    return str(caught.value)


def test_round_trip_and_canonical_bytes() -> None:
    order = Order.from_obj(GOOD)
    assert order.colour is Colour.GREEN and order.lines == (Line("apple", 3),)
    assert order.to_obj() == GOOD  # optional fields at their missing value are left out
    assert Order.from_obj(decode(encode(order.to_obj()))) == order
    full = {**GOOD, "note": "hi", "due_ms": 5, "even": 4, "parent": b"pp"}
    assert Order.from_obj(full).to_obj() == full


def test_optional_fields_absent_or_nil_take_their_missing_value() -> None:
    order = Order.from_obj({**GOOD, "note": None, "due_ms": None})
    assert (order.note, order.due_ms, order.even) == ("", None, 0)


def test_int_subclasses_are_read_as_their_int() -> None:
    order = Order.from_obj(
        {**GOOD, "colour": Colour.RED, "lines": [{"sku": "a", "qty": Colour.GREEN}]}
    )
    assert order.colour is Colour.RED and type(order.lines[0].qty) is int


def test_to_obj_keys_in_declaration_order_and_sets_sorted() -> None:
    order = Order.from_obj({**GOOD, "tags": ["b", "a"]})
    assert list(order.to_obj())[:3] == ["id", "colour", "kind"]
    assert order.to_obj()["tags"] == ["a", "b"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"id": 5}, "order.id: must be a str, got integer"),
        ({"id": ""}, "order.id: length must be 1..16, got 0"),
        ({"id": "Bad"}, "order.id: 'Bad' does not match"),
        ({"colour": 3}, "order.colour: 3 is not one of [1, 2]"),
        ({"colour": True}, "order.colour: must be an integer, got bool"),
        ({"kind": "gift"}, "order.kind: must be one of ['loan', 'sale'], got 'gift'"),
        ({"digest": b"123"}, "order.digest: must be 4 bytes, got 3"),
        ({"digest": "1234"}, "order.digest: must be bytes, got str"),
        ({"blob": b"1234567"}, "order.blob: must be at most 6 bytes, got 7"),
        ({"lines": []}, "order.lines: has 0 items, fewer than the 1 required"),
        ({"lines": [GOOD["lines"][0]] * 4}, "order.lines: has 4 items, more than the 3 allowed"),
        ({"lines": {"sku": "a"}}, "order.lines: must be a list, got map"),
        ({"lines": [{"sku": "a", "qty": 0}]}, "order.lines[0].qty: 0 is not between 1 and 1000"),
        ({"lines": [{"sku": "a"}]}, "order.lines[0]: missing field 'qty'"),
        ({"tags": ["a", "a"]}, "order.tags: duplicate entries"),
        ({"tags": ["a", 1]}, "order.tags[1]: must be a str, got integer"),
        ({"pair": [b"\x01"]}, "order.pair: must be a list of 2 items, got 1 items"),
        ({"pair": [b"\x01", 10]}, "order.pair[1]: 10 is not between 0 and 9"),
        ({"urgent": 1}, "order.urgent: must be a bool, got integer"),
        ({"extra": []}, "order.extra: must be a map, got list"),
        ({"parent": b"p"}, "order.parent: must be 2 bytes, got 1"),
        ({"note": "a\nb"}, "order.note: control characters are not allowed"),
        ({"note": 7}, "order.note: must be a str, got integer"),
        ({"due_ms": -1}, "order.due_ms: -1 is not between 0 and"),
        ({"even": 3}, "order.even: 3 is odd"),
        ({"unexpected": 1}, "order: unknown fields ['unexpected']"),
        ({"kind": "loan"}, "order: a loan needs due_ms"),
    ],
)
def test_each_spec_refuses_bad_input_naming_the_field(change: dict[str, Any], message: str) -> None:
    assert refusal({**GOOD, **change}).startswith(f"bad payload: {message}")


def test_missing_and_unknown_keys_are_refused() -> None:
    text = refusal({k: v for k, v in GOOD.items() if k not in ("id", "kind")} | {"x": 1})
    assert "missing fields ['id', 'kind']" in text
    assert "unknown fields ['x']" in text
    assert "exactly the fields" in text and "optionally ['due_ms', 'even', 'note']" in text
    assert "missing field 'urgent'" in refusal({k: v for k, v in GOOD.items() if k != "urgent"})
    assert refusal([]) == "bad payload: order: must be a map, got list"


def test_the_default_error_is_decode_error_and_read_takes_any_spec() -> None:
    with pytest.raises(DecodeError, match=r"line\.qty: must be an integer, got str"):
        Line.from_obj({"sku": "a", "qty": "1"})
    status = Struct({"height": Int(lo=1)})
    assert read(status, {"height": 3}, "status") == {"height": 3}
    with pytest.raises(DecodeError, match=r"status\.height: 0 is not between 1"):
        read(status, {"height": 0}, "status")
    with pytest.raises(DecodeError, match=r"status: unknown fields \['x'\]"):
        read(status, {"height": 1, "x": 2}, "status")
    with pytest.raises(PayloadError, match="bad payload: n: must be an integer"):
        read(Int(), "1", "n", error=payload_error)


@described("ping", tag=("kind", "ping"))
@dataclass(frozen=True, slots=True)
class Ping(Described):
    n: int = field(metadata=wire(Int()))


@described("pong", tag=("kind", "pong"))
@dataclass(frozen=True, slots=True)
class Pong(Described):
    text: str = field(metadata=wire(Str()))


def test_tagged_records_and_one_of() -> None:
    assert Ping(1).to_obj() == {"kind": "ping", "n": 1}
    assert Ping.from_obj({"kind": "ping", "n": 1}) == Ping(1)
    with pytest.raises(DecodeError, match=r"ping\.kind: must be 'ping', got 'pong'"):
        Ping.from_obj({"kind": "pong", "n": 1})
    either = List(OneOf("kind", (Ping, Pong)), max_len=2)
    items = read(either, [{"kind": "pong", "text": "x"}, Ping(2).to_obj()], "msgs")
    assert items == (Pong("x"), Ping(2))
    assert either.dump_value(items) == [{"kind": "pong", "text": "x"}, {"kind": "ping", "n": 2}]
    with pytest.raises(DecodeError, match=r"msgs\[0\]\.kind: must be one of \['ping', 'pong'\]"):
        read(either, [{"kind": "pang"}], "msgs")


@described("plain", error=payload_error)
@dataclass(frozen=True, slots=True)
class Plain(Described):
    """Every kind of spec, no optional field: read by the generated straight-line path."""

    n: int = field(metadata=wire(Int(lo=-5, hi=5)))
    colour: Colour = field(metadata=wire(IntEnumOf(Colour)))
    kind: str = field(metadata=wire(Choice({"a", "b"})))
    key: bytes = field(metadata=wire(Bytes(size=2)))
    blob: bytes = field(metadata=wire(Bytes(max_size=3)))
    id: str = field(metadata=wire(Str(max_len=8, pattern=ID)))
    text: str = field(metadata=wire(Str(max_len=3)))
    flag: bool = field(metadata=wire(Bool()))
    extra: dict[str, Any] = field(metadata=wire(AnyMap()))
    parent: bytes | None = field(metadata=wire(Optional(Bytes(size=1))))
    lines: tuple[Line, ...] = field(metadata=wire(List(Nested(Line), max_len=2)))
    pair: tuple[int, int] = field(metadata=wire(Pair(Int(), Int())))
    odd: int = field(metadata=wire(Where(Int(), lambda v: v % 2 == 1, "{value} is even")))
    span: range = field(
        metadata=wire(Mapped(Pair(Int(), Int()), lambda p: range(*p), lambda r: (r.start, r.stop)))
    )


PLAIN: dict[str, Any] = {
    "n": -5,
    "colour": 1,
    "kind": "b",
    "key": b"kk",
    "blob": b"",
    "id": "x-1",
    "text": "abc",
    "flag": True,
    "extra": {},
    "parent": b"p",
    "lines": [{"sku": "a", "qty": 1}],
    "pair": [0, 2**64 - 1],
    "odd": 3,
    "span": [2, 5],
}


def test_the_generated_path_reads_every_spec_and_names_what_it_refuses() -> None:
    plain = Plain.from_obj(PLAIN)
    assert plain.span == range(2, 5) and plain.lines == (Line("a", 1),)
    assert plain.to_obj() == PLAIN and Plain.from_obj(decode(encode(plain.to_obj()))) == plain
    assert Plain.load(decode(encode(PLAIN))) == plain  # every spec kind read back unchecked
    for change, message in [
        ({"n": 6}, "plain.n: 6 is not between -5 and 5"),
        ({"id": "x" * 9}, "plain.id: length must be 0..8, got 9"),
        ({"text": b"abc"}, "plain.text: must be a str, got bytes"),
        ({"parent": b""}, "plain.parent: must be 1 bytes, got 0"),
        ({"lines": [{"sku": "a", "qty": 1, "x": 0}]}, "plain.lines[0]: unknown fields ['x']"),
        ({"odd": 2}, "plain.odd: 2 is even"),
        ({"span": [1]}, "plain.span: must be a list of 2 items, got 1 items"),
    ]:
        with pytest.raises(PayloadError) as caught:
            Plain.from_obj({**PLAIN, **change})
        assert str(caught.value).startswith(f"bad payload: {message}")


@given(
    st.dictionaries(
        st.sampled_from(list(PLAIN)),
        st.none() | st.integers(-9, 9) | st.binary(max_size=3) | st.text(max_size=3),
        max_size=len(PLAIN),
    )
)
def test_junk_on_the_generated_path_raises_only_the_declared_error(changes: dict[str, Any]) -> None:
    with contextlib.suppress(PayloadError):
        assert isinstance(Plain.from_obj({**PLAIN, **changes}), Plain)


def test_specs_refuse_impossible_bounds() -> None:
    with pytest.raises(ValueError, match="encodable"):
        Int(lo=-(2**64))


BY_TYPE = {"int": Int(hi=99), "str | None": Optional(Str(max_len=3))}


def test_by_type_gives_a_field_that_names_no_spec_the_spec_of_its_type() -> None:
    @described("typed", by_type=BY_TYPE)
    @dataclass(frozen=True, slots=True)
    class Typed(Described):
        count: int
        label: str | None
        blob: bytes = field(metadata=wire(Bytes(max_size=2)))

    value = Typed(7, None, b"ab")
    assert Typed.from_obj(value.to_obj()) == value
    assert value.to_obj() == {"count": 7, "label": None, "blob": b"ab"}
    with pytest.raises(DecodeError, match=r"typed\.count: 100 is not between 0 and 99"):
        Typed.from_obj({"count": 100, "label": None, "blob": b""})
    with pytest.raises(DecodeError, match=r"typed\.label: length must be 0\.\.3"):
        Typed.from_obj({"count": 1, "label": "long", "blob": b""})


def test_by_type_refuses_a_field_whose_type_it_does_not_know() -> None:
    with pytest.raises(ValueError, match=r"Untyped\.stamp: no spec, and none for type 'float'"):

        @described("untyped", by_type=BY_TYPE)
        @dataclass(frozen=True, slots=True)
        class Untyped(Described):
            count: int
            stamp: float


# --- properties -----------------------------------------------------------------------------

_ids = st.from_regex(r"\A[a-z][a-z0-9-]{0,7}\Z")
_lines = st.builds(Line, sku=_ids, qty=st.integers(1, 1000))
_orders = st.builds(
    Order,
    id=_ids,
    colour=st.sampled_from(Colour),
    kind=st.just("sale"),
    digest=st.binary(min_size=4, max_size=4),
    blob=st.binary(max_size=6),
    lines=st.lists(_lines, min_size=1, max_size=3).map(tuple),
    tags=st.lists(st.text(max_size=4), max_size=4, unique=True).map(lambda t: tuple(sorted(t))),
    pair=st.tuples(st.binary(min_size=1, max_size=1), st.integers(0, 9)),
    urgent=st.booleans(),
    extra=st.dictionaries(st.text(max_size=3), st.integers(0, 9), max_size=3),
    parent=st.none() | st.binary(min_size=2, max_size=2),
    note=st.text(st.characters(min_codepoint=32, max_codepoint=0x7E), max_size=20),
    due_ms=st.none() | st.integers(0, 2**64 - 1),
    even=st.integers(0, 100).map(lambda n: 2 * n),
)


@given(_orders)
def test_from_obj_of_to_obj_is_identity(order: Order) -> None:
    assert Order.from_obj(order.to_obj()) == order
    assert Order.from_obj(decode(encode(order.to_obj()))) == order
    assert Order.load(decode(encode(order.to_obj()))) == order  # unchecked, same value
    assert order.replace(note="changed", urgent=not order.urgent) == dataclasses.replace(
        order, note="changed", urgent=not order.urgent
    )
    with pytest.raises(
        TypeError, match=r"replace\(\) got an unexpected keyword argument 'colour_name'"
    ):
        order.replace(colour_name="red")


_junk = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.text(max_size=6)
    | st.binary(max_size=6),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from([*GOOD, "note", "due_ms", "x"]), inner, max_size=12)
    ),
    max_leaves=30,
)


@given(_junk)
def test_junk_raises_only_the_declared_error(obj: object) -> None:
    with contextlib.suppress(PayloadError):
        assert isinstance(Order.from_obj(obj), Order)


@given(st.dictionaries(st.sampled_from(list(GOOD)), _junk, max_size=len(GOOD)))
def test_near_misses_raise_only_the_declared_error(changes: dict[str, Any]) -> None:
    with contextlib.suppress(PayloadError):
        assert isinstance(Order.from_obj({**GOOD, **changes}), Order)


def test_the_ledger_wire_types_round_trip() -> None:
    from ledger.block import Event, Receipt
    from ledger.crypto import PrivateKey
    from ledger.genesis import ConsensusParams, Genesis, Member, Organisation
    from ledger.validators import Validator, ValidatorSet

    key = PrivateKey.from_label("schema-test").public_key
    member = Member(key, ("port", "admin"), "m")
    port = Organisation("port", "Port", "agency", "Rotterdam", (member,))
    validators = ValidatorSet((Validator("v1", key, 3),))
    params = ConsensusParams(max_block_txs=10)
    genesis = Genesis("schema-test", 5, validators, (port,), params, {"note": [1, b"x"]})
    obj = genesis.to_obj()
    assert obj["organisations"][0]["members"][0]["roles"] == ["admin", "port"]  # a set: sorted
    again = Genesis.from_obj(decode(encode(obj)))
    assert again.hash == genesis.hash and again.to_obj() == obj
    with pytest.raises(DecodeError, match=r"genesis\.organisations\[0\]\.kind: must be one of"):
        Genesis.from_obj({**obj, "organisations": [{**obj["organisations"][0], "kind": "x"}]})
    receipt = Receipt(bytes(32), 1, 0, "", "", (Event("shipment.declared", {"id": "s"}),))
    assert Receipt.decode(receipt.encode()) == receipt
