"""Disk kept per transaction by an archive node and by a pruning one, after compaction.

``python -m benchmarks.prune_disk --txs 40000 --block-txs 100 --keep 100 [--block-keep N]
[--json F]``

Runs ``bench stages``' two nodes in this process (:mod:`benchmarks.stages`: the demo/bench
``mix`` workload, blocks of ``--block-txs``), the proposer as an archive node and the
validator keeping the state of the last ``--keep`` heights (0: all) and the block bodies
and receipts of the last ``--block-keep`` (0, the default: all); both execute and commit
the same blocks. Then each store is closed, compacted whole by LevelDB (``compact_range``:
deleted rows only free disk once compacted) and measured: bytes of its directory, and
rows and bytes by table. Also the CPU time of the prune steps of each kind, per block and
the most one step took (what pruning adds to a commit).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import plyvel

import node.executor
from benchmarks import stages
from benchmarks.workload import build_workload
from ledger.storage.tables import table_ranges
from node.collector import settled

TABLE_NAMES = {
    b"n": "state_tree",  # store format 3 (format 2: b"p")
    b"u": "state_roots",
    b"v": "state_flat",
    b"q": "prune_records",
    b"b": "blocks",
    b"r": "receipts",
    b"k": "pruned_headers",
}


def _timing(steps: list[float], name: str = "prune_step") -> Callable[..., Any]:
    """``node.executor.<name>`` (a prune step), timed into ``steps``."""
    real: Callable[..., Any] = getattr(node.executor, name)

    def timed(*args: Any, **kw: Any) -> Any:
        began = time.process_time()
        out = real(*args, **kw)
        steps.append(time.process_time() - began)
        return out

    return timed


def measure_store(path: str) -> dict[str, Any]:
    """Compact the LevelDB store at ``path``; its bytes on disk and rows/bytes by table."""
    db = plyvel.DB(path)
    try:
        db.compact_range()
        rows: Counter[str] = Counter()
        size: Counter[str] = Counter()
        for key, value in db.iterator():
            name = TABLE_NAMES.get(key[1:2], "other")
            rows[name] += 1
            size[name] += len(key) + len(value)
    finally:
        db.close()
    disk = sum(os.path.getsize(os.path.join(path, f)) for f in os.listdir(path))
    live = table_ranges(path)  # the table files the MANIFEST lists: not obsolete ones
    tables = sum(os.path.getsize(os.path.join(path, f"{n:06d}.ldb")) for n in live)
    return {"disk_bytes": disk, "table_bytes": tables, "rows": dict(rows), "row_bytes": dict(size)}


def run(txs: int, block_txs: int, keep: int, seed: int = 7, block_keep: int = 0) -> dict[str, Any]:
    home = tempfile.mkdtemp(prefix="cityledger-prune-")
    steps: list[float] = []
    block_steps: list[float] = []
    setattr(node.executor, "prune_step", _timing(steps))  # noqa: B010
    setattr(node.executor, "prune_blocks_step", _timing(block_steps, "prune_blocks_step"))  # noqa: B010
    try:
        pair = stages.open_pair(os.path.join(home, "net"), 4)
        pair.validator.executor.prune_state(keep)
        pair.validator.executor.prune_blocks(block_keep)
        paths = [pair.proposer.store.path, pair.validator.store.path]  # type: ignore[attr-defined]
        work = build_workload(pair.chain_id, int(time.time() * 1000), 1, txs, seed=seed)
        try:
            for phase in work.setup:
                stages._load(pair, phase)
            with settled():
                committed = stages._timed(pair, work, block_txs, stages.Clock())
            height = pair.validator.chain.head().height
        finally:
            pair.close()
        archive, pruned = (measure_store(p) for p in paths)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    total = committed + sum(len(phase) for phase in work.setup)
    saved = archive["disk_bytes"] - pruned["disk_bytes"]
    return {
        "options": {
            "txs": txs,
            "block_txs": block_txs,
            "keep_heights": keep,
            "block_keep_heights": block_keep,
            "seed": seed,
        },
        "transactions": total,
        "height": height,
        "archive": archive,
        "pruned": pruned,
        "archive_bytes_per_tx": round(archive["disk_bytes"] / total, 1),
        "pruned_bytes_per_tx": round(pruned["disk_bytes"] / total, 1),
        "saved_bytes_per_tx": round(saved / total, 1),
        "saved_fraction": round(saved / archive["disk_bytes"], 3),
        "archive_table_bytes_per_tx": round(archive["table_bytes"] / total, 1),
        "pruned_table_bytes_per_tx": round(pruned["table_bytes"] / total, 1),
        "archive_row_bytes_per_tx": round(sum(archive["row_bytes"].values()) / total, 1),
        "pruned_row_bytes_per_tx": round(sum(pruned["row_bytes"].values()) / total, 1),
        "prune_steps": len(steps),
        "prune_ms_per_block": round(1000 * sum(steps) / max(1, len(steps)), 2),
        "prune_ms_max": round(1000 * max(steps, default=0.0), 2),
        "block_prune_steps": len(block_steps),
        "block_prune_ms_per_block": round(1000 * sum(block_steps) / max(1, len(block_steps)), 3),
        "block_prune_ms_max": round(1000 * max(block_steps, default=0.0), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--txs", type=int, default=40_000)
    parser.add_argument("--block-txs", type=int, default=100)
    parser.add_argument("--keep", type=int, default=100, help="state heights kept (0: all)")
    parser.add_argument("--block-keep", type=int, default=0, help="blocks kept (0: all)")
    parser.add_argument("--json", dest="json_path")
    args = parser.parse_args()
    doc = run(args.txs, args.block_txs, args.keep, block_keep=args.block_keep)
    text = json.dumps(doc, indent=2)
    if args.json_path:
        with open(args.json_path, "w", encoding="utf-8") as f:
            f.write(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
