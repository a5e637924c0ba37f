"""A damaged LevelDB table (a checksum error) is located by file and by what it holds,
for the operator (``node start``, any read) and for the auditor (``audit verify``)."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import pytest

from ledger.errors import StoreDamagedError
from ledger.storage import keys, open_leveldb
from ledger.storage.damage import describe_keys, locate
from tests.unit.cli.kit import CliNode, run
from tests.unit.cli.test_audit import leveldb_home
from tests.unit.ledger.storage.damage_kit import corrupt_table


def _digest(directory: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.iterdir())
        if p.is_file()
    }


def test_reads_name_the_damaged_file_and_blocks(node: CliNode, tmp_path: Path) -> None:
    data = str(leveldb_home(node, tmp_path) / "data")
    name, _ = corrupt_table(data, keys.BLOCK)
    [found] = locate(data)
    assert found.name == name and 1 <= found.bad_blocks < found.blocks
    assert re.fullmatch(r"blocks (from |up to )?[\d,]+( to [\d,]+)?.*", found.holds), found.holds
    store = open_leveldb(data)
    try:
        with pytest.raises(StoreDamagedError) as caught:
            for _ in store.iterate(keys.BLOCK):
                pass
    finally:
        store.close()
    text = str(caught.value)
    assert f"{os.path.join(data, name)} (1 of {found.blocks} blocks: blocks" in text, text
    assert "restore the data directory from a backup" in text
    assert caught.value.damaged == ((name, found.holds),)


def test_audit_names_the_file_in_the_audited_home(node: CliNode, tmp_path: Path) -> None:
    home = leveldb_home(node, tmp_path)
    name, _ = corrupt_table(str(home / "data"), keys.BLOCK)
    before = _digest(home / "data")
    result = run(["audit", "verify", "--home", str(home), "--workers", "0"])
    assert result.exit_code == 1
    said = " ".join(result.output.split())
    assert f"{home / 'data' / name} holds blocks" in said, said
    assert "cannot vouch for them" in said and "another agency's node" in said
    assert "restore the data directory from a backup" in said
    assert "cityledger-audit-" not in said, "the private copy's path is not shown"
    assert _digest(home / "data") == before, "the audit changed the damaged evidence"


def test_keys_read_as_records() -> None:
    assert describe_keys(keys.block_key(1200), keys.block_key(1450)) == "blocks 1,200 to 1,450"
    assert describe_keys(keys.block_key(7), keys.cert_key(3)) == (
        "blocks from 7, certificates of blocks up to 3"
    )
    assert describe_keys(keys.STATE_ROOT + b"\x10", keys.STATE_ROOT + b"\x90") == (
        "some state root filings"
    )
    node = keys.STATE_NODE + keys.height_bytes(40)
    assert describe_keys(node + b"\x10", keys.STATE_NODE + keys.height_bytes(95)) == (
        "state tree rows written by blocks 40 to 95"
    )
