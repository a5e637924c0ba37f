"""Typed records read back from the node's own state, kept by their bytes.

A stored record is a pure function of its bytes, and records are immutable, so the
same bytes may always be answered with the same record: an account, a position or an
organisation that many transactions of a block touch, or a shipment several of its
events do, is built once instead of decoded and built again for each. What is kept is
bounded in bytes (:data:`MAX_BYTES`, counting each record as :data:`COST_FACTOR` times
its encoded size); the oldest go first. Records over :data:`MAX_RECORD_BYTES` are built
each time and not kept.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, TypeVar

from ledger.encoding import decode_trusted
from ledger.schema import Described

R = TypeVar("R", bound=Described)

MAX_BYTES = 16 * 1024 * 1024
MAX_RECORD_BYTES = 2048  # larger records (a busy market book) are built each time: keeping
# them would cost a hash of their bytes on every read and store, more than it saves
COST_FACTOR = 8  # a built record with its strings and tuples, against its msgpack bytes
_OVERHEAD = 256

_kept: OrderedDict[tuple[type[Any], bytes], Any] = OrderedDict()
_cost = 0
_lock = threading.Lock()


def typed_record(cls: type[R], raw: bytes) -> R:
    """``raw`` (a record this code stored) as a ``cls``, built once per distinct bytes."""
    record: R | None = _kept.get((cls, raw)) if len(raw) <= MAX_RECORD_BYTES else None
    if record is None:
        record = cls.load(decode_trusted(raw))
        _keep(cls, raw, record)
    return record


def remember(record: Any, raw: bytes) -> None:
    """``record`` was just stored as ``raw``: the next read of those bytes is answered
    with it."""
    _keep(type(record), raw, record)


def _cost_of(raw: bytes) -> int:
    return COST_FACTOR * len(raw) + _OVERHEAD


def _keep(cls: type[Any], raw: bytes, record: Any) -> None:
    """Keep ``record`` for ``raw`` unless it is too large, making room by age."""
    global _cost
    cost = _cost_of(raw)
    if len(raw) > MAX_RECORD_BYTES or cost > MAX_BYTES:
        return
    with _lock:
        if (cls, raw) in _kept:
            return
        _kept[(cls, raw)] = record
        _cost += cost
        while _cost > MAX_BYTES:
            (_cls, old), _record = _kept.popitem(last=False)
            _cost -= _cost_of(old)


def kept_bytes() -> int:
    """What the kept records count for now (for tests and metrics)."""
    return _cost
