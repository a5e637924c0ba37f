"""Changes to a key-value store as tests write them: each key with its new value, or ``None``
to delete it, applied to a dict model or to a writer (a batch, an overlay)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

Change = tuple[bytes, bytes | None]


class Writer(Protocol):
    def put(self, key: bytes, value: bytes) -> None: ...

    def delete(self, key: bytes) -> None: ...


def apply_changes(model: dict[bytes, bytes], changes: Iterable[Change]) -> None:
    """Put each value into ``model``; drop each key whose value is ``None``."""
    for key, value in changes:
        if value is None:
            model.pop(key, None)
        else:
            model[key] = value


def write_changes(writer: Writer, changes: Iterable[Change]) -> None:
    """Put each value through ``writer``; delete each key whose value is ``None``."""
    for key, value in changes:
        if value is None:
            writer.delete(key)
        else:
            writer.put(key, value)
