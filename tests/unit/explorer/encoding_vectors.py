"""Canonical msgpack vectors: values (in a typed JSON form) and the bytes
:func:`ledger.encoding.encode` makes of them, and bytes :func:`ledger.encoding.decode`
refuses. The browser's codec (node/api/explorer/msgpack.mjs) must agree byte for byte.

Typed form: null, true/false and strings as themselves; ``{"int": "<decimal>"}``;
``{"bytes": "<hex>"}``; a list as a list; ``{"map": [[key, value], ...]}`` in the order
given (not sorted: the encoder sorts).
"""

from __future__ import annotations

from typing import Any

from ledger.encoding import Value, encode

INTS = [0, 1, 127, 128, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**53, 2**53 + 1, 2**64 - 1]
INTS += [-1, -32, -33, -128, -129, -32768, -32769, -(2**31), -(2**31) - 1, -(2**53) - 1, -(2**63)]
STRS = ["", "a" * 31, "a" * 32, "a" * 255, "a" * 256, "é", "😀", "\uffff", "line\nbreak"]
KEYS = ["b", "a", "aa", "é", "😀", "\uffff", "Z", "", "10", "9"]  # UTF-8 order != UTF-16 order
REFUSED = {
    "cb3ff0000000000000": "a float",
    "82a16201a16102": "unsorted map keys",
    "82a16101a16101": "a duplicate map key",
    "cc05": "an integer not in its shortest form",
    "d90161": "a str not in its shortest form",
    "0102": "trailing bytes",
    "d40100": "an ext type",
    "a1ff": "invalid UTF-8",
    "810101": "a map key that is not a str",
    "": "an empty document",
    "92": "a list that ends too early",
}


def typed(value: Value) -> Any:
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return {"int": str(value)}
    if isinstance(value, bytes):
        return {"bytes": value.hex()}
    if isinstance(value, list):
        return [typed(v) for v in value]
    return {"map": [[k, typed(v)] for k, v in value.items()]}


def values() -> list[Value]:
    out: list[Value] = [None, True, False, *INTS, *STRS, b"", b"\x00" * 255, b"\xff" * 256]
    out += [list(range(15)), list(range(16)), [[[]]], {}]
    out.append({k: n for n, k in enumerate(KEYS)})
    out.append({f"k{n:02}": n for n in range(16)})
    out.append({"header": {"height": 7, "hash": bytes(range(32))}, "list": [None, "x", -5]})
    return out


def encoding_vectors() -> dict[str, Any]:
    return {
        "what": "canonical msgpack: typed values and their bytes; bytes that must be refused",
        "values": [{"typed": typed(v), "hex": encode(v).hex()} for v in values()],
        "refused": [{"hex": h, "why": why} for h, why in REFUSED.items()],
    }
