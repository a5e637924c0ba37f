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
    if len(raw) > MAX_RECORD_BYTES:
        return cls.load(decode_trusted(raw))
    key = (cls, raw)
    record: R | None = _kept.get(key)
    if record is None:
        record = cls.load(decode_trusted(raw))
        _keep(key, record, COST_FACTOR * len(raw) + _OVERHEAD)
    return record


def remember(record: Any, raw: bytes) -> None:
    """``record`` was just stored as ``raw``: the next read of those bytes is answered
    with it."""
    if len(raw) <= MAX_RECORD_BYTES:
        _keep((type(record), raw), record, COST_FACTOR * len(raw) + _OVERHEAD)


def _keep(key: tuple[type[Any], bytes], record: Any, cost: int) -> None:
    global _cost
    with _lock:
        if key in _kept or cost > MAX_BYTES:
            return
        _kept[key] = record
        _cost += cost
        while _cost > MAX_BYTES:
            (_cls, raw), _record = _kept.popitem(last=False)
            _cost -= COST_FACTOR * len(raw) + _OVERHEAD


def kept_bytes() -> int:
    """What the kept records count for now (for tests and metrics)."""
    return _cost
