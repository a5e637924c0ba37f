"""How fast the stored Merkle log appends, proves and verifies.

``python -m benchmarks.merkle_bench [n]`` prints the figures of :func:`run`.
The log lives in a :class:`~ledger.storage.memory.MemoryStore` and is appended to
the way blocks do it: 5,000 transaction hashes per execution overlay, then one
write. Proofs are then served from storage for a deterministic spread of indexes
and sizes (no randomness), and checked with the RFC 9162 verifiers.

The ledger itself never imports it; the clock can be passed in.
"""

from __future__ import annotations

import hashlib
import sys
import time
from collections.abc import Callable

from ledger.log import MerkleLog
from ledger.merkle import ConsistencyProof, InclusionProof, verify_consistency, verify_inclusion
from ledger.storage import MemoryStore, OverlayStore

BATCH = 5_000
_SPREAD = 0x9E3779B97F4A7C15  # odd multiplier: j * _SPREAD mod n visits indexes all over the log


def run(
    n: int = 1_000_000,
    *,
    proofs: int = 20_000,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, float]:
    """Append ``n`` leaves, then time ``proofs`` inclusion and consistency proofs.

    Returns rates per second (``log_append_per_s``, ``inclusion_prove_per_s``,
    ``inclusion_verify_per_s``, ``consistency_prove_per_s``,
    ``consistency_verify_per_s``) and the sizes involved.
    """
    if n < 2 or proofs < 1:
        raise ValueError("need n >= 2 leaves and at least one proof")
    store = MemoryStore()
    append_s = _append(store, n, clock)
    log = MerkleLog(store)
    indexes = [j * _SPREAD % n for j in range(proofs)]
    inclusion, inc_prove_s, inc_verify_s = _time_inclusion(log, n, indexes, clock)
    consistency, con_prove_s, con_verify_s = _time_consistency(log, n, indexes, clock)
    return {
        "leaves": float(n),
        "proofs": float(proofs),
        "log_append_s": append_s,
        "log_append_per_s": n / append_s,
        "inclusion_prove_per_s": proofs / inc_prove_s,
        "inclusion_verify_per_s": proofs / inc_verify_s,
        "inclusion_path_len_avg": _avg_len(inclusion),
        "consistency_prove_per_s": proofs / con_prove_s,
        "consistency_verify_per_s": proofs / con_verify_s,
        "consistency_path_len_avg": _avg_len(consistency),
        "store_keys": float(len(store)),
    }


def _append(store: MemoryStore, n: int, clock: Callable[[], float]) -> float:
    """Seconds to append ``n`` leaves, ``BATCH`` per overlay and write, as blocks do."""
    tx_hashes = [hashlib.sha256(i.to_bytes(8, "big")).digest() for i in range(n)]
    start = clock()
    for lo in range(0, n, BATCH):
        overlay = OverlayStore(store)
        MerkleLog(overlay).append(tx_hashes[lo : lo + BATCH])
        store.write(overlay.take())
    return clock() - start


def _time_inclusion(
    log: MerkleLog, n: int, indexes: list[int], clock: Callable[[], float]
) -> tuple[list[InclusionProof], float, float]:
    """Inclusion proofs of ``indexes`` in the whole log: (proofs, prove s, verify s)."""
    root = log.root()
    leaves = [log.get_leaf_hash(i) for i in indexes]
    start = clock()
    inclusion = [log.prove_inclusion(i, n) for i in indexes]
    prove_s = clock() - start
    start = clock()
    for proof, leaf in zip(inclusion, leaves, strict=True):
        verify_inclusion(leaf, proof.leaf_index, proof.tree_size, proof.path, root)
    return inclusion, prove_s, clock() - start


def _time_consistency(
    log: MerkleLog, n: int, indexes: list[int], clock: Callable[[], float]
) -> tuple[list[ConsistencyProof], float, float]:
    """Consistency proofs between pairs of past sizes: (proofs, prove s, verify s)."""
    # Pairs of past sizes, old in [1, new), new in [2, n]: what an auditor asks for.
    news = [2 + j * 7919 % (n - 1) for j in range(len(indexes))]
    pairs = [(1 + i % (new - 1), new) for i, new in zip(indexes, news, strict=True)]
    roots = {size: log.root(size) for pair in pairs for size in pair}
    start = clock()
    consistency = [log.prove_consistency(old, new) for old, new in pairs]
    prove_s = clock() - start
    start = clock()
    for c in consistency:
        verify_consistency(c.old_size, c.new_size, roots[c.old_size], roots[c.new_size], c.path)
    return consistency, prove_s, clock() - start


def _avg_len(proofs: list[InclusionProof] | list[ConsistencyProof]) -> float:
    return sum(len(p.path) for p in proofs) / len(proofs)


def main(argv: list[str]) -> None:
    n = int(argv[1]) if len(argv) > 1 else 1_000_000
    for name, value in run(n).items():
        print(f"{name:28s} {value:14,.1f}")


if __name__ == "__main__":
    main(sys.argv)
