"""The streaming audit's scratch store: rows tagged with the height that wrote them, in a
LevelDB store opened for a throw-away scan (uncompressed, few mapped tables)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger.storage import WriteBatch
from ledger.storage.reopening import ReopeningStore
from node.audit_scratch import MAX_OPEN_FILES, DiskScratch
from tests.unit.ledger.storage.plyvel_spy import record_plyvel_options


def test_rows_read_back_with_the_height_that_wrote_them(tmp_path: Path) -> None:
    scratch = DiskScratch(str(tmp_path / "scratch"))
    for height, value in ((1, b"first"), (2, b"second")):
        scratch.height = height
        batch = WriteBatch()
        batch.put(b"s/a", value)
        batch.put(b"s/" + bytes([height]), b"x")
        scratch.write(batch)
    scratch.height = 3
    gone = WriteBatch()
    gone.delete(b"s/\x01")
    scratch.write(gone)
    assert scratch.get(b"s/a") == b"second"
    assert scratch.written_height(b"s/a") == 2
    assert scratch.get(b"s/\x01") is None and scratch.written_height(b"s/\x01") is None
    assert list(scratch.iterate(b"s/")) == [(b"s/\x02", b"x"), (b"s/a", b"second")]
    scratch.close()


def test_the_scratch_is_opened_uncompressed_with_few_open_tables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = record_plyvel_options(monkeypatch)
    DiskScratch(str(tmp_path / "scratch")).close()
    assert seen[0]["compression"] is None
    assert seen[0]["max_open_files"] == MAX_OPEN_FILES


def test_a_tagged_batch_answers_as_what_is_written_and_refuses_writes() -> None:
    from node.audit_scratch import _Tagged

    batch = WriteBatch()
    batch.put(b"s/a", b"v")
    batch.delete(b"l/b")
    tagged = _Tagged(batch, 7)
    at = (7).to_bytes(8, "big")
    assert list(tagged.items()) == [(b"s/a", at + b"v"), (b"l/b", None)]
    assert dict(tagged.operations()) == dict(tagged.items())
    assert tagged.get(b"s/a") == (True, at + b"v")
    assert tagged.get(b"l/b") == (True, None)
    assert tagged.get(b"x/c") == (False, None)
    assert tagged.tables() == {b"s/", b"l/"} and len(tagged) == 2
    with pytest.raises(TypeError, match="view"):
        tagged.put(b"s/z", b"lost")
    assert len(batch) == 2


def test_a_scratch_read_whole_is_reopened_as_it_is_read(tmp_path: Path) -> None:
    """The comparison reads the tree process's scratch whole: reopened every so many bytes
    (few of its tables mapped at a time), with every row and its height read back."""
    path = str(tmp_path / "tree")
    written = DiskScratch(path)
    written.height = 7
    batch = WriteBatch()
    for i in range(300):
        batch.put(b"n/%04d" % i, bytes(100))
    written.write(batch)
    written.close()
    read = DiskScratch(path, reopen_every=4096)
    rows = list(read.iterate(b""))
    assert [k for k, _ in rows] == [b"n/%04d" % i for i in range(300)]
    assert {v for _, v in rows} == {bytes(100)}
    assert read.written_height(b"n/0042") == 7
    assert isinstance(read.store, ReopeningStore) and read.store.reopened >= 7
    read.close()
