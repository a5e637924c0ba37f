"""LevelDB rows read and written per transaction, by table, over ``bench stages``' chain.

``python -m benchmarks.store_rows --txs 20000 [--block-txs 2000] [--json F]``

Runs :func:`benchmarks.stages.run_stages` (a proposer and a validator in this process,
each on its own LevelDB store, the demo/bench ``mix`` workload) with
:class:`~ledger.storage.leveldb.LevelDBStore` counting every ``get`` and every row and
byte of every ``write``, from the first timed block on (the setup phase is not counted).
Figures are per committed transaction and per node (both nodes' counts, halved). The
table is the key's second byte: ``s`` binary state nodes (store format 1), ``p`` state
pages and leaves (format 2), ``v`` the flat state table, and the rest.

Written for the paged state tree (issue 21), to compare the store formats; it counts
the same way on the code before it, so the figures of both are comparable (the CPU
figures of this run are not: the counting costs CPU; use ``bench stages`` for those).
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from collections.abc import Callable
from typing import Any

from benchmarks import stages
from ledger.storage.leveldb import LevelDBStore
from ledger.storage.protocol import WriteBatch

STATE_TABLES = (b"s", b"p")  # format 1 nodes, format 2 pages and leaves


class Counts:
    """Reads, rows written and bytes written by table, while :attr:`on`."""

    def __init__(self) -> None:
        self.on = False
        self.reads: Counter[bytes] = Counter()
        self.writes: Counter[bytes] = Counter()
        self.bytes: Counter[bytes] = Counter()

    def install(self) -> None:
        get, write = LevelDBStore.get, LevelDBStore.write
        counts = self

        def counting_get(store: LevelDBStore, key: bytes) -> bytes | None:
            if counts.on:
                counts.reads[key[1:2]] += 1
            return get(store, key)

        def counting_write(store: LevelDBStore, batch: WriteBatch, *, sync: bool = True) -> None:
            if counts.on:
                for key, value in batch.items():
                    counts.writes[key[1:2]] += 1
                    counts.bytes[key[1:2]] += len(key) + (0 if value is None else len(value))
            write(store, batch, sync=sync)

        LevelDBStore.get = counting_get  # type: ignore[method-assign,assignment]
        LevelDBStore.write = counting_write  # type: ignore[method-assign,assignment]

    def wrap_timed(self) -> None:
        timed: Callable[..., int] = stages._timed

        def counted(*args: Any) -> int:
            self.on = True
            try:
                return timed(*args)
            finally:
                self.on = False

        stages._timed = counted  # type: ignore[assignment]


def per_tx(counter: Counter[bytes], txs: int) -> dict[str, float]:
    state = sum(counter[t] for t in STATE_TABLES)
    out = {
        "state_tree": state,
        "flat": counter[b"v"],
        "other": sum(counter.values()) - state - counter[b"v"],
        "total": sum(counter.values()),
    }
    return {k: round(v / txs / 2, 2) for k, v in out.items()}  # two nodes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--txs", type=int, default=20_000)
    parser.add_argument("--block-txs", type=int, default=2000)
    parser.add_argument("--json", dest="json_path")
    args = parser.parse_args()
    counts = Counts()
    counts.install()
    counts.wrap_timed()
    doc = stages.run_stages(
        stages.StageOptions(workload="mix", txs=args.txs, block_txs=args.block_txs)
    )
    txs = doc["committed"]
    result = {
        "txs": args.txs,
        "committed": txs,
        "block_txs": args.block_txs,
        "reads_per_tx": per_tx(counts.reads, txs),
        "writes_per_tx": per_tx(counts.writes, txs),
        "bytes_written_per_tx": per_tx(counts.bytes, txs),
    }
    print(json.dumps(result, indent=1))
    if args.json_path:
        with open(args.json_path, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
