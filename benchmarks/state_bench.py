"""Benchmark of the authenticated state (:mod:`ledger.state`) on an in-memory store.

Builds an n-key state through :meth:`StateTree.apply` in batches, then measures block
updates of 5,000 existing keys, proof generation, proof verification and reads, the way
the node uses the tree: a long-lived :class:`NodeCache`, and one
:class:`OverlayStore` per block whose batch is then committed.

Rates count the state tree's own work (``apply``, ``prove``, ...); committing a batch
to the store is the store's work and is reported separately (``*_commit_s``). The store
is a :class:`MemoryStore` whose ``write`` skips the per-key ``bisect.insort`` into its
sorted key list (quadratic: a 50,000-entry batch into a store of 3 million keys takes
about a minute) and re-sorts lazily when iterated; its ``get`` is :class:`MemoryStore`'s
own. Rates are per CPU second of this process; ``machine_sha256_per_s`` (measured first
and last) is a yardstick of the machine. Every update block is timed:
``state_update_per_s`` is over all of them, ``state_update_best_block_per_s`` the best.

Run: ``python -m benchmarks.state_bench [n]``.
"""

from __future__ import annotations

import itertools
import random
import sys
import time
from collections.abc import Iterator, Mapping
from hashlib import sha256

from ledger.state import EMPTY_ROOT, NodeCache, StateProof, StateTree, verify_state_proof
from ledger.storage import MemoryStore, OverlayStore, WriteBatch

_clock = time.process_time
"""Rates are per CPU second of this (single-threaded) process: on an idle machine that is
wall time, and on a shared one other processes' load does not count against them."""

BUILD_BATCH = 50_000
UPDATE_BATCH = 5_000
UPDATE_BLOCKS = 20
PROOFS = 20_000
READS = 100_000
VALUE_SIZE = 64


class BulkMemoryStore(MemoryStore):
    """A :class:`MemoryStore` whose write is O(batch): keys are sorted when iterated."""

    def __init__(self) -> None:
        super().__init__()
        self._unsorted = False

    def write(self, batch: WriteBatch, *, sync: bool = True) -> None:
        data = self._data
        for key, value in batch.items():
            if value is None:
                data.pop(key, None)
            else:
                data[key] = value
        self._unsorted = True
        self.writes += 1

    def iterate(
        self, prefix: bytes, *, start: bytes | None = None, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]:
        if self._unsorted:
            self._keys = sorted(self._data)
            self._unsorted = False
        return super().iterate(prefix, start=start, reverse=reverse)


_HEIGHTS = itertools.count(1)  # each block's height: rows are filed by it


def state_key(i: int) -> bytes:
    return b"acct/%010d" % i


def run(n: int = 1_000_000, *, seed: int = 7) -> dict[str, float]:
    """Build an ``n``-key state and measure it; returns figures by name."""
    wall, cpu = time.perf_counter(), time.process_time()
    rng = random.Random(seed)
    store = BulkMemoryStore()
    cache = NodeCache()
    figures: dict[str, float] = {"n": float(n), "machine_sha256_per_s": _sha256_rate()}
    root = _build(store, cache, rng, n, figures)
    root = _update(store, cache, rng, n, root, figures)
    tree = StateTree(store, root, cache=cache)
    _prove_and_verify(tree, root, rng, n, figures)
    _read(tree, root, rng, n, figures)
    figures["machine_sha256_per_s_after"] = _sha256_rate()
    figures["cpu_s"] = time.process_time() - cpu
    figures["wall_s"] = time.perf_counter() - wall
    return figures


def _build(
    store: MemoryStore, cache: NodeCache, rng: random.Random, n: int, figures: dict[str, float]
) -> bytes:
    """Insert ``n`` keys in blocks of ``BUILD_BATCH``; the root of the built state."""
    root, apply_s, commit_s = EMPTY_ROOT, 0.0, 0.0
    for start in range(0, n, BUILD_BATCH):
        changes = {
            state_key(i): rng.randbytes(VALUE_SIZE)
            for i in range(start, min(n, start + BUILD_BATCH))
        }
        root, a, c = _block(store, cache, root, changes)
        apply_s, commit_s = apply_s + a, commit_s + c
    figures["state_build_keys_per_s"] = n / apply_s
    figures["state_build_s"] = apply_s
    figures["state_build_commit_s"] = commit_s
    figures["store_entries_after_build"] = float(len(store))
    return root


def _update(
    store: MemoryStore,
    cache: NodeCache,
    rng: random.Random,
    n: int,
    root: bytes,
    figures: dict[str, float],
) -> bytes:
    """``UPDATE_BLOCKS`` blocks of existing keys, then one with a cold cache; the new root."""
    apply_s, commit_s, best = 0.0, 0.0, 0.0
    for _ in range(UPDATE_BLOCKS):
        picked = rng.sample(range(n), min(n, UPDATE_BATCH))
        changes = {state_key(i): rng.randbytes(VALUE_SIZE) for i in picked}
        root, a, c = _block(store, cache, root, changes)
        apply_s, commit_s, best = apply_s + a, commit_s + c, max(best, len(picked) / a)
    updates = UPDATE_BLOCKS * min(n, UPDATE_BATCH)
    figures["state_update_per_s"] = updates / apply_s
    figures["state_update_best_block_per_s"] = best
    figures["state_update_with_commit_per_s"] = updates / (apply_s + commit_s)
    # A tree made afresh per block, with its own empty cache, pays for every node read.
    picked = rng.sample(range(n), min(n, UPDATE_BATCH))
    changes = {state_key(i): rng.randbytes(VALUE_SIZE) for i in picked}
    entries_before = len(store)
    root, a, _ = _block(store, NodeCache(), root, changes)
    figures["state_update_cold_cache_per_s"] = len(picked) / a
    figures["state_update_nodes_per_key"] = (
        entries_before - figures["store_entries_after_build"]
    ) / updates
    return root


def _prove_and_verify(
    tree: StateTree, root: bytes, rng: random.Random, n: int, figures: dict[str, float]
) -> None:
    """``PROOFS`` proofs generated, then verified, and their shape."""
    # Nine in ten proofs are of present keys, one in ten of absent ones.
    probe = [state_key(rng.randrange(n + n // 9 + 1)) for _ in range(PROOFS)]
    t = _clock()
    proofs = [tree.prove(key) for key in probe]
    figures["state_prove_per_s"] = PROOFS / (_clock() - t)
    t = _clock()
    for proof in proofs:
        verify_state_proof(root, proof)
    figures["state_verify_per_s"] = PROOFS / (_clock() - t)
    figures.update(_proof_shape(proofs))


def _read(
    tree: StateTree, root: bytes, rng: random.Random, n: int, figures: dict[str, float]
) -> None:
    """``READS`` reads of the latest state, and ``PROOFS`` reads under a given root."""
    reads = [state_key(rng.randrange(n)) for _ in range(READS)]
    t = _clock()
    for key in reads:
        tree.get(key)
    figures["state_get_per_s"] = READS / (_clock() - t)
    t = _clock()
    for key in reads[:PROOFS]:
        tree.get_at(root, key)
    figures["state_get_at_per_s"] = PROOFS / (_clock() - t)


def _block(
    store: MemoryStore, cache: NodeCache, root: bytes, changes: Mapping[bytes, bytes | None]
) -> tuple[bytes, float, float]:
    """Apply one block's changes through an overlay and commit it: (root, apply s, commit s)."""
    overlay = OverlayStore(store)
    tree = StateTree(overlay, root, cache=cache)
    t0 = _clock()
    new_root = tree.apply(changes, overlay.batch, height=next(_HEIGHTS))
    t1 = _clock()
    store.write(overlay.take(), sync=False)
    return new_root, t1 - t0, _clock() - t1


def _sha256_rate() -> float:
    """SHA-256 calls per second on a 65-byte node: the machine's yardstick for the rest."""
    node = bytes(65)
    t = _clock()
    for _ in range(200_000):
        sha256(node).digest()
    return 200_000 / (_clock() - t)


def _proof_shape(proofs: list[StateProof]) -> dict[str, float]:
    count = len(proofs)
    return {
        "state_proof_avg_depth": sum(p.depth for p in proofs) / count,
        "state_proof_avg_siblings": sum(len(p.siblings) for p in proofs) / count,
        "state_proof_absent_share": sum(p.value is None for p in proofs) / count,
    }


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    for name, value in run(n).items():
        print(f"{name:36} {value:14,.1f}")


if __name__ == "__main__":
    main()
