"""Store format 3 and ``node migrate-store``, on stores made by the previous formats' code.

``tests/vectors/store-format1/`` was written by CityLedger at commit 8f566fb (the last
that wrote format 1: one binary state node per row, no format row), and
``tests/vectors/store-format2/`` at commit a39a629 (the last that wrote format 2: pages
filed by hash), both with ``tests/unit/ledger/format1_store.py``. Every test works on a
copy, of each unless it says otherwise.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import cli
from ledger import state_migrate, state_refile
from ledger.errors import StorageError
from ledger.genesis import Genesis
from ledger.state import StateTree, verify_state_proof
from ledger.state_migrate import MigrationProgress, migrate_store, state_roots
from ledger.storage import KVStore, WriteBatch, keys, open_leveldb
from ledger.storage.format import (
    LEGACY_TABLES,
    STORE_FORMAT,
    StoreFormatError,
    check_format,
    stored_format,
)
from ledger.storage.leveldb import LevelDBStore
from node.audit import ChainAuditor, StoreSource
from node.chain import ChainStore
from tests.unit.cli.kit import message, run

VECTORS = Path(__file__).parents[2] / "vectors"


@pytest.fixture(params=[1, 2])
def old_format(request: pytest.FixtureRequest) -> int:
    """The format of the store the test starts from."""
    return int(request.param)


@pytest.fixture
def home(tmp_path: Path, old_format: int) -> Path:
    shutil.copytree(VECTORS / f"store-format{old_format}" / "data", tmp_path / "data")
    shutil.copy(VECTORS / f"store-format{old_format}" / "genesis.json", tmp_path / "genesis.json")
    return tmp_path


def genesis(home: Path) -> Genesis:
    return Genesis.from_json((home / "genesis.json").read_text())


def old_rows(rows: dict[bytes, bytes]) -> int:
    """Rows of the tables older formats kept and this one does not."""
    return sum(k.startswith(LEGACY_TABLES) for k in rows)


def all_rows(store: KVStore) -> dict[bytes, bytes]:
    return dict(store.iterate(b""))


class CrashingStore:
    """A store that dies (raises) at its write number ``n`` (counting from 0), or never."""

    def __init__(self, store: KVStore, n: int | None = None) -> None:
        self.store, self.n, self.writes = store, n, 0

    def get(self, key: bytes) -> bytes | None:
        return self.store.get(key)

    def iterate(
        self, prefix: bytes, *, start: bytes | None = None, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]:
        return self.store.iterate(prefix, start=start, reverse=reverse)

    def write(self, batch: WriteBatch, *, sync: bool = True) -> None:
        if self.writes == self.n:
            raise OSError("power cut")
        self.writes += 1
        self.store.write(batch, sync=sync)

    def close(self) -> None:
        self.store.close()


def test_an_old_store_is_refused_with_the_command_that_migrates_it(
    home: Path, old_format: int
) -> None:
    store = open_leveldb(str(home / "data"))
    try:
        assert stored_format(store) == old_format
        with pytest.raises(StoreFormatError) as caught:
            ChainStore(store, genesis(home))
        message = str(caught.value)
        assert f"cityledger node migrate-store --home {home}" in message
        assert "\n" not in message and f"format {old_format}" in message
        assert next(store.iterate(keys.STATE_NODE), None) is None, "refusing wrote nothing"
    finally:
        store.close()


def test_migrated_store_audits_clean_and_proves_every_height(home: Path, old_format: int) -> None:
    store = open_leveldb(str(home / "data"))
    try:
        old = all_rows(store)
        roots = state_roots(store)
        result = migrate_store(store)
        assert result.step == "done" and result.states == result.refiled == len(roots)
        if old_format == 1:
            assert result.roots == len(roots) and result.pages > 0
            # format 1's rows, and the format-2 pages made on the way
            assert result.removed == old_rows(old) + result.pages + result.leaves
        else:
            assert result.roots == result.pages == 0 and result.removed == old_rows(old)
        rows = all_rows(store)
        assert stored_format(store) == STORE_FORMAT and old_rows(rows) == 0
        unchanged = {
            k: v
            for k, v in old.items()
            if not k.startswith(LEGACY_TABLES) and k != keys.STORE_FORMAT
        }
        assert {k: rows[k] for k in unchanged} == unchanged, "only the state tree rows change"
        chain = ChainStore(store, genesis(home))  # accepted now
        # Byte for byte what this version writes: the audit re-executes the chain.
        report = ChainAuditor(genesis(home), workers=1).run(StoreSource(store), compare_with=store)
        assert report.ok, report.findings
        assert report.heights == chain.head().height and report.rows_compared == len(rows)
        flat = [
            v[4 : 4 + int.from_bytes(v[:4], "big")]
            for k, v in rows.items()
            if k[:2] == keys.STATE_LEAF
        ]
        tree = StateTree(store, chain.head().state_root)
        for root in roots:
            for state_key in flat[::7]:
                proof = tree.prove(state_key, root)
                verify_state_proof(root, proof)
                assert tree.get_at(root, state_key) == proof.value
        assert all(tree.get(k) == tree.get_at(chain.head().state_root, k) for k in flat)
    finally:
        store.close()


@pytest.mark.parametrize("at", [0.0, 0.5, 1.0])
def test_a_migration_cut_short_carries_on_when_run_again(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, at: float, old_format: int
) -> None:
    monkeypatch.setattr(state_migrate, "BATCH_BYTES", 4096)  # many batches of pages
    monkeypatch.setattr(state_refile, "BATCH_BYTES", 4096)  # and of states refiled
    shutil.copytree(home / "data", tmp_path / "whole")
    whole = open_leveldb(str(tmp_path / "whole"))
    try:
        counted = CrashingStore(whole)
        writes_before_cleanup: list[int] = []

        def note(state: MigrationProgress) -> None:
            if state.step == "cleanup" and not writes_before_cleanup:
                writes_before_cleanup.append(counted.writes)

        migrate_store(counted, note)
        expected = all_rows(whole)
    finally:
        whole.close()
    page_writes = writes_before_cleanup[0] - 1  # the last write before the cleanup: the flip
    assert page_writes > 10
    store = open_leveldb(str(home / "data"))
    try:
        with pytest.raises(OSError, match="power cut"):
            migrate_store(CrashingStore(store, int(at * page_writes)))
        assert stored_format(store) in (1, 2), "format 3 is written after every state"
        with pytest.raises(StoreFormatError):
            check_format(store)
        second = migrate_store(store)
        assert all_rows(store) == expected
        if at and old_format == 2:  # the states refiled before the cut are not redone
            assert second.refiled < second.states and (at < 1 or second.refiled == 0)
    finally:
        store.close()


def test_a_cleanup_cut_short_is_refused_until_run_again(home: Path) -> None:
    store = open_leveldb(str(home / "data"))
    try:
        seen: list[MigrationProgress] = []

        def stop_in_cleanup(state: MigrationProgress) -> None:
            seen.append(state)
            if state.step == "cleanup":
                raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            migrate_store(store, stop_in_cleanup)
        assert stored_format(store) == STORE_FORMAT
        with pytest.raises(StoreFormatError, match="did not finish: run `cityledger node"):
            check_format(store, "H")
        again = migrate_store(store)
        assert not again.already and again.removed > 0 and again.pages == again.refiled == 0
        check_format(store)
        assert migrate_store(store).already
    finally:
        store.close()


def test_the_command_migrates_and_a_second_run_has_nothing_to_do(home: Path) -> None:
    runner = CliRunner()
    first = runner.invoke(cli, ["node", "migrate-store", "--home", str(home)])
    assert first.exit_code == 0, first.output
    assert f"migrated {home / 'data'} to store format {STORE_FORMAT}" in first.output
    second = runner.invoke(cli, ["node", "migrate-store", "--home", str(home)])
    assert second.exit_code == 0 and "nothing to do" in second.output
    store = open_leveldb(str(home / "data"))
    try:
        ChainStore(store, genesis(home))
    finally:
        store.close()


def legacy_bytes(store: LevelDBStore) -> int:
    """Table bytes LevelDB still gives the tables older formats kept."""
    return sum(store.approximate_bytes(table) for table in LEGACY_TABLES)


def test_a_migration_gives_back_the_space_of_the_rows_it_removes(home: Path) -> None:
    store = open_leveldb(str(home / "data"))
    try:
        assert isinstance(store, LevelDBStore)
        before = legacy_bytes(store)
        assert before > 0, "the old rows take table space before the migration"
        steps: list[str] = []
        result = migrate_store(store, lambda state: steps.append(state.step))
        assert "compact" in steps and result.reclaimable >= before
        assert legacy_bytes(store) == 0, "removed rows are not left on disk"
        assert result.reclaimed >= before
    finally:
        store.close()


def test_a_store_migrated_without_compacting_gets_its_space_back_when_run_again(
    home: Path,
) -> None:
    store = open_leveldb(str(home / "data"))
    try:
        assert isinstance(store, LevelDBStore)
        first = migrate_store(CrashingStore(store))  # no compaction: what earlier versions did
        assert first.reclaimed == 0 and legacy_bytes(store) > 0
        check_format(store)  # a store in format 3 all the same: it was accepted, and is
    finally:
        store.close()
    again = CliRunner().invoke(cli, ["node", "migrate-store", "--home", str(home)])
    assert again.exit_code == 0, again.output
    assert "is already in store format" in again.output and "gave back" in again.output
    assert "giving back the space of the removed rows" in again.output
    store = open_leveldb(str(home / "data"))
    try:
        assert isinstance(store, LevelDBStore) and legacy_bytes(store) == 0
        ChainStore(store, genesis(home))
    finally:
        store.close()
    third = CliRunner().invoke(cli, ["node", "migrate-store", "--home", str(home)])
    assert third.exit_code == 0 and "nothing to do" in third.output


def test_an_offline_audit_of_an_old_home_says_to_migrate_it_then_passes(home: Path) -> None:
    args = ["audit", "verify", "--home", str(home), "--genesis", str(home / "genesis.json")]
    refused = run([*args, "--workers", "0"])
    assert refused.exit_code != 0
    assert f"migrate it with `cityledger node migrate-store --home {home}`" in message(refused)
    assert run(["node", "migrate-store", "--home", str(home)]).exit_code == 0
    passed = run([*args, "--workers", "2", "--json"])
    assert passed.exit_code == 0, message(passed)


def test_an_empty_store_has_nothing_to_migrate(tmp_path: Path) -> None:
    store = open_leveldb(str(tmp_path / "data"), create=True)
    try:
        check_format(store)  # a new store: any version may fill it
        with pytest.raises(StorageError, match="nothing to migrate"):
            migrate_store(store)
    finally:
        store.close()
