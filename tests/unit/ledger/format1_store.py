"""Makes ``tests/vectors/store-format1/``: a small chain stored in store format 1 — and,
run the same way with the code of commit a39a629 (the last that wrote format 2), with
``/tmp/f2out`` copied to ``tests/vectors/store-format2/``, the same chain in format 2.

Run with the code of commit 8f566fb (the last one that wrote format 1), not this one::

    mkdir /tmp/f1 && git archive 8f566fb | tar -x -C /tmp/f1
    cp tests/unit/ledger/format1_store.py /tmp/f1/tests/unit/ledger/
    (cd /tmp/f1 && PYTHONPATH=. python tests/unit/ledger/format1_store.py /tmp/f1out)

then copy ``/tmp/f1out/data`` (without ``LOG`` and ``LOCK``) and ``genesis.json`` here.
The chain must be made by the last format-1 code *with this version's contracts*:
the tests audit it by re-executing every block, so a store written before a change
to what transactions do no longer replays to the same roots (it was first made at
8dbb2ca and remade at 8f566fb, after the organisation directory of issue 20).

It writes ``data/`` (the LevelDB store) and ``genesis.json``: six shipment journeys
(declarations, custody, customs decisions that move search-bucket members, so keys
are deleted as well as set) and a permit's life, 50-odd blocks on the test kit's
devnet genesis. ``test_migrate_store.py`` migrates copies of it.
"""

from __future__ import annotations

import os
import sys

from ledger.storage import open_leveldb
from tests.unit.cli.kit import CliNode, build_journey, build_permit, make_genesis

GENESIS_MS = 1_764_000_000_000


def build(out: str) -> None:
    os.makedirs(out)
    genesis = make_genesis(GENESIS_MS)
    store = open_leveldb(os.path.join(out, "data"), create=True)
    try:
        node = CliNode(store, genesis)
        for i in range(6):
            build_journey(node, shipment_id=f"SHP-F1-{i:03d}")
        build_permit(node)
    finally:
        store.close()
    with open(os.path.join(out, "genesis.json"), "w", encoding="utf-8") as f:
        f.write(genesis.to_json())


if __name__ == "__main__":
    build(sys.argv[1])
