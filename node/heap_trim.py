"""Freed C heap handed back to the system every few seconds (glibc's ``malloc_trim``).

Most of a node's C heap is LevelDB's: its memtable (``[storage] write_buffer_mb``, 64 MiB
by default) is built from small blocks, and when a full one has been written to a table
file all of them are freed at once. glibc keeps what is freed in the middle of its heap
for later allocations and returns to the system only a free run at the top, so after
the first memtables the node's resident size stays at the high-water mark of two of them
(one full, one filling while the other is written out) whether LevelDB holds them or
not; the same goes for large objects Python allocates from the C heap (page rows,
blocks, frames). ``malloc_trim(0)`` gives back every whole free page of every arena
(``madvise(MADV_DONTNEED)``): the memory stays the process's address space, and a later
allocation there costs one page fault. Measured in docs/performance.md ("Freed heap
given back"); what the trims cost is counted in ``/metrics``
(``cityledger_heap_trim_seconds_total``) and each is logged at DEBUG.

A trim is also due as soon as LevelDB's own memory estimate has dropped by
``FREED_BYTES_DUE`` since the last check — a written-out memtable was just freed — so
that its pages go back within a second rather than up to ``heap_trim_s`` later: at 200
tx/s a 64 MiB memtable is written out about once a minute, and with a trim only every
10 s its freed pages stayed resident for a sixth of the time (docs/performance.md,
"Freed heap given back at once").

Only glibc has ``malloc_trim``; elsewhere (musl, macOS) nothing is done.
"""

from __future__ import annotations

import ctypes
import logging
import time
from collections.abc import Callable

from node.malloc_stats import libc_function

log = logging.getLogger("cityledger.node")
FREED_BYTES_DUE = 8 * 1024 * 1024  # LevelDB's estimate this much lower: trim now


def _load() -> Callable[[int], int] | None:
    fn = libc_function("malloc_trim")  # glibc's own
    if fn is None:
        return None
    fn.restype = ctypes.c_int
    fn.argtypes = [ctypes.c_size_t]
    trim: Callable[[int], int] = fn
    return trim


_MALLOC_TRIM = _load()


class HeapTrim:
    """Calls ``malloc_trim(0)`` once every ``interval_s`` seconds (0: never), and sooner
    when the store's buffers have just shrunk by ``FREED_BYTES_DUE``.

    :meth:`check` is called once a second from the node's background loop with LevelDB's
    estimate (a property read under LevelDB's lock); it costs a clock read and a
    comparison unless a trim is due.
    """

    def __init__(
        self,
        interval_s: float,
        trim: Callable[[int], int] | None = _MALLOC_TRIM,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.interval_s = interval_s
        self._trim = trim
        self._clock = clock
        self._last = clock()  # the first trim one interval after start
        self._buffers: int | None = None  # the store's buffers at the last check

    @property
    def enabled(self) -> bool:
        return self.interval_s > 0 and self._trim is not None

    def check(self, buffers: int | None = None) -> float | None:
        """Trim if one is due: the seconds it took, or None when none was. ``buffers``:
        the store's memory as LevelDB estimates it now (None: a store without one)."""
        trim = self._trim
        if trim is None or self.interval_s <= 0:
            return None
        before, self._buffers = self._buffers, buffers
        freed = before is not None and buffers is not None and before - buffers >= FREED_BYTES_DUE
        now = self._clock()
        if now - self._last < self.interval_s and not freed:
            return None
        released = trim(0)
        took = self._clock() - now
        self._last = now + took
        log.debug(
            "heap trimmed in %.1f ms (%s)", took * 1000, "pages given back" if released else "none"
        )
        return took
