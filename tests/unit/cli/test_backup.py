"""``node backup`` of a stopped node and ``node restore`` (the running node's side is in
tests/integration/test_cli.py); the request/answer files a running node reads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli import backup_cmd
from ledger.storage import open_leveldb
from node.backup import REQUEST_FILE, RESULT_FILE, answer_request, read_result, write_request
from node.config import Home
from tests.unit.cli.kit import CliNode, message, run
from tests.unit.cli.test_audit import leveldb_home
from tests.unit.ledger.storage.test_snapshot import fingerprint


def rows(data_dir: Path) -> dict[bytes, bytes]:
    store = open_leveldb(str(data_dir))
    try:
        return dict(store.iterate(b""))
    finally:
        store.close()


def test_a_stopped_node_is_backed_up_whole_and_left_as_it_was(
    node: CliNode, tmp_path: Path
) -> None:
    home = leveldb_home(node, tmp_path)
    (home / "node_key.json").write_text("{}")
    before = fingerprint(home / "data")
    out = tmp_path / "backup"
    result = run(["node", "backup", "--home", str(home), "--out", str(out), "--json"])
    assert result.exit_code == 0, message(result)
    made = json.loads(result.stdout)
    assert made["ok"] and made["height"] == node.chain.head().height
    assert fingerprint(home / "data") == before, "the stopped node's files are untouched"
    assert rows(out / "data") == dict(node.store.iterate(b""))
    manifest = json.loads((out / "BACKUP.json").read_text())
    assert manifest["genesis_hash"] == node.genesis.hash.hex()
    assert manifest["height"] == made["height"] and manifest["rows"] == made["rows"]
    assert (out / "node_key.json").stat().st_mode & 0o777 == 0o600
    again = run(["node", "backup", "--home", str(home), "--out", str(out)])
    assert again.exit_code == 1 and "already exists" in again.output


def test_restore_puts_the_backup_in_place_and_keeps_the_old_store(
    node: CliNode, tmp_path: Path
) -> None:
    home = leveldb_home(node, tmp_path)
    out = tmp_path / "backup"
    assert run(["node", "backup", "--home", str(home), "--out", str(out)]).exit_code == 0
    result = run(["node", "restore", "--home", str(home), "--from", str(out)])
    assert result.exit_code == 0, message(result)
    assert "--reset-signer-state" in result.output
    kept = [p for p in home.iterdir() if p.name.startswith("data.before-restore-")]
    assert len(kept) == 1 and rows(kept[0]) == rows(out / "data") == rows(home / "data")


def test_restore_refuses_another_chain_a_non_backup_and_a_running_node(
    node: CliNode, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = leveldb_home(node, tmp_path)
    out = tmp_path / "backup"
    assert run(["node", "backup", "--home", str(home), "--out", str(out)]).exit_code == 0
    manifest = json.loads((out / "BACKUP.json").read_text())
    (out / "BACKUP.json").write_text(json.dumps({**manifest, "genesis_hash": "00" * 32}))
    other = run(["node", "restore", "--home", str(home), "--from", str(out)])
    assert other.exit_code == 1 and "genesis mismatch" in other.output
    empty = tmp_path / "empty"
    empty.mkdir()
    not_one = run(["node", "restore", "--home", str(home), "--from", str(empty)])
    assert not_one.exit_code == 1 and "is not a backup" in not_one.output
    monkeypatch.setattr(backup_cmd, "_running_node", lambda _h: 4242)
    running = run(["node", "restore", "--home", str(home), "--from", str(out)])
    assert running.exit_code == 1 and "stop it first" in running.output
    assert not [p for p in home.iterdir() if p.name.startswith("data.before-restore-")]


def test_a_request_the_node_cannot_meet_is_answered_with_the_reason(
    node: CliNode, tmp_path: Path
) -> None:
    from ledger.storage.leveldb import LevelDBStore

    home = Home(str(leveldb_home(node, tmp_path)))
    store = LevelDBStore(home.data)
    try:
        request = write_request(home, str(tmp_path / "no-such-dir" / "backup"))
        result = answer_request(store, home)
        assert not result.ok and "no-such-dir does not exist" in result.error
        assert read_result(home, request) == result
        assert read_result(home, "another request") is None
        (Path(home.path) / REQUEST_FILE).write_text("not json")
        broken = answer_request(store, home)
        assert not broken.ok and "no readable backup request" in broken.error
        assert json.loads((Path(home.path) / RESULT_FILE).read_text())["ok"] is False
    finally:
        store.close()
