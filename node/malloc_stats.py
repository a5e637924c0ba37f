"""What the C allocator holds for the process (glibc's ``mallinfo2``), for ``/metrics``.

A node's anonymous memory is Python's own arenas (objects up to 512 bytes), the C
allocator's heap (larger objects, LevelDB's memtables and block cache) and a few
mappings. When it rises while every bounded structure holds steady (node/memory.py),
these tell live memory (``in_use``) from memory freed but kept by the allocator
(``free``: fragmentation or a high-water mark it has not given back) and from large
blocks it maps directly (``mapped``). glibc sums them over all its arenas. Elsewhere
(musl, macOS) there is no ``mallinfo2`` and nothing is reported.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable
from typing import Any


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",  # bytes obtained with sbrk and for the other arenas
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",  # bytes in blocks mapped with mmap
            "usmblks",
            "fsmblks",
            "uordblks",  # bytes in use
            "fordblks",  # bytes free, kept
            "keepcost",
        )
    ]


def libc_function(name: str) -> Any | None:
    """The C library's function ``name`` through ctypes, or None where the C library or
    the function is missing (not glibc, or a glibc too old for it)."""
    path = ctypes.util.find_library("c")
    if path is None:
        return None
    try:
        return getattr(ctypes.CDLL(path), name)
    except (OSError, AttributeError):
        return None


def _load() -> Callable[[], _MallInfo2] | None:
    fn = libc_function("mallinfo2")  # glibc 2.33 and later
    if fn is None:
        return None
    fn.restype = _MallInfo2
    fn.argtypes = []
    info: Callable[[], _MallInfo2] = fn
    return info


_MALLINFO2 = _load()


def malloc_bytes() -> dict[str, int]:
    """``in_use``, ``free`` and ``mapped`` bytes of the C allocator; empty where unknown."""
    if _MALLINFO2 is None:
        return {}
    info = _MALLINFO2()
    return {"in_use": info.uordblks, "free": info.fordblks, "mapped": info.hblkhd}
