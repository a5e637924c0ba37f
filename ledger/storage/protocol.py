"""The key-value protocol every store implements.

Kept deliberately small (get, ordered prefix iteration, atomic batch) so that a
memory store, LevelDB, and an execution overlay can all stand behind it, in the
spirit of py-evm's database API.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from operator import itemgetter
from typing import Protocol, runtime_checkable

_TABLE = itemgetter(slice(0, 2))  # a key's table: its first two bytes


class WriteBatch:
    """An ordered set of puts and deletes applied atomically by :meth:`KVStore.write`.

    Later operations on the same key win, exactly as LevelDB applies them.
    """

    __slots__ = ("_ops",)

    def __init__(self) -> None:
        self._ops: dict[bytes, bytes | None] = {}

    # A mutable buffer is copied (a later change to it must not change the batch); bytes
    # are kept as they are: bytes(b) looks up and calls b.__bytes__, twice the cost of
    # the rest of a put, some twenty times a transaction.
    def put(self, key: bytes, value: bytes) -> None:
        if type(key) is not bytes:
            key = bytes(key)
        if type(value) is not bytes:
            value = bytes(value)
        self._ops[key] = value

    def delete(self, key: bytes) -> None:
        self._ops[key if type(key) is bytes else bytes(key)] = None

    def update(self, other: WriteBatch) -> None:
        """Append every operation of ``other`` after ours."""
        self._ops.update(other._ops)

    def items(self) -> Iterator[tuple[bytes, bytes | None]]:
        """Operations in the order each key was first touched; ``None`` means delete."""
        return iter(self._ops.items())

    def get(self, key: bytes) -> tuple[bool, bytes | None]:
        """(present, value) — whether this batch touches ``key`` and what it leaves there."""
        if key in self._ops:
            return True, self._ops[key]
        return False, None

    def operations(self) -> Mapping[bytes, bytes | None]:
        """Every operation by key (``None``: delete), read-only: for a reader that looks
        up many keys in a batch it holds (node/write_behind.py) without a call per key."""
        return self._ops

    def tables(self) -> set[bytes]:
        """The tables the batch writes: the first two bytes of its keys."""
        return set(map(_TABLE, self._ops))

    def __len__(self) -> int:
        return len(self._ops)


class KVReader(Protocol):
    """Read side of a store."""

    def get(self, key: bytes) -> bytes | None:
        """The value at ``key`` or ``None``."""
        ...

    def iterate(
        self, prefix: bytes, *, start: bytes | None = None, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]:
        """(key, value) pairs whose key starts with ``prefix``, in byte order.

        ``start`` (a full key, >= prefix) begins the forward scan there
        (inclusive); with ``reverse`` the scan runs from the end of the prefix
        range downwards, and ``start`` is the inclusive upper bound.
        """
        ...


class KVStore(KVReader, Protocol):
    """A durable store: reads plus atomic, optionally synced, batch writes."""

    def write(self, batch: WriteBatch, *, sync: bool = True) -> None:
        """Apply every operation of ``batch`` atomically; ``sync`` forces it to disk."""
        ...

    def close(self) -> None:
        """Release the store (and its directory lock)."""
        ...


@runtime_checkable
class LogWriter(Protocol):
    """What appending to the Merkle log needs: reads that see our own writes, and puts
    (an OverlayStore). Here, not in ``ledger.log``: that module is compiled with mypyc
    (docs/performance.md, "Compiled modules"), which cannot make a protocol checkable
    at run time."""

    def get(self, key: bytes) -> bytes | None: ...

    def put(self, key: bytes, value: bytes) -> None: ...


@runtime_checkable
class Compactable(Protocol):
    """A store whose disk space for a key range can be measured and given back: LevelDB
    keeps a deleted row's bytes (and a marker that every read of the range steps over)
    until a compaction of that range reaches the level holding it, which for a table no
    longer written may be never (ledger/state_migrate.py)."""

    def approximate_bytes(self, prefix: bytes) -> int:
        """About how many bytes of table files the rows under ``prefix`` take."""
        ...

    def compact(self, prefix: bytes) -> None:
        """Rewrite the range of ``prefix`` now, dropping deleted rows (blocks until done)."""
        ...


def prefix_upper_bound(prefix: bytes) -> bytes | None:
    """Smallest key greater than every key with ``prefix`` (None: no bound)."""
    p = bytearray(prefix)
    while p:
        if p[-1] != 0xFF:
            p[-1] += 1
            return bytes(p)
        p.pop()
    return None
