"""What taking a state snapshot holds in memory, by the size of the state (issue 21).

Builds an n-key state on an in-memory store (:class:`benchmarks.state_bench.BulkMemoryStore`),
then takes a snapshot of it as a node does — :func:`ledger.state_snapshot.plan_snapshot`,
then every chunk of :func:`ledger.state_snapshot.snapshot_chunks`, each dropped once made
— with :mod:`tracemalloc` on. ``snapshot_peak_mb`` is the most the snapshot's walk held
at once above what was allocated before it (the store itself not counted); it should not
grow with n. Also the walk's CPU seconds and the number of chunks.

Run: ``python -m benchmarks.snapshot_memory [n ...]`` (default 20,000 and 100,000 keys);
one JSON object per n on standard output.
"""

from __future__ import annotations

import json
import random
import sys
import time
import tracemalloc

from benchmarks.state_bench import BulkMemoryStore, state_key
from ledger.state import EMPTY_ROOT, StateTree
from ledger.state_snapshot import plan_snapshot, snapshot_chunks
from ledger.storage import WriteBatch

BUILD_BATCH = 20_000


def state(n: int, seed: int = 7) -> tuple[BulkMemoryStore, bytes]:
    """A store holding an ``n``-key state (values of 40-200 bytes), and its root."""
    rng = random.Random(seed)
    store = BulkMemoryStore()
    root = EMPTY_ROOT
    for height, start in enumerate(range(0, n, BUILD_BATCH), start=1):
        tree = StateTree(store, root)
        batch = WriteBatch()
        changes: dict[bytes, bytes | None] = {
            state_key(i): rng.randbytes(rng.randint(40, 200))
            for i in range(start, min(n, start + BUILD_BATCH))
        }
        root = tree.apply(changes, batch, height=height)
        store.write(batch)
    return store, root


def measure(n: int) -> dict[str, float]:
    store, root = state(n)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    tracemalloc.reset_peak()
    cpu = time.process_time()
    manifest = plan_snapshot(store, root)
    chunks = 0
    chunk_bytes = 0
    for chunk in snapshot_chunks(store, manifest):
        chunks += 1
        chunk_bytes += len(chunk)
    cpu = time.process_time() - cpu
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return {
        "keys": float(n),
        "chunks": float(chunks),
        "snapshot_mb": round(chunk_bytes / 1e6, 1),
        "snapshot_peak_mb": round((peak - before) / 1e6, 2),
        "snapshot_cpu_s_traced": round(cpu, 1),
    }


def main() -> None:
    sizes = [int(a) for a in sys.argv[1:]] or [20_000, 100_000]
    for n in sizes:
        print(json.dumps(measure(n)), flush=True)


if __name__ == "__main__":
    main()
