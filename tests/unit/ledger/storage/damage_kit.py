"""Damaging a real LevelDB table file the way a failing disk does: bytes flipped inside
one data block, so that LevelDB's checksum of that block fails."""

from __future__ import annotations

import os

from ledger.storage import open_leveldb
from ledger.storage.tables import table_index


def corrupt_table(data_dir: str, prefix: bytes) -> tuple[str, bytes]:
    """Flip bytes in the middle of the first data block holding keys under ``prefix``.

    Opens and closes the store first: LevelDB then writes its log into a table file.
    Returns (the table file's name, the data block's index key).
    """
    open_leveldb(data_dir).close()
    for name in sorted(os.listdir(data_dir)):
        if not name.endswith(".ldb"):
            continue
        path = os.path.join(data_dir, name)
        with open(path, "rb") as f:
            data = bytearray(f.read())
        index = table_index(bytes(data)) or []
        for key, offset, size in index:
            if key.startswith(prefix):
                for at in range(offset + size // 2, offset + size // 2 + 4):
                    data[at] ^= 0xFF
                with open(path, "wb") as f:
                    f.write(data)
                return name, key
    raise AssertionError(f"no table file holds keys under {prefix!r}")
