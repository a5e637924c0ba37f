"""Python's cyclic garbage collector, set for a long-running node.

A node executes blocks of thousands of transactions, each building and dropping typed
records, maps and tuples; nearly all of them are freed by reference counting, but with
the interpreter's defaults (a youngest-generation pass every 700 net allocations) the
collector still walks them — and, at each older pass, everything start-up built and
every record the record cache keeps. Measured with ``cityledger bench stages``
(docs/performance.md): with the defaults the collector took 6.4 % of execution CPU.

After start-up, :func:`settle_after_start` moves what exists (modules, genesis,
configuration, caches filled while opening the store) into the permanent generation,
which the collector never walks, and raises the youngest generation's threshold so it
runs once per 50,000 net allocations. Reference counting frees what it always did;
only reference cycles wait a little longer for their collection (the node makes few:
errors kept as answers are stripped of their frames, ledger/errors.py).

50,000 rather than 10,000 since 2026-12-05: a block's execution keeps tens of
thousands of objects alive until its commit (the pages an update read, its records and
receipts), and each young pass walked them again. ``benchmarks.replay`` of a
49,210-transaction chain, 6 pairs alternated: 3.8 % more transactions a second
(median), faster in 6 of 6 pairs; 200,000 changed nothing further
(docs/performance.md, "The collector's young passes").
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

YOUNG_THRESHOLD = 50_000
OLDER_THRESHOLDS = (10, 10)


def settle_after_start() -> None:
    """Freeze what start-up built and space out the collector's passes."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, *OLDER_THRESHOLDS)


@contextlib.contextmanager
def settled() -> Iterator[None]:
    """:func:`settle_after_start` for a while (a benchmark run, an offline audit: work
    like a node's in a process that goes on): the thresholds and the frozen objects are
    given back afterwards."""
    before = gc.get_threshold()
    settle_after_start()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
