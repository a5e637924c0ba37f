"""The strict canonical decoder: round trips, golden vectors, and every rejection rule."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger import encoding
from ledger.encoding import MAX_DEPTH, decode, decode_trusted, encode
from ledger.errors import DecodeError

from .encoding_kit import canonical_values

VECTORS = Path(__file__).parent.parent.parent / "vectors" / "encoding.json"


@given(canonical_values)
def test_round_trip_is_identity(value: object) -> None:
    data = encode(value)
    assert decode(data) == value
    assert encode(decode(data)) == data


@given(canonical_values)
def test_trusted_decode_of_canonical_bytes_is_the_strict_decode(value: object) -> None:
    data = encode(value)
    trusted = decode_trusted(data)
    assert trusted == decode(data)
    assert encode(trusted) == data


def test_trusted_decode_refuses_what_is_not_msgpack() -> None:
    with pytest.raises(DecodeError):
        decode_trusted(b"\xc1")
    with pytest.raises(DecodeError):
        decode_trusted(encode(1) + b"\x00")


@given(st.dictionaries(st.text(max_size=8), st.integers(0, 10), min_size=2, max_size=8))
def test_map_keys_are_sorted_by_utf8_bytes(value: dict[str, int]) -> None:
    decoded = msgpack.unpackb(encode(value), object_pairs_hook=list)
    keys = [k.encode() for k, _ in decoded]
    assert keys == sorted(keys)


def test_golden_vectors() -> None:
    for case in json.loads(VECTORS.read_text()):
        data = bytes.fromhex(case["hex"])
        assert hashlib.sha256(data).hexdigest() == case["sha256"], case["name"]
        assert encode(decode(data)) == data, case["name"]


def test_golden_vectors_encode_from_json_description() -> None:
    cases = {c["name"]: bytes.fromhex(c["hex"]) for c in json.loads(VECTORS.read_text())}
    assert encode({"b": 1, "a": [1, b"x", "s", None, True]}) == cases["nested_map"]
    assert encode(2**64 - 1) == cases["uint64_max"]
    assert encode(-(2**63)) == cases["int64_min"]
    assert encode({"é": 1, "z": 2, "a": 3}) == cases["utf8_key_order"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (msgpack.packb({"a": 1}) + b"\x00", "trailing bytes"),
        (msgpack.packb({"b": 1, "a": 2}), "not sorted"),
        (b"\x82\xa1a\x01\xa1a\x02", "duplicate map key"),
        (msgpack.packb(1.5), "floats"),
        (b"\xca\x3f\xc0\x00\x00", "floats"),
        (msgpack.packb(msgpack.ExtType(1, b"x")), "ext type"),
        (b"\xcc\x01", "not canonical"),  # 1 as uint8 instead of fixint
        (b"\xd9\x01a", "not canonical"),  # "a" as str8
        (b"\xdc\x00\x01\x01", "not canonical"),  # [1] as array16
        (b"\xa1\xff", "UTF-8"),
        (msgpack.packb({1: 2}), "not a str"),
        (msgpack.packb({b"k": 2}, use_bin_type=True), "not a str"),
        (b"\x92\x01", "not valid msgpack"),
        (b"", "empty"),
        (b"\xc1", "not valid msgpack"),
    ],
)
def test_rejects_non_canonical(data: bytes, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        decode(data)


def test_rejects_deep_nesting() -> None:
    ok = b"\x91" * MAX_DEPTH + b"\x01"
    decode(ok)
    with pytest.raises(DecodeError, match="nesting"):
        decode(b"\x91" * (MAX_DEPTH + 1) + b"\x01")
    with pytest.raises(DecodeError, match="nesting"):
        decode(b"\x91" * 100_000 + b"\x01")


def test_rejects_oversize_and_huge_declared_lengths() -> None:
    with pytest.raises(DecodeError, match="over the cap"):
        decode(encode(b"x" * 2000), max_size=1000)
    # A bin32 header claiming 4 GiB with 3 bytes behind it.
    with pytest.raises(DecodeError):
        decode(b"\xc6\xff\xff\xff\xffabc")


def test_str_and_bytes_are_distinct() -> None:
    assert decode(encode("ab")) == "ab"
    assert decode(encode(b"ab")) == b"ab"
    assert encode("ab") != encode(b"ab")


def test_encode_rejects_what_the_format_forbids() -> None:
    for bad in (1.0, {1: 2}, 2**64, -(2**63) - 1, object()):
        with pytest.raises(DecodeError):
            encode(bad)


def test_tuples_encode_as_lists() -> None:
    assert encode((1, 2)) == encode([1, 2])


def test_key_order_is_utf8_byte_order_not_code_point_of_first_char() -> None:
    # Hand-assembled: map of 3, "a"->3, "z"->2, "é" (c3 a9)->1.
    expected = bytes.fromhex("83a16103a17a02a2c3a901")
    assert encode({"é": 1, "z": 2, "a": 3}) == expected


# --- the Rust fast paths must agree with the checked Python reference ------------------------

any_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.binary(max_size=40),
    lambda children: (
        st.lists(children, max_size=4)
        | st.tuples(children, children)
        | st.dictionaries(st.text(max_size=6) | st.integers(0, 3), children, max_size=4)
    ),
    max_leaves=20,
)


def _reference_encode(value: object) -> bytes | str:
    try:
        return encoding._checked_pack(value)
    except DecodeError as exc:
        return f"refused: {exc}"


def _encode_or_error(value: object) -> bytes | str:
    try:
        return encode(value)
    except DecodeError as exc:
        return f"refused: {exc}"


@given(any_values)
def test_encode_is_the_reference_encoder_on_any_value(value: object) -> None:
    """Floats, out-of-range ints, int keys, tuples: same bytes or the same refusal."""
    assert _encode_or_error(value) == _reference_encode(value)


def test_encode_falls_back_for_subclasses_and_floats_anywhere() -> None:
    class Text(str):
        pass

    assert encode({"k": Text("v")}) == encode({"k": "v"})
    assert encode(bytearray(b"ab")) == encode(b"ab")
    for bad in ({"a": [1, {"b": 0.5}]}, [b"\xcb" * 9, 1.0], 2**64, {1: 2}, {Text("k"): 1}):
        with pytest.raises(DecodeError):
            encode(bad)


@given(canonical_values, st.data())
def test_decode_fast_path_accepts_exactly_what_the_checked_path_accepts(
    value: object, data: st.DataObject
) -> None:
    """Canonical bytes and single-byte mutations of them: same value or both refuse."""
    packed = bytearray(encode(value))
    at = data.draw(st.integers(0, len(packed) - 1))
    packed[at] = data.draw(st.integers(0, 255))
    mutated = bytes(packed)
    fast = encoding._fast_unpack(mutated)
    try:
        reference = decode(mutated)
    except DecodeError:
        assert fast is encoding._REFUSED
    else:
        assert fast is encoding._REFUSED or (fast == reference and encode(fast) == mutated)


def test_decode_fast_path_refuses_floats_and_depth() -> None:
    assert encoding._fast_unpack(msgpack.packb({"a": [1.5]})) is encoding._REFUSED
    assert encoding._fast_unpack(msgpack.packb(1.5)) is encoding._REFUSED
    assert encoding._fast_unpack(b"\x91" * MAX_DEPTH + b"\x01") == decode(
        b"\x91" * MAX_DEPTH + b"\x01"
    )
    assert encoding._fast_unpack(b"\x91" * (MAX_DEPTH + 1) + b"\x01") is encoding._REFUSED
    assert encoding._fast_unpack(encode({"a": 1}) + b"\x00") is encoding._REFUSED
