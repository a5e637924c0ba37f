"""Canonical msgpack: the one encoding of every hashed, signed or stored value.

Rules (normative text in docs/formats.md):

* types: nil, bool, int (-2**63 .. 2**64-1), str (UTF-8), bytes (bin), list, map;
  no floats, no ext types;
* maps have str keys, sorted by their UTF-8 bytes, no duplicates;
* every value uses msgpack's shortest form (what msgpack-python emits);
* nesting is at most :data:`MAX_DEPTH` deep and a document at most
  :data:`MAX_SIZE` bytes.

Decoding is strict: a document is accepted only if it re-encodes to exactly
the same bytes, so every value has one encoding and one hash. The cheap
structural checks run first so the error says *what* is wrong.

Speed: packing is the hottest step of execution (every record, receipt, hash
and signature), so :func:`encode` first asks ormsgpack (in Rust) for the bytes
with its keys sorted, which is byte-for-byte msgpack-python's output for every
value the rules allow. Anything it does not pack natively (subclasses, tuples'
cousins, out-of-range integers, non-str keys, unknown types) takes the checked
Python path, whose bytes and errors are the reference. A result holding a float
marker byte (0xca/0xcb: a float went in, or more often a hash or an integer
holds the byte) is kept only after a walk that finds no float and no nesting
deeper than :data:`MAX_DEPTH` (cheaper than the canonicalising walk: no copy, no
sort). What the fast path does not re-check is the depth of a result *without*
a marker byte: such a value nested too deep (never built by this code: records
are built field by field from parsed payloads) packs, and :func:`decode`
refuses it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import msgpack
import ormsgpack

from ledger.digest import sha256_digest
from ledger.errors import DecodeError

MAX_DEPTH = 32
MAX_SIZE = 16 * 1024 * 1024
INT_MIN = -(2**63)
INT_MAX = 2**64 - 1

# A canonical value: what encode() accepts and decode() returns.
Value = Any


def encode(value: Value) -> bytes:
    """Canonical bytes of ``value`` (tuples encode as lists, maps get sorted keys)."""
    packed = _fast_pack(value)
    if packed is None:
        packed = _checked_pack(value)
    if len(packed) > MAX_SIZE:
        raise DecodeError(f"encoded value is {len(packed)} bytes, over the cap of {MAX_SIZE}")
    return packed


# Everything but plain str/bytes/int/bool/None/list/tuple/dict goes to ``default``,
# which is unset, so ormsgpack raises and the checked path decides.
_FAST_OPTIONS = (
    ormsgpack.OPT_SORT_KEYS
    | ormsgpack.OPT_PASSTHROUGH_BIG_INT
    | ormsgpack.OPT_PASSTHROUGH_DATACLASS
    | ormsgpack.OPT_PASSTHROUGH_DATETIME
    | ormsgpack.OPT_PASSTHROUGH_ENUM
    | ormsgpack.OPT_PASSTHROUGH_SUBCLASS
    | ormsgpack.OPT_PASSTHROUGH_UUID
)
_IN_ORDER_OPTIONS = _FAST_OPTIONS & ~ormsgpack.OPT_SORT_KEYS  # maps packed as they are
_ormsgpack_packb = ormsgpack.packb


def _fast_pack(value: Value) -> bytes | None:
    """ormsgpack's bytes of ``value``, or None when the checked path must decide."""
    try:
        packed: bytes = _ormsgpack_packb(value, option=_FAST_OPTIONS)
    except (TypeError, ValueError, OverflowError):  # MsgpackEncodeError is a TypeError
        return None
    # The byte values as ints: bytes.__contains__ tries its argument as an integer first,
    # and for b"\xcb" it makes and drops a TypeError before it scans (docs/performance.md).
    if (0xCB in packed or 0xCA in packed) and not _plain_value(value):
        return None  # a float (or nesting too deep): the checked path names it
    return packed


def _plain_value(value: Value) -> bool:
    """Whether ``value`` holds no float and no nesting deeper than :data:`MAX_DEPTH`."""
    t = type(value)
    if t is dict or t is list or t is tuple:
        return _plain(value, 0)
    return t is not float


_REFUSED = object()  # not a decoded value: the checked path decides
_ormsgpack_unpackb = ormsgpack.unpackb
_CONTAINERS = (dict, list)


def _fast_unpack(data: bytes) -> Value:
    """The value of canonical ``data``, decoded and re-packed in Rust, or :data:`_REFUSED`.

    Accepts exactly what the checked path accepts: ormsgpack refuses ext types, non-str
    keys and invalid UTF-8, :func:`_plain` finds floats and over-deep nesting, and the
    re-packed bytes (keys sorted, shortest forms) must be ``data`` itself, which rules
    out unsorted or duplicate keys, long forms and trailing bytes. Maps come out in
    their (sorted) order, as from the checked path.
    """
    try:
        value: Value = _ormsgpack_unpackb(data)
        if type(value) in _CONTAINERS:
            if not _plain(value, 0):
                return _REFUSED
        elif type(value) is float:
            return _REFUSED
        packed = _ormsgpack_packb(value, option=_FAST_OPTIONS)
    except (ValueError, TypeError, OverflowError, RecursionError):
        return _REFUSED
    return value if packed == data else _REFUSED


def _plain(container: Value, depth: int) -> bool:
    """No float and no container at depth :data:`MAX_DEPTH` or more inside ``container``
    (found at ``depth``); what else a decoded value holds the packer checks."""
    if depth >= MAX_DEPTH:
        return False
    for item in container.values() if type(container) is dict else container:
        t = type(item)
        if t is dict or t is list or t is tuple:
            if not _plain(item, depth + 1):
                return False
        elif t is float:
            return False
    return True


def _checked_pack(value: Value) -> bytes:
    """The reference encoder: canonicalise in Python (rules checked), then msgpack."""
    try:
        packed: bytes = msgpack.packb(_canonical(value, 0), use_bin_type=True)
    except (OverflowError, ValueError) as exc:
        raise DecodeError(f"cannot encode: {exc}") from None
    return packed


def packb_canonical(value: Value) -> bytes:
    """The bytes of a value already in canonical form (straight out of :func:`decode`, or
    built with its map keys in order from such values): packed as it is, not checked."""
    try:
        return _ormsgpack_packb(value, option=_IN_ORDER_OPTIONS)
    except (TypeError, ValueError, OverflowError):
        pass  # not plain types: msgpack-python packs what it can
    try:
        packed: bytes = msgpack.packb(value, use_bin_type=True)
    except (OverflowError, ValueError) as exc:
        raise DecodeError(f"cannot encode: {exc}") from None
    return packed


def canonical(value: Value) -> Value:
    """``value`` in canonical form (maps sorted, rules checked), for :func:`packb_canonical`."""
    return _canonical(value, 0)


def array_header(length: int) -> bytes:
    """The shortest msgpack header of an array of ``length`` items."""
    if length < 16:
        return bytes((0x90 | length,))
    if length < 1 << 16:
        return b"\xdc" + length.to_bytes(2, "big")
    return b"\xdd" + length.to_bytes(4, "big")


def check_size(packed: bytes) -> bytes:
    """``packed``, unless it is over :data:`MAX_SIZE` (as :func:`encode` refuses)."""
    if len(packed) > MAX_SIZE:
        raise DecodeError(f"encoded value is {len(packed)} bytes, over the cap of {MAX_SIZE}")
    return packed


def decode(data: bytes, *, max_size: int = MAX_SIZE) -> Value:
    """Decode canonical bytes; raise :class:`DecodeError` on anything non-canonical."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise DecodeError(f"expected bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) > max_size:
        raise DecodeError(f"document is {len(data)} bytes, over the cap of {max_size}")
    if not data:
        raise DecodeError("empty document")
    value = _fast_unpack(data)
    if value is not _REFUSED:
        return value
    # Checked path: plain decode, one canonicalising walk, re-encode, compare bytes.
    try:
        value = _unpack_capped(data, max_size, strict_map_key=True)
        result = _canonical(value, 0)
        if msgpack.packb(result, use_bin_type=True) == data:
            return result
    except (
        DecodeError,
        ValueError,
        TypeError,
        RecursionError,
        msgpack.StackError,
        msgpack.FormatError,
        UnicodeDecodeError,
    ):
        pass
    _diagnose(data, max_size)
    raise DecodeError("not canonical")  # _diagnose always raises; kept for the type checker


def decode_trusted(data: bytes) -> Value:
    """Decode bytes that are canonical by construction, without re-checking them.

    Only for values this node's own execution wrote with :func:`encode` and reads back
    from its own authenticated state (contract records, nonces, members): every value
    under a state root was produced by ``encode`` in some block's execution or in the
    genesis state, on every honest node alike, and the state tree is content-addressed
    (audits check each node against its hash). On canonical bytes the result is exactly
    :func:`decode`'s (maps come out in their stored, sorted key order), at a third of
    the cost: the strict re-encode and compare protect against non-canonical input from
    the network, which never reaches the state without going through ``encode``. Never
    use it on bytes from a peer, a client or a file.
    """
    try:
        return _unpackb(data, raw=False, strict_map_key=True, ext_hook=_reject_ext)
    except (ValueError, TypeError, msgpack.StackError, msgpack.FormatError, UnicodeDecodeError):
        return decode(data)  # not what encode() writes: let the strict path name the problem


# msgpack-python, not ormsgpack (twice as fast here): ormsgpack ignores trailing bytes.
_unpackb = msgpack.unpackb


def _unpack_capped(data: bytes, max_size: int, **options: Any) -> Any:
    """msgpack-python's decoding of ``data``: str keys as UTF-8, ext types refused, no
    str, bin, array or map longer than ``max_size``."""
    return msgpack.unpackb(
        data,
        raw=False,
        ext_hook=_reject_ext,
        max_str_len=max_size,
        max_bin_len=max_size,
        max_array_len=max_size,
        max_map_len=max_size,
        **options,
    )


def _diagnose(data: bytes, max_size: int) -> None:
    """Slow path for rejected input: find and name what is wrong."""
    try:
        value = _unpack_capped(data, max_size, strict_map_key=False, object_pairs_hook=_PairList)
    except msgpack.ExtraData:
        raise DecodeError("trailing bytes after the document") from None
    except UnicodeDecodeError:
        raise DecodeError("a str is not valid UTF-8") from None
    except DecodeError:
        raise
    except msgpack.StackError:
        raise DecodeError(f"nesting deeper than {MAX_DEPTH}") from None
    except (ValueError, msgpack.FormatError, TypeError, RecursionError) as exc:
        raise DecodeError(f"not valid msgpack: {exc}") from None
    result = _check(value, 0)
    if msgpack.packb(result, use_bin_type=True) != data:
        raise DecodeError(
            "not canonical: an integer, str, bytes, list or map length is not in its shortest form"
        )
    raise DecodeError("not canonical")


def digest(value: Value) -> bytes:
    """SHA-256 of the canonical encoding."""
    return sha256_digest(encode(value))


class _PairList:
    """A decoded map kept as its (key, value) pairs so order and duplicates can be checked.

    A wrapper, not a ``list`` subclass: mypyc compiles this module (docs/performance.md,
    "Compiled modules"), and a compiled class cannot inherit from a builtin type."""

    __slots__ = ("pairs",)

    def __init__(self, pairs: list[tuple[Any, Any]]) -> None:
        self.pairs = pairs


def _reject_ext(code: int, data: bytes) -> Any:
    raise DecodeError(f"ext type {code} is not allowed")


def _check(value: Any, depth: int) -> Value:
    """Validate a freshly decoded value and turn its maps into dicts."""
    if depth > MAX_DEPTH:
        raise DecodeError(f"nesting deeper than {MAX_DEPTH}")
    if value is None or isinstance(value, bool | str | bytes):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        raise DecodeError("floats are not allowed")
    if isinstance(value, _PairList):
        out: dict[str, Value] = {}
        previous: bytes | None = None
        for key, item in value.pairs:
            if not isinstance(key, str):
                raise DecodeError(f"map key {key!r} is not a str")
            raw = key.encode()
            if previous is not None:
                if raw == previous:
                    raise DecodeError(f"duplicate map key {key!r}")
                if raw < previous:
                    raise DecodeError(f"map keys not sorted: {key!r} after {previous.decode()!r}")
            previous = raw
            out[key] = _check(item, depth + 1)
        return out
    if isinstance(value, list):
        return [_check(item, depth + 1) for item in value]
    raise DecodeError(f"type {type(value).__name__} is not allowed")


_SCALARS = frozenset({str, bytes, int, bool, type(None)})


def _canonical(value: Any, depth: int) -> Any:
    """Normalise a Python value into its canonical msgpack form, checking the rules.

    Hot path of every hash and signature, so exact-type dispatch first. Python's
    str ordering is code point order, which is exactly UTF-8 byte order, so keys
    sort as str. Out-of-range integers are left to msgpack, which refuses them.
    """
    t = type(value)
    if t in _SCALARS:
        return value
    if depth >= MAX_DEPTH:
        raise DecodeError(f"nesting deeper than {MAX_DEPTH}")
    if t is dict:
        keys = list(value)
        for key in keys:
            if type(key) is not str:
                raise DecodeError(f"map key {key!r} is not a str")
        keys.sort()
        out = {}
        for key in keys:
            item = value[key]
            out[key] = item if type(item) in _SCALARS else _canonical(item, depth + 1)
        return out
    if t is list or t is tuple:
        return [item if type(item) in _SCALARS else _canonical(item, depth + 1) for item in value]
    return _canonical_slow(value, depth)


def _canonical_slow(value: Any, depth: int) -> Any:
    """Subclasses and other mappings/sequences; floats and unknown types are refused."""
    if isinstance(value, bool | str | bytes):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    if isinstance(value, float):
        raise DecodeError("floats are not allowed")
    if isinstance(value, Mapping):
        return _canonical(dict(value), depth)
    if isinstance(value, Sequence):
        return _canonical(list(value), depth)
    raise DecodeError(f"type {type(value).__name__} cannot be encoded")


def to_json_value(value: Value) -> Any:
    """The JSON form of a canonical value: bytes become lowercase hex, tuples lists.

    Raises :class:`TypeError` for anything that is not canonical (floats, non-str
    keys, other types): a bug of the caller's (the API answers it as a 500).
    """
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"map key {key!r} is not a str")
            out[key] = to_json_value(item)
        return out
    if isinstance(value, list | tuple):
        return [to_json_value(item) for item in value]
    raise TypeError(f"{type(value).__name__} is not a canonical value")
