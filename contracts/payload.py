"""Strict, typed reading of transaction payloads.

Each transaction kind parses its payload map into a frozen dataclass with a
:class:`Fields` reader: every field is typed and range-checked, an absent
required field or any unknown field is refused with ``bad_payload``. Parsing is
stateless, so the mempool runs it once at admission.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from re import Pattern

from contracts.codes import RECORD_ID_PATTERN
from contracts.errors import bad_payload
from ledger.encoding import Value
from ledger.genesis import ORG_ID_PATTERN

MAX_TEXT = 500
MAX_INT = 2**63 - 1


def _is_int(value: Value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _has_control(text: str) -> bool:
    return _CONTROL.search(text) is not None


class Fields:
    """Reads the fields of one payload map; :meth:`done` refuses any left unread."""

    def __init__(self, payload: Value, what: str) -> None:
        if not isinstance(payload, Mapping):
            raise bad_payload(f"{what}: expected a map")
        self._payload = payload
        self._what = what
        self._seen: set[str] = set()

    def _get(self, name: str) -> Value:
        self._seen.add(name)
        if name not in self._payload:
            raise bad_payload(f"{self._what}: missing field {name!r}")
        return self._payload[name]

    def has(self, name: str) -> bool:
        """Whether an optional field is present (a nil value counts as absent)."""
        self._seen.add(name)
        return self._payload.get(name) is not None

    def text(
        self,
        name: str,
        *,
        max_len: int = MAX_TEXT,
        min_len: int = 1,
        pattern: Pattern[str] | None = None,
    ) -> str:
        value = self._get(name)
        if not isinstance(value, str):
            raise bad_payload(f"{self._what}.{name}: expected a string")
        if not min_len <= len(value) <= max_len:
            raise bad_payload(f"{self._what}.{name}: length must be {min_len}..{max_len}")
        if _has_control(value):
            raise bad_payload(f"{self._what}.{name}: control characters are not allowed")
        if pattern is not None and not pattern.match(value):
            raise bad_payload(f"{self._what}.{name}: {value!r} does not match {pattern.pattern}")
        return value

    def opt_text(self, name: str, *, max_len: int = MAX_TEXT, default: str = "") -> str:
        return self.text(name, max_len=max_len, min_len=0) if self.has(name) else default

    def record_id(self, name: str) -> str:
        return self.text(name, max_len=64, pattern=RECORD_ID_PATTERN)

    def org_id(self, name: str) -> str:
        return self.text(name, max_len=64, pattern=ORG_ID_PATTERN)

    def choice(self, name: str, options: Collection[str]) -> str:
        value = self._get(name)
        if not isinstance(value, str) or value not in options:
            raise bad_payload(f"{self._what}.{name}: must be one of {sorted(options)}")
        return value

    def integer(self, name: str, *, lo: int = 0, hi: int = MAX_INT) -> int:
        value = self._get(name)
        if not _is_int(value):
            raise bad_payload(f"{self._what}.{name}: expected an integer")
        if not lo <= value <= hi:
            raise bad_payload(f"{self._what}.{name}: {value} is outside [{lo}, {hi}]")
        return int(value)

    def opt_integer(self, name: str, *, lo: int = 0, hi: int = MAX_INT) -> int | None:
        return self.integer(name, lo=lo, hi=hi) if self.has(name) else None

    def raw(self, name: str, *, size: int) -> bytes:
        value = self._get(name)
        if not isinstance(value, bytes) or len(value) != size:
            raise bad_payload(f"{self._what}.{name}: expected {size} bytes")
        return value

    def items(self, name: str, *, min_len: int = 0, max_len: int = 100) -> list[Value]:
        value = self._get(name)
        if not isinstance(value, list):
            raise bad_payload(f"{self._what}.{name}: expected a list")
        if not min_len <= len(value) <= max_len:
            raise bad_payload(f"{self._what}.{name}: must hold {min_len}..{max_len} items")
        return value

    def strings(
        self, name: str, *, min_len: int = 0, max_len: int = 100, pattern: Pattern[str]
    ) -> tuple[str, ...]:
        """A list of distinct strings matching ``pattern``."""
        values = self.items(name, min_len=min_len, max_len=max_len)
        for i, value in enumerate(values):
            if not isinstance(value, str) or not pattern.match(value):
                raise bad_payload(f"{self._what}.{name}[{i}]: {value!r} is not valid")
        if len(set(values)) != len(values):
            raise bad_payload(f"{self._what}.{name}: duplicate entries")
        return tuple(values)

    def sub(self, value: Value, index: int, name: str) -> Fields:
        """A reader for the map at ``name[index]``."""
        return Fields(value, f"{self._what}.{name}[{index}]")

    def done(self) -> None:
        unknown = sorted(set(self._payload) - self._seen)
        if unknown:
            raise bad_payload(f"{self._what}: unknown fields {unknown}")
