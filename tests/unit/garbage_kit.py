"""What only Python's cyclic collector would free: errors kept as answers must not hold
their tracebacks, whose frames hold the lists that hold the errors (node.admission,
node.mempool, node.consensus.core)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def cyclic_garbage() -> Iterator[list[object]]:
    """The objects made unreachable inside the block that reference counting did not
    free, collected when it ends (the collector is off meanwhile)."""
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)  # what a collection finds unreachable stays visible
    found: list[object] = []
    try:
        yield found
        gc.collect()
        found.extend(gc.garbage)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
