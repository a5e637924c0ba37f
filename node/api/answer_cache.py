"""Rendered answers kept for readers who all get the same bytes, bounded in bytes.

A committed block never changes, and neither does what the public may see of
it, so the redacted rendering of a block for unsigned readers is made once per
(height, format) instead of once per request: an unsigned client asking for a
multi-megabyte block again and again costs the node a dictionary look-up.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable

DEFAULT_BYTES = 16 * 1024 * 1024


class AnswerCache:
    """A least-recently-used map of rendered answers, at most ``max_bytes`` of them."""

    def __init__(self, max_bytes: int = DEFAULT_BYTES) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self._items: OrderedDict[Hashable, bytes] = OrderedDict()

    def get(self, key: Hashable) -> bytes | None:
        body = self._items.get(key)
        if body is not None:
            self._items.move_to_end(key)
        return body

    def put(self, key: Hashable, body: bytes) -> None:
        if len(body) > self.max_bytes // 4:
            return  # one answer may not push out most of the others
        old = self._items.pop(key, None)
        if old is not None:
            self.size -= len(old)
        self._items[key] = body
        self.size += len(body)
        while self.size > self.max_bytes:
            _, evicted = self._items.popitem(last=False)
            self.size -= len(evicted)

    def __len__(self) -> int:
        return len(self._items)
