"""One suite for every KVStore implementation (memory, LevelDB) and the overlay."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.errors import StoreLockedError
from ledger.storage import KVStore, MemoryStore, OverlayStore, WriteBatch, open_leveldb
from tests.unit.ledger.changes_kit import apply_changes, write_changes


@pytest.fixture(params=["memory", "leveldb"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[KVStore]:
    s: KVStore = (
        MemoryStore()
        if request.param == "memory"
        else open_leveldb(str(tmp_path / "db"), create=True)
    )
    yield s
    s.close()


def _fill(store: KVStore, items: dict[bytes, bytes]) -> None:
    batch = WriteBatch()
    for k, v in items.items():
        batch.put(k, v)
    store.write(batch)


def test_get_put_delete(store: KVStore) -> None:
    assert store.get(b"a") is None
    _fill(store, {b"a": b"1", b"b": b"2"})
    assert store.get(b"a") == b"1"
    batch = WriteBatch()
    batch.delete(b"a")
    batch.put(b"c", b"3")
    store.write(batch)
    assert store.get(b"a") is None
    assert store.get(b"c") == b"3"


def test_later_operation_in_a_batch_wins(store: KVStore) -> None:
    batch = WriteBatch()
    batch.put(b"k", b"1")
    batch.delete(b"k")
    batch.put(b"j", b"1")
    batch.put(b"j", b"2")
    store.write(batch)
    assert store.get(b"k") is None
    assert store.get(b"j") == b"2"


def test_a_batch_keeps_a_copy_of_mutable_buffers_and_bytes_as_given() -> None:
    key, value = bytearray(b"k1"), bytearray(b"v1")
    batch = WriteBatch()
    batch.put(key, value)  # type: ignore[arg-type]  # what a careless caller may pass
    batch.delete(bytearray(b"k2"))  # type: ignore[arg-type]
    key[0:2], value[0:2] = b"xx", b"yy"  # changed after the put: the batch is not
    assert dict(batch.items()) == {b"k1": b"v1", b"k2": None}
    assert all(type(k) is bytes and type(v) in (bytes, type(None)) for k, v in batch.items())
    frozen = b"k3"
    batch.put(frozen, b"v3")
    assert next(k for k in batch.operations() if k == frozen) is frozen  # not copied


def test_iterate_by_prefix_forward_reverse_and_start(store: KVStore) -> None:
    _fill(store, {b"p\x01": b"1", b"p\x02": b"2", b"p\xff": b"3", b"q": b"x", b"o": b"y"})
    assert [k for k, _ in store.iterate(b"p")] == [b"p\x01", b"p\x02", b"p\xff"]
    assert [k for k, _ in store.iterate(b"p", reverse=True)] == [b"p\xff", b"p\x02", b"p\x01"]
    assert [k for k, _ in store.iterate(b"p", start=b"p\x02")] == [b"p\x02", b"p\xff"]
    assert [k for k, _ in store.iterate(b"p", start=b"p\x02", reverse=True)] == [
        b"p\x02",
        b"p\x01",
    ]
    assert list(store.iterate(b"zz")) == []


def test_prefix_of_all_ff_bytes(store: KVStore) -> None:
    _fill(store, {b"\xff\xff": b"1", b"\xff\xff\x00": b"2", b"\xfe": b"3"})
    assert [k for k, _ in store.iterate(b"\xff\xff")] == [b"\xff\xff", b"\xff\xff\x00"]


keys = st.binary(min_size=1, max_size=4)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(keys, st.one_of(st.none(), st.binary(max_size=4))), max_size=40), keys)
def test_memory_and_overlay_agree_with_a_dict(
    ops: list[tuple[bytes, bytes | None]], prefix: bytes
) -> None:
    base = MemoryStore()
    model: dict[bytes, bytes] = {}
    apply_changes(model, ops)
    half = len(ops) // 2
    batch = WriteBatch()
    write_changes(batch, ops[:half])
    base.write(batch)
    overlay = OverlayStore(base)
    write_changes(overlay, ops[half:])
    p = prefix[:1]
    expected = sorted((k, v) for k, v in model.items() if k.startswith(p))
    assert list(overlay.iterate(p)) == expected
    assert list(overlay.iterate(p, reverse=True)) == expected[::-1]
    for k in model:
        assert overlay.get(k) == model[k]
    # Nothing reached the base until the overlay's batch is written.
    base.write(overlay.take())
    assert sorted(base.iterate(b"")) == sorted(model.items())


def test_leveldb_second_opener_gets_a_clear_error(tmp_path: Path) -> None:
    first = open_leveldb(str(tmp_path / "db"), create=True)
    try:
        with pytest.raises(StoreLockedError, match="in use by another process"):
            open_leveldb(str(tmp_path / "db"))
    finally:
        first.close()
    open_leveldb(str(tmp_path / "db")).close()


def test_leveldb_survives_reopen(tmp_path: Path) -> None:
    s = open_leveldb(str(tmp_path / "db"), create=True)
    _fill(s, {b"k": b"v"})
    s.close()
    s = open_leveldb(str(tmp_path / "db"))
    assert s.get(b"k") == b"v"
    s.close()
