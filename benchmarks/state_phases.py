"""Where a state-tree update's time goes: the walk and rehash, and writing the new pages.

``python -m benchmarks.state_phases [n] [batch]`` builds an ``n``-key state (default
200,000) on an in-memory store, then applies 25 blocks of ``batch`` random existing keys
(default 3,350: the state rows a block of 1,000 transactions of the bench mix writes),
each as :meth:`StateTree.apply` does it, with its two parts timed apart on the same
block: the batch update's walk down the old tree and rehash up (``walk``) and the
encoding of every new page (``pages``), then the whole ``apply`` again on a fresh
overlay and committed, as ``benchmarks.state_bench`` times a block (``apply``, which
also writes the rows into a batch; the commit is not counted). Figures are the median
over the last 20 blocks of CPU microseconds a key, and the new pages a key; one JSON
line. It reaches into the tree's internals (``BatchUpdate``) on purpose, to time them,
and stops (AssertionError) if the root they give is not the one ``apply`` gives.
"""

from __future__ import annotations

import json
import random
import statistics
import sys
import time

from benchmarks import state_bench
from ledger import state, state_update
from ledger.state import NodeCache, StateTree
from ledger.storage import OverlayStore

BLOCKS = 25
WARM_UP = 5
SCRATCH_HEIGHT = bytes(8)  # where the timed update files its rows: thrown away, any height


def run(n: int = 200_000, batch: int = 3_350, *, seed: int = 7) -> dict[str, float]:
    """Build the state, time the update blocks; figures by name. The state is built and
    each block applied and committed as :mod:`benchmarks.state_bench` does it."""
    rng = random.Random(seed)
    store, cache = state_bench.BulkMemoryStore(), NodeCache()
    root = state_bench._build(store, cache, rng, n, {})
    walk: list[float] = []
    pages: list[float] = []
    whole: list[float] = []
    pages_per_key = 0.0
    for block in range(BLOCKS):
        picked = rng.sample(range(n), batch)
        changes = {state_bench.state_key(i): rng.randbytes(state_bench.VALUE_SIZE) for i in picked}
        tree = StateTree(OverlayStore(store), root, cache=cache)
        clock = time.process_time
        entries = sorted(state._prepare(key, value) for key, value in changes.items())
        t0 = clock()
        update = state_update.BatchUpdate(entries, tree, SCRATCH_HEIGHT)
        walked_root = update.run(tree.root)
        t1 = clock()
        written, _ = update.pages()
        t2 = clock()
        new_root, apply_s, _ = state_bench._block(store, cache, root, changes)
        if walked_root != new_root:
            raise AssertionError("the timed parts gave another root than apply")
        root = new_root
        if block >= WARM_UP:
            walk.append((t1 - t0) / batch * 1e6)
            pages.append((t2 - t1) / batch * 1e6)
            whole.append(apply_s / batch * 1e6)
            pages_per_key = len(written) / batch
    return {
        "n": float(n),
        "batch": float(batch),
        "compiled": float(state.__file__.endswith(".so")),
        "walk_us_per_key": round(statistics.median(walk), 2),
        "pages_us_per_key": round(statistics.median(pages), 2),
        "apply_us_per_key": round(statistics.median(whole), 2),
        "pages_per_key": round(pages_per_key, 3),
    }


def main() -> None:
    usage = "usage: python -m benchmarks.state_phases [n (keys)] [batch (keys a block, <= n)]"
    try:
        n = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
        batch = int(sys.argv[2]) if len(sys.argv) > 2 else 3_350
    except ValueError:
        raise SystemExit(usage) from None
    if len(sys.argv) > 3 or not 0 < batch <= n:
        raise SystemExit(usage)
    print(json.dumps(run(n, batch)))


if __name__ == "__main__":
    main()
