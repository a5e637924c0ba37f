"""Typed records read back from the node's own state, kept by their bytes.

A stored record is a pure function of its bytes, and records are immutable, so the
same bytes may always be answered with the same record: an account, a position or an
organisation that many transactions of a block touch, or a shipment several of its
events do, is built once instead of decoded and built again for each.

What is kept is bounded in bytes (:data:`MAX_BYTES`, counting each record as
:data:`COST_FACTOR` times its encoded size) and held in two generations of half that
each: records go into the young one; when it is full it becomes the old one (the
previous old one is dropped whole) and a record read from the old one moves back into
the young one. That costs a dict insert and an addition per record kept — no ordering
and no lock on the execution path. Under the GIL each dict operation is atomic; two
threads that keep records at once can at worst miscount a few records of a generation,
which is forgotten at its turn-over. Records over :data:`MAX_RECORD_BYTES` are built
each time and not kept.
"""

from __future__ import annotations

from typing import Any, TypeVar

from ledger.encoding import decode_trusted
from ledger.schema import Described

R = TypeVar("R", bound=Described)

MAX_BYTES = 16 * 1024 * 1024
MAX_RECORD_BYTES = 2048  # larger records (a busy market book) are built each time: keeping
# them would cost a hash of their bytes on every read and store, more than it saves
COST_FACTOR = 8  # a built record with its strings and tuples, against its msgpack bytes
_OVERHEAD = 256

_young: dict[bytes, Any] = {}
_old: dict[bytes, Any] = {}
_young_cost = 0
_old_cost = 0


def typed_record(cls: type[R], raw: bytes) -> R:
    """``raw`` (a record this code stored) as a ``cls``, built once per distinct bytes."""
    record = _young.get(raw)
    if type(record) is cls:
        return record
    if len(raw) > MAX_RECORD_BYTES:
        return cls.load(decode_trusted(raw))
    record = _old.get(raw)
    if type(record) is not cls:
        record = cls.load(decode_trusted(raw))
    _keep(raw, record)
    return record


def remember(record: Any, raw: bytes) -> None:
    """``record`` was just stored as ``raw``: the next read of those bytes is answered
    with it."""
    if len(raw) <= MAX_RECORD_BYTES:
        _keep(raw, record)


def _keep(raw: bytes, record: Any) -> None:
    """Keep ``record`` for ``raw`` in the young generation, turning it over when full."""
    global _young, _old, _young_cost, _old_cost
    cost = COST_FACTOR * len(raw) + _OVERHEAD
    if _young_cost + cost > MAX_BYTES // 2:
        _old, _old_cost = _young, _young_cost
        _young, _young_cost = {}, 0
        if cost > MAX_BYTES // 2:
            return
    if _young.get(raw) is None:
        _young_cost += cost
    _young[raw] = record


def is_kept(raw: bytes) -> bool:
    """Whether a record is kept for ``raw`` (for tests)."""
    return raw in _young or raw in _old


def kept_bytes() -> int:
    """What the kept records count for now (for tests and metrics)."""
    return _young_cost + _old_cost
