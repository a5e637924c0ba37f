"""Where a LevelDB store is damaged, in words an operator and an auditor can act on.

LevelDB says only ``Corruption: block checksum mismatch``. :func:`locate` re-checks every
table file's blocks (:mod:`ledger.storage.tables`) and names each damaged file with the
keys it holds there, read back into what they mean (``blocks 1,200 to 1,450``, ``state
tree nodes``): the rows that can no longer be read, and so cannot be vouched for. It runs
only once LevelDB has reported damage, reads every table file once, and writes nothing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ledger.storage import keys
from ledger.storage.tables import check_table, table_ranges

# What each table holds, and whether its keys start with a height (ledger/storage/keys.py).
TABLES: dict[bytes, tuple[str, str | None]] = {
    keys.META: ("meta records (head, genesis)", None),
    keys.BLOCK: ("blocks", "blocks"),
    keys.BLOCK_HASH: ("block-hash index entries", None),
    keys.CERT: ("commit certificates", "certificates of blocks"),
    keys.TX_INDEX: ("transaction index entries", None),
    keys.RECEIPT: ("receipts", "receipts of blocks"),
    keys.PRUNED_HEADER: ("headers of pruned blocks", "headers of pruned blocks"),
    keys.LOG: ("Merkle log nodes", "Merkle log nodes of transactions"),
    keys.STATE_NODE: ("state tree rows", "state tree rows written by blocks"),
    keys.STATE_ROOT: ("state root filings", None),
    keys.STATE_LEAF: ("current state values", None),
    keys.COMMITTED_EVIDENCE: ("committed evidence", "committed evidence of blocks"),
    keys.OFFENCE: ("offence index entries", None),
    keys.VALSET: ("validator-set changes", "validator-set changes in force from heights"),
    keys.SIGNER: ("signing records (this node's own)", None),
    keys.EVIDENCE: ("evidence pool entries (this node's own)", None),
    keys.INDEX: ("contract indexes", None),
}


@dataclass(frozen=True, slots=True)
class DamagedTable:
    """One table file whose blocks fail their checksums, and the keys they hold."""

    name: str  # the file's name in the store directory (000123.ldb)
    first: bytes | None  # the damaged part's keys lie between these (None: unknown)
    last: bytes | None
    bad_blocks: int
    blocks: int  # 0 when the file's index itself is damaged

    @property
    def holds(self) -> str:
        """What the damaged part holds, in words."""
        if self.first is None or self.last is None:
            return "keys that cannot be read (its index is damaged)"
        return describe_keys(self.first, self.last)


def locate(data_dir: str) -> list[DamagedTable]:
    """Every damaged table file of the store at ``data_dir`` (empty: none found)."""
    ranges = table_ranges(data_dir)
    found = []
    for name in sorted(os.listdir(data_dir)):
        if not name.endswith((".ldb", ".sst")):
            continue
        try:
            check = check_table(os.path.join(data_dir, name))
        except OSError:
            continue
        whole = ranges.get(int(name.split(".")[0]) if name.split(".")[0].isdigit() else -1)
        if check.index_damaged:
            first, last = whole if whole is not None else (None, None)
            found.append(DamagedTable(name, first, last, 0, 0))
            continue
        if not check.bad_blocks:
            continue
        lo, hi, seps = check.bad_blocks[0], check.bad_blocks[-1], check.separators
        first = seps[lo - 1] if lo > 0 else (whole[0] if whole else None)
        last = seps[hi] if hi < len(seps) - 1 else (whole[1] if whole else None)
        found.append(DamagedTable(name, first, last, len(check.bad_blocks), len(seps)))
    return found


def describe_keys(first: bytes, last: bytes) -> str:
    """The rows between two storage keys, table by table, as a reader names them."""
    tables = sorted(TABLES)
    inside = [t for t in tables if _table(first) <= t <= _table(last)]
    if not inside:
        return f"rows with keys from {first.hex()} to {last.hex()}"
    parts = []
    for table in inside:
        name, numbered = TABLES[table]
        start = first if table == _table(first) else None
        end = last if table == _table(last) else None
        if numbered is None or (start is None and end is None):
            whole = start is None and end is None
            parts.append(name if whole else f"some {name}")
            continue
        if start is None:
            parts.append(f"{numbered} up to {_number(last):,}")
        elif end is None:
            parts.append(f"{numbered} from {_number(first):,}")
        else:
            parts.append(f"{numbered} {_number(first):,} to {_number(last):,}")
    return ", ".join(parts)


def _table(key: bytes) -> bytes:
    return key[:2]


def _number(key: bytes) -> int:
    """The height (or leaf number) a key starts with; a shortened index key is padded."""
    return int.from_bytes(key[2:10].ljust(8, b"\x00"), "big")


def where(found: list[DamagedTable], shown_dir: str) -> str:
    """``data/000123.ldb (2 of 11 blocks: blocks 1,200 to 1,450)``, for every file."""
    if not found:
        return (
            "no table file fails its checksums, so the damage is in the write-ahead log or "
            f"the MANIFEST of {shown_dir} (the most recent writes)"
        )
    texts = []
    for d in found:
        blocks = "its index" if not d.blocks else f"{d.bad_blocks} of {d.blocks} blocks"
        texts.append(f"{os.path.join(shown_dir, d.name)} ({blocks}: {d.holds})")
    return "damaged: " + "; ".join(texts)
